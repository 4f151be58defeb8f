package load

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Answer is what an admission decision consists of, as both servers
// write it: the comparison of podgate's and OPA's decisions.
type Answer struct {
	UID              string            `json:"uid"`
	Allowed          bool              `json:"allowed"`
	Code             int32             `json:"code"`
	Reason           string            `json:"reason,omitempty"`
	Message          string            `json:"message,omitempty"`
	Warnings         []string          `json:"warnings,omitempty"`
	AuditAnnotations map[string]string `json:"auditAnnotations,omitempty"`
}

// ParseAnswer reads an AdmissionReview answer.
func ParseAnswer(body []byte) (Answer, error) {
	var review struct {
		Response *struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
			Status  *struct {
				Code    int32  `json:"code"`
				Reason  string `json:"reason"`
				Message string `json:"message"`
			} `json:"status"`
			Warnings         []string          `json:"warnings"`
			AuditAnnotations map[string]string `json:"auditAnnotations"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &review); err != nil {
		return Answer{}, fmt.Errorf("answer is no AdmissionReview: %w: %.200s", err, body)
	}
	r := review.Response
	if r == nil {
		return Answer{}, fmt.Errorf("answer has no response: %.200s", body)
	}
	a := Answer{UID: r.UID, Allowed: r.Allowed, Warnings: slices.Clone(r.Warnings), AuditAnnotations: r.AuditAnnotations}
	if r.Status != nil {
		a.Code, a.Reason, a.Message = r.Status.Code, r.Status.Reason, r.Status.Message
	}
	if len(a.AuditAnnotations) == 0 {
		a.AuditAnnotations = nil
	}
	return a, nil
}

// Summary is the decision in a few words, for reports.
func (a Answer) Summary() string {
	switch {
	case !a.Allowed:
		return fmt.Sprintf("denied (%d): %d violations", a.Code, strings.Count(a.Message, "\n")+1)
	case len(a.Warnings) > 0:
		return fmt.Sprintf("allowed, %d warnings", len(a.Warnings))
	}
	return "allowed"
}
