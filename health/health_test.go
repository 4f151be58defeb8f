package health

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

func get(h http.Handler, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestAConditionIsShownWithoutTurningReadinessOff(t *testing.T) {
	cond := "policy change rejected: x.rego:3: parse error"
	s := &Server{
		Live:       map[string]healthz.Checker{"ping": healthz.Ping},
		Ready:      map[string]healthz.Checker{"policies": healthz.Ping},
		Conditions: map[string]func() string{"policy-reload": func() string { return cond }},
	}
	if code, body := get(s.Handler(), "/readyz"); code != 200 || body != "ok" {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	code, body := get(s.Handler(), "/readyz?verbose")
	if code != 200 || !strings.Contains(body, "[+]policies ok") || !strings.Contains(body, "[!]policy-reload: "+cond) || !strings.HasSuffix(body, "readyz check passed\n") {
		t.Fatalf("/readyz?verbose = %d\n%s", code, body)
	}
	if code, _ := get(s.Handler(), "/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
}

func TestAFailingCheckMakesItUnreadyAndSaysWhy(t *testing.T) {
	s := &Server{Ready: map[string]healthz.Checker{
		"policies":  healthz.Ping,
		"inventory": func(*http.Request) error { return errors.New("node inventory has not synced yet") },
	}, Conditions: map[string]func() string{"policy-reload": func() string { return "" }}}
	code, body := get(s.Handler(), "/readyz")
	if code != 500 || !strings.Contains(body, "[-]inventory failed: node inventory has not synced yet") || strings.Contains(body, "[!]") {
		t.Fatalf("/readyz = %d\n%s", code, body)
	}
}
