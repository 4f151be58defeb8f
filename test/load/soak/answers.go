package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/go-openapi/jsonpointer"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/podgate/podgate/test/bench"
	"github.com/podgate/podgate/test/load"
	"github.com/podgate/podgate/test/load/loadgen"
)

// expectation is the answer a request must get: the webhook's own answer
// to it, asked once before the load.
type expectation struct {
	allowed  bool
	code     int32    // of a denial
	message  string   // of a denial
	warnings []string // sorted, without repeats
	// paths are the JSON pointers /mutate adds or replaces: the object a
	// dry-run create returns must hold each.
	paths []string
}

// ExpectedAnswer is an object's expected answer, as the report shows it.
type ExpectedAnswer struct {
	Object   string   `json:"object"`
	Summary  string   `json:"summary"`
	Allowed  bool     `json:"allowed"`
	Warnings []string `json:"warnings,omitempty"`
	Patched  []string `json:"patched,omitempty"` // paths /mutate adds or replaces
}

// decide posts each /mutate and /validate payload to the webhook once
// and returns what every request of both phases must be answered: the
// payload's own answer for the direct phase ("mutate/pod"), and for the
// API-server phase's create of an object ("create/pod") both webhooks'
// answers together, as the API server combines them.
func (s *soaker) decide(ctx context.Context) (map[string]expectation, []ExpectedAnswer, error) {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(s.roots)}}
	defer client.CloseIdleConnections()
	out := map[string]expectation{}
	for _, r := range s.mix {
		e, err := askWebhook(ctx, client, s.url+r.Path, r.Body)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", r.Name, err)
		}
		out[r.Name] = e
	}
	var report []ExpectedAnswer
	for _, name := range bench.ObjectNames {
		m, v := out["mutate/"+name], out["validate/"+name]
		c := expectation{allowed: m.allowed && v.allowed, paths: m.paths}
		switch {
		case !m.allowed:
			c.code, c.message, c.paths = m.code, m.message, nil
		case !v.allowed:
			c.code, c.message = v.code, v.message
		}
		c.warnings = uniqueSorted(append(slices.Clone(m.warnings), v.warnings...))
		out["create/"+name] = c
		report = append(report, ExpectedAnswer{Object: name, Summary: c.summary(), Allowed: c.allowed, Warnings: c.warnings, Patched: c.paths})
	}
	return out, report, nil
}

func (e expectation) summary() string {
	s := "allowed"
	if !e.allowed {
		s = fmt.Sprintf("denied (%d: %.80s)", e.code, e.message)
	}
	return fmt.Sprintf("%s, %d warnings, %d paths patched", s, len(e.warnings), len(e.paths))
}

