package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	crwebhookmetrics "sigs.k8s.io/controller-runtime/pkg/webhook/admission/metrics"
)

// A handler that panics (here: no engine at all) is recovered: the request
// gets a 500 with the reason, the panic is counted, the server goes on.
func TestAPanicInAHandlerIsRecoveredAnsweredAndCounted(t *testing.T) {
	srv := webhook.NewServer(webhook.Options{})
	registerHandlers(srv, nil, NewOptions(), logr.Discard())
	mux := srv.WebhookMux()
	before := testutil.ToFloat64(crwebhookmetrics.WebhookPanics.WithLabelValues())
	for _, path := range []string{"/mutate", "/validate"} {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewBufferString(review))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if !strings.Contains(rec.Body.String(), `"allowed":false`) || !strings.Contains(rec.Body.String(), `"code":500`) || !strings.Contains(rec.Body.String(), "panic") {
			t.Fatalf("%s: want a 500 that names the panic, got %d %s", path, rec.Code, rec.Body.String())
		}
	}
	if got := testutil.ToFloat64(crwebhookmetrics.WebhookPanics.WithLabelValues()) - before; got != 2 {
		t.Fatalf("controller_runtime_webhook_panics_total rose by %v, want 2", got)
	}
}
