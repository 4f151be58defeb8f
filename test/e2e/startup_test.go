package e2e

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A ConfigMap that is broken when a replica starts (a bad `config:` rolled
// out, a node restart) must not crash-loop it: the webhook stays up and
// unready, says why on /readyz and in its log, and loads the config as
// soon as it is fixed.
func TestAWebhookStartedWithABrokenConfigStaysUpUnreadyAndLoadsItOnceFixed(t *testing.T) {
	b := requireWebhook(t)
	config := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(config, []byte("policies:\n  rollout:\n    enforcement: block\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := b.LaunchWebhook("--config", config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(io.Discard); err != nil {
			t.Error(err)
		}
	})
	why := config + ":3:18: policies.rollout.enforcement: enforcement block: want one of deny, warn, dryrun, off"
	body := waitReadyz(t, p, func(code int, body string) bool {
		return code == 500 && strings.Contains(body, "[-]policies failed: no policy set loaded: "+why) && strings.Contains(body, "[+]inventory ok")
	})
	// Still up a while later: no exit, no crash loop.
	time.Sleep(3 * time.Second)
	if err := p.Running(); err != nil {
		t.Fatalf("the webhook exited over a broken config: %v", err)
	}
	log, err := p.Log()
	if err != nil || !strings.Contains(log, "policies could not be loaded; the webhook stays unready") || !strings.Contains(log, "policies.rollout.enforcement") {
		t.Errorf("the log does not give the reason (%v):\n%s", err, log)
	}
	if strings.Contains(body, "[!]policy-reload") {
		t.Errorf("/readyz speaks of a last good set that does not exist:\n%s", body)
	}

	if err := os.WriteFile(config, []byte("policies:\n  rollout:\n    enforcement: warn\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, p, func(code int, _ string) bool { return code == 200 })
}

// waitReadyz polls the process's /readyz?verbose until done says so, for
// up to a minute, failing if the process exits; it returns the last answer.
func waitReadyz(t *testing.T, p interface {
	Readyz(context.Context) (int, string, error)
	Running() error
}, done func(code int, body string) bool) string {
	t.Helper()
	var body string
	deadline := time.Now().Add(time.Minute)
	for {
		if err := p.Running(); err != nil {
			t.Fatal(err)
		}
		code, b, err := p.Readyz(t.Context())
		if body = b; err == nil && done(code, body) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never said what was wanted; last answer %d %v:\n%s", code, err, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
