package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// slowPolicy takes a noticeable moment on every Pod, long enough for a
// shutdown to begin while it is being evaluated.
const slowPolicy = `# METADATA
# title: Slow
# description: Takes a moment on every Pod.
# custom:
#   enforcement: warn
#   rules:
#     slow: {enforcement: warn, summary: slow}
package podgate.policies.slow

violation contains {"rule": "slow", "msg": "counted; nothing to fix"} if {
	input.request.kind.kind == "Pod"
	count([x | some x in numbers.range(1, 300000); x % 7 == 0]) > 0
}
`

// A request being evaluated when the server is told to stop (SIGTERM
// cancels the server's context) still gets its answer: the server drains.
func TestRequestsInFlightAreAnsweredWhileTheServerDrains(t *testing.T) {
	dir := t.TempDir()
	policyDir := filepath.Join(dir, "policies")
	if err := os.Mkdir(policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(policyDir, "slow.rego"), []byte(slowPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	o := webhookOptions(t, dir)
	// The policy takes a second or so on a busy machine and twenty under
	// the race detector: the deadline leaves room for both and stays
	// below the server's minute of graceful shutdown.
	o.EvalTimeout = 50 * time.Second
	eng := engine.New()
	if err := eng.Load(t.Context(), engine.Sources{Builtin: policies.FS, PolicyDir: policyDir}); err != nil {
		t.Fatal(err)
	}
	srv := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: o.Port, CertDir: o.CertDir, TLSOpts: []func(*tls.Config){o.tlsConfig}})
	registerHandlers(srv, eng, o, logr.Discard())
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()

	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := "https://127.0.0.1:" + strconv.Itoa(o.Port) + "/validate"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v", err)
		}
	}
	type answer struct {
		status int
		body   map[string]any
		err    error
	}
	answers := make(chan answer, 1)
	go func() {
		resp, err := client.Post(url, "application/json", bytes.NewBufferString(review))
		if err != nil {
			answers <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		answers <- answer{resp.StatusCode, body, err}
	}()
	// Stop once controller-runtime counts the request in flight: it is
	// being evaluated, however fast or slow the machine.
	for deadline := time.Now().Add(30 * time.Second); inFlight(t, "/validate") < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request was never in flight")
		}
	}
	stop()
	a := <-answers
	if a.err != nil || a.status != 200 {
		t.Fatalf("in-flight request: %d %v", a.status, a.err)
	}
	resp, _ := a.body["response"].(map[string]any)
	if resp["allowed"] != true || resp["warnings"] == nil {
		t.Fatalf("want the policy's answer (allowed with its warning), got %v", a.body)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// inFlight is controller-runtime's gauge of the requests the webhook at
// path is answering.
func inFlight(t *testing.T, path string) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "controller_runtime_webhook_requests_in_flight" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "webhook" && l.GetValue() == path {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
