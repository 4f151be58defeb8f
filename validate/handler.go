// Package validate is podgate's validating admission handler: it turns the
// policies' violations into a denial, warnings or audit annotations.
package validate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/metrics"
	"github.com/podgate/podgate/review"
)

// Handler answers validating admission requests.
//
// Answers (the error scheme of both podgate webhooks):
//
//	request                                  answer
//	malformed (no uid, no object, bad JSON)  400, allowed: false, the reason
//	operation other than CREATE/UPDATE       200, allowed
//	out of scope (engine.Skip)               200, allowed, the reason
//	no violation                             200, allowed
//	deny violations                          403, allowed: false, one message
//	                                         listing every deny violation, plus
//	                                         the warnings
//	warn violations only                     200, allowed, response.warnings
//	dryrun violations                        audit annotations, log, metric
//	evaluation failure                       500, allowed: false, the reason
//	                                         (never a silent allow; the
//	                                         failurePolicy decides)
type Handler struct {
	Engine *engine.Engine
	Log    logr.Logger
	// EvalTimeout bounds the evaluation of one request.
	EvalTimeout time.Duration
}

// Handle implements admission.Handler.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp, decision := h.handle(ctx, req)
	metrics.Requests.WithLabelValues("validate", string(req.Operation), req.Kind.Kind, decision).Inc()
	metrics.Latency.WithLabelValues("validate").Observe(time.Since(start).Seconds())
	return resp
}

func (h *Handler) handle(ctx context.Context, req admission.Request) (admission.Response, string) {
	ereq, resp, decision, done := review.Start(req, h.Engine)
	if done {
		return resp, decision
	}
	ctx, cancel := review.EvalContext(ctx, h.EvalTimeout)
	defer cancel()
	evalStart := time.Now()
	violations, err := Violations(ctx, h.Engine, ereq)
	metrics.Evaluation.WithLabelValues("validate").Observe(time.Since(evalStart).Seconds())
	if err != nil {
		h.Log.Error(err, "evaluation failed", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name)
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("podgate could not evaluate its policies: %w", err)), metrics.Errored
	}
	return h.respond(req, violations)
}

// Violations evaluates the object and, on UPDATE, downgrades to a warning
// every deny that the old object already broke in the same field: an
// existing object must stay scalable and labelable even when a policy was
// added after it. The podgate CLI uses it too, so offline and online
// decisions are the same.
func Violations(ctx context.Context, eng *engine.Engine, req *engine.Request) ([]engine.Violation, error) {
	vs, err := eng.Violations(ctx, req)
	if err != nil || req.Operation != string(admissionv1.Update) || !hasDeny(vs) {
		return vs, err
	}
	oldReq := *req
	oldReq.Object, oldReq.OldObject = req.OldObject, nil
	old, err := eng.Violations(ctx, &oldReq)
	if err != nil {
		return nil, fmt.Errorf("old object: %w", err)
	}
	before := make(map[string]bool, len(old))
	for _, v := range old {
		before[v.Policy+"/"+v.Rule+"/"+v.Field] = true
	}
	for i, v := range vs {
		if v.Enforcement == engine.Deny && before[v.Policy+"/"+v.Rule+"/"+v.Field] {
			vs[i].Enforcement = engine.Warn
			vs[i].Message += " (already so before this update, so it is allowed for now)"
		}
	}
	return vs, nil
}

func hasDeny(vs []engine.Violation) bool {
	for _, v := range vs {
		if v.Enforcement == engine.Deny {
			return true
		}
	}
	return false
}

func (h *Handler) respond(req admission.Request, vs []engine.Violation) (admission.Response, string) {
	object := Describe(req)
	var denies, warnings []string
	audit := map[string]string{}
	for _, v := range vs {
		metrics.Violations.WithLabelValues(v.Policy, v.Rule, string(v.Enforcement)).Inc()
		line := Line(object, v)
		switch v.Enforcement {
		case engine.Deny:
			denies = append(denies, line)
		case engine.Warn:
			warnings = append(warnings, line)
		case engine.DryRun:
			key := v.Policy + "." + v.Rule
			audit[key] = joinNonEmpty(audit[key], line)
			h.Log.Info("dryrun violation", "policy", v.Policy, "rule", v.Rule, "object", object, "message", v.Message)
		}
	}
	var resp admission.Response
	decision := metrics.Allowed
	switch {
	case len(denies) > 0:
		resp = admission.Denied(strings.Join(denies, "\n"))
		decision = metrics.Denied
		h.Log.Info("denied", "object", object, "operation", req.Operation, "violations", len(denies))
	case len(warnings) > 0:
		resp = admission.Allowed("")
		decision = metrics.Warned
	default:
		resp = admission.Allowed("")
	}
	if len(audit) > 0 {
		resp.AuditAnnotations = audit
	}
	return resp.WithWarnings(warnings...), decision
}

// Line is how a violation reads in a denial or a warning:
// "[policy/rule] Kind namespace/name: what is wrong; how to fix".
func Line(object string, v engine.Violation) string {
	return fmt.Sprintf("[%s/%s] %s: %s", v.Policy, v.Rule, object, v.Message)
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + "\n" + b
}

// Describe names the object as messages show it: "Deployment default/web".
// An object created with generateName is shown as "prefix*".
func Describe(req admission.Request) string {
	name := req.Name
	if name == "" {
		var obj struct {
			Metadata struct {
				Name         string `json:"name"`
				GenerateName string `json:"generateName"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(req.Object.Raw, &obj) // best effort: only for the message
		name = obj.Metadata.Name
		if name == "" && obj.Metadata.GenerateName != "" {
			name = obj.Metadata.GenerateName + "*"
		}
	}
	if req.Namespace == "" {
		return req.Kind.Kind + " " + name
	}
	return req.Kind.Kind + " " + req.Namespace + "/" + name
}
