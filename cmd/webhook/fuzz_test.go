package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/podgate/podgate/internal/testenv"
	"github.com/podgate/podgate/mutate"
	"github.com/podgate/podgate/validate"
)

// FuzzAdmissionHTTP feeds raw bodies to both webhooks, as the API server
// (or anything else) could send them. Whatever the body: no panic, the
// answer is an AdmissionReview with HTTP 200, a 4xx code carries a reason,
// and nothing is allowed because of an error.
func FuzzAdmissionHTTP(f *testing.F) {
	for _, c := range testenv.Cases(f) {
		f.Add(admissionReview(c.Operation, c.Object, c.OldObject))
	}
	for _, s := range []string{"", "{", "null", "[]", `{"request":null}`, `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`,
		`{"request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":5}}}}`,
		`{"request":{"uid":"u","kind":{"kind":"Deployment","group":"apps"},"operation":"UPDATE","object":{"spec":{}},"oldObject":[]}}`,
		strings.Repeat("[", 10000)} {
		f.Add([]byte(s))
	}
	eng := testenv.Engine(f, "")
	handlers := []http.Handler{
		&webhook.Admission{Handler: &mutate.Handler{Engine: eng, Log: logr.Discard()}, RecoverPanic: ptr.To(true)},
		&webhook.Admission{Handler: &validate.Handler{Engine: eng, Log: logr.Discard()}, RecoverPanic: ptr.To(true)},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, h := range handlers {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			checkAnswer(t, body, rec)
		}
	})
}

func checkAnswer(t *testing.T, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	var out struct {
		Response *struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
			Status  *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("answer to %q is not an AdmissionReview: %v %q", body, err, rec.Body.String())
	}
	r := out.Response
	switch {
	case rec.Code != http.StatusOK:
		t.Fatalf("HTTP %d: every answer is 200, with its code inside: %s", rec.Code, rec.Body.String())
	case r.Status != nil && r.Status.Code >= 400 && (r.Allowed || r.Status.Message == ""):
		t.Fatalf("code %d without a reason or allowed: %s", r.Status.Code, rec.Body.String())
	case r.Allowed && r.Status != nil && r.Status.Code >= 400:
		t.Fatalf("allowed with an error code: %s", rec.Body.String())
	case !r.Allowed && (r.Status == nil || r.Status.Message == ""):
		t.Fatalf("refused without a reason: %s", rec.Body.String())
	}
}

func admissionReview(op string, obj, old []byte) []byte {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	_ = json.Unmarshal(obj, &meta)
	group := ""
	if g, _, ok := strings.Cut(meta.APIVersion, "/"); ok {
		group = g
	}
	req := map[string]any{
		"uid": "fuzz", "operation": op, "namespace": "default",
		"kind":   map[string]string{"group": group, "version": "v1", "kind": meta.Kind},
		"object": json.RawMessage(obj),
	}
	if len(old) > 0 && string(old) != "null" {
		req["oldObject"] = json.RawMessage(old)
	}
	raw, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
	return raw
}
