package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func freeAddr(t *testing.T) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	return "127.0.0.1:" + strconv.Itoa(port), port
}

// webhookOptions are the options of an in-process webhook on free loopback
// ports with a fresh certificate in dir.
func webhookOptions(t *testing.T, dir string) Options {
	t.Helper()
	writeCerts(t, dir)
	o := NewOptions()
	_, o.Port = freeAddr(t)
	o.CertDir = dir
	o.MetricsAddr, _ = freeAddr(t)
	o.ProbeAddr, _ = freeAddr(t)
	return o
}

// An API server that cannot be reached when the webhook starts must leave
// it running and unready, not exiting into a crash loop.
func TestUnreachableAPIServerAtStartKeepsTheWebhookUpButUnready(t *testing.T) {
	dir := t.TempDir()
	unreachableAPIServer(t, dir)
	o := webhookOptions(t, dir)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, o) }()
	var body string
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(body, "[-]inventory failed"); {
		select {
		case err := <-done:
			t.Fatalf("the webhook exited while the API server is unreachable: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never reported the unsynced inventory; last answer %q", body)
		}
		time.Sleep(100 * time.Millisecond)
		if resp, err := http.Get("http://" + o.ProbeAddr + "/readyz?verbose"); err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("ready without an inventory:\n%s", raw)
			}
			body = string(raw)
		}
	}
	cancel()
	select {
	case err := <-done:
		// Whatever it says (it never had an inventory), it stopped.
		t.Logf("the webhook stopped: %v", err)
	case <-time.After(45 * time.Second):
		t.Fatal("the webhook did not stop after its context ended")
	}
}

// unreachableAPIServer points KUBECONFIG at an API server that is not
// there.
func unreachableAPIServer(t *testing.T, dir string) {
	t.Helper()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	_, deadPort := freeAddr(t) // nothing listens there
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:`+strconv.Itoa(deadPort)+`"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
}

// A broken config at start must leave the webhook running and unready with
// the reason on /readyz, not exiting into a crash loop; it is loaded as
// soon as it is fixed.
func TestABrokenConfigAtStartKeepsTheWebhookUpUnreadyAndSaysWhy(t *testing.T) {
	dir := t.TempDir()
	unreachableAPIServer(t, dir) // the inventory stays unsynced: only the policies check is looked at
	o := webhookOptions(t, dir)
	o.ConfigFile = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(o.ConfigFile, []byte("policies:\n  rolout: {minRevisionHistory: 3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, o) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			t.Logf("the webhook stopped: %v", err)
		case <-time.After(45 * time.Second):
			t.Error("the webhook did not stop after its context ended")
		}
	}()
	want := "[-]policies failed: no policy set loaded: " + o.ConfigFile + ":2:3: policies.rolout: no such policy (did you mean rollout?)"
	body := waitReadyz(t, o.ProbeAddr, done, want)
	if strings.Contains(body, "[!]policy-reload") {
		t.Errorf("/readyz reports a last good set that does not exist:\n%s", body)
	}
	if err := os.WriteFile(o.ConfigFile, []byte("policies:\n  rollout: {minRevisionHistory: 3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, o.ProbeAddr, done, "[+]policies ok")
}

// waitReadyz polls /readyz?verbose until it says want, failing when the
// webhook exits or 30 seconds pass; it returns the answer.
func waitReadyz(t *testing.T, addr string, done chan error, want string) string {
	t.Helper()
	var body string
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(body, want); {
		select {
		case err := <-done:
			done <- err // for the caller's deferred wait
			t.Fatalf("the webhook exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never said %q; last answer %q", want, body)
		}
		time.Sleep(100 * time.Millisecond)
		if resp, err := http.Get("http://" + addr + "/readyz?verbose"); err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(raw)
		}
	}
	return body
}