// askWebhook posts one AdmissionReview and reads the answer and the
// paths of its patch.
func askWebhook(ctx context.Context, client *http.Client, url string, body []byte) (expectation, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return expectation{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return expectation{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return expectation{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return expectation{}, fmt.Errorf("POST %s: %s: %.300s", url, resp.Status, data)
	}
	a, err := load.ParseAnswer(data)
	if err != nil {
		return expectation{}, err
	}
	var review struct {
		Response struct {
			Patch []byte `json:"patch"` // base64 in JSON
		} `json:"response"`
	}
	if err := json.Unmarshal(data, &review); err != nil {
		return expectation{}, err
	}
	e := expectation{allowed: a.Allowed, code: a.Code, message: a.Message, warnings: uniqueSorted(a.Warnings)}
	if len(review.Response.Patch) > 0 {
		var ops []struct{ Op, Path string }
		if err := json.Unmarshal(review.Response.Patch, &ops); err != nil {
			return expectation{}, fmt.Errorf("patch: %w", err)
		}
		for _, op := range ops {
			if op.Op == "add" || op.Op == "replace" {
				e.paths = append(e.paths, op.Path)
			}
		}
	}
	return e, nil
}

func uniqueSorted(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// The kinds errors are counted by; each error's text starts with its kind
// (errorKind reads them back).
const (
	kindWebhookCall = "failed calling webhook"
	// kindWebhookError is the webhook's own 500: it could not decide
	// (e.g. its evaluation deadline passed) and said so, never allowing.
	kindWebhookError = "webhook answered 500"
	kindTimeout      = "timeout"
	kindThrottled    = "HTTP 429"
	kindServer       = "HTTP 5xx"
	kindUnexpected   = "unexpected answer"
	kindNotSent      = "not sent: too many in flight"
	kindTransport    = "transport"
)

// errorKind sorts one of loadgen's error texts into a kind.
func errorKind(text string) string {
	for _, kind := range []string{kindWebhookCall, kindWebhookError, kindUnexpected, kindThrottled} {
		if strings.HasPrefix(text, kind) {
			return kind
		}
	}
	switch {
	case strings.HasPrefix(text, "not sent"):
		return kindNotSent
	case strings.HasPrefix(text, "HTTP 5"):
		return kindServer
	case strings.Contains(text, "Client.Timeout"), strings.Contains(text, "deadline exceeded"), strings.Contains(text, "timeout"):
		return kindTimeout
	}
	return kindTransport
}

// expectReview judges the webhook's answer to a payload of the direct
// phase: HTTP 200, and allowed or denied as the payload must be. The
// check is a byte search, not a decode, so that the load generator, on
// the same two cores, takes as little as it can from the webhook.
func (s *soaker) expectReview(req loadgen.Request, resp *http.Response, body []byte) error {
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests:
		return fmt.Errorf("%s: %.120s", kindThrottled, body)
	case code >= 500:
		return fmt.Errorf("HTTP %d: %.120s", code, body)
	case code != http.StatusOK:
		return fmt.Errorf("%s: %s: HTTP %d", kindUnexpected, req.Name, code)
	}
	want := s.expected[req.Name]
	if got := bytes.Contains(body, []byte(`"allowed":true`)); got != want.allowed {
		// Rare: decode the answer to say what it was.
		a, err := load.ParseAnswer(body)
		if err != nil {
			return fmt.Errorf("%s: %s: %v", kindUnexpected, req.Name, err)
		}
		return fmt.Errorf("%s: %s: allowed %t (%d %s), want %t", kindUnexpected, req.Name, a.Allowed, a.Code, a.Message, want.allowed)
	}
	return nil
}

// expectCreate judges the API server's answer to a dry-run create: a
// call to the webhook that failed, a 429 or a 5xx is an error; so is any
// answer that is not the one the webhook gave directly. An allowed object
// must come back 201 with both webhooks' warnings and every path the
// mutation set; a denied one with the denial's code and message.
func (s *soaker) expectCreate(req loadgen.Request, resp *http.Response, body []byte) error {
	want, ok := s.expected[req.Name]
	if !ok {
		return fmt.Errorf("%s: %s: no expected answer", kindUnexpected, req.Name)
	}
	return checkCreate(want, req.Name, resp.StatusCode, resp.Header.Values("Warning"), body)
}

func checkCreate(want expectation, name string, code int, warningHeaders []string, body []byte) error {
	msg := ""
	if code != http.StatusCreated {
		msg = statusMessage(body)
	}
	switch {
	case strings.Contains(msg, kindWebhookCall):
		return fmt.Errorf("%s (HTTP %d): %s", kindWebhookCall, code, msg)
	case code == http.StatusTooManyRequests:
		return fmt.Errorf("%s: %s", kindThrottled, msg)
	case code >= 500 && strings.Contains(msg, "denied the request"):
		return fmt.Errorf("%s: %s", kindWebhookError, msg)
	case code >= 500:
		return fmt.Errorf("HTTP %d: %s", code, msg)
	case !want.allowed:
		if code != int(want.code) || !strings.Contains(msg, want.message) {
			return fmt.Errorf("%s: %s: HTTP %d %q, want HTTP %d with %q", kindUnexpected, name, code, msg, want.code, want.message)
		}
		return nil
	case code != http.StatusCreated:
		return fmt.Errorf("%s: %s: HTTP %d, want 201: %s", kindUnexpected, name, code, msg)
	}
	warnings, errs := utilnet.ParseWarningHeaders(warningHeaders)
	if len(errs) > 0 {
		return fmt.Errorf("%s: %s: Warning headers: %v", kindUnexpected, name, errs)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.Text)
	}
	if got = uniqueSorted(got); !slices.Equal(got, want.warnings) {
		return fmt.Errorf("%s: %s: warnings %q, want %q", kindUnexpected, name, got, want.warnings)
	}
	if len(want.paths) == 0 {
		return nil
	}
	var obj any
	if err := json.Unmarshal(body, &obj); err != nil {
		return fmt.Errorf("%s: %s: created object: %v", kindUnexpected, name, err)
	}
	for _, p := range want.paths {
		if !hasPointer(obj, p) {
			return fmt.Errorf("%s: %s: no %s in the created object: /mutate not applied", kindUnexpected, name, p)
		}
	}
	return nil
}

// statusMessage is the message of a metav1.Status answer, or the start of
// the body when it is none.
func statusMessage(body []byte) string {
	var st struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &st) == nil && st.Message != "" {
		return st.Message
	}
	return fmt.Sprintf("%.200s", body)
}

// hasPointer says whether the JSON pointer p (RFC 6901) names a value in
// doc.
func hasPointer(doc any, p string) bool {
	ptr, err := jsonpointer.New(p)
	if err != nil {
		return false
	}
	_, _, err = ptr.Get(doc)
	return err == nil
}
