package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testNamespace creates a namespace for t, named after the test plus a
// random suffix (so -count=2 and reruns get fresh ones), and deletes it when
// t ends. No namespace controller runs here: the deleted namespace stays
// Terminating with its objects until the run ends, which no test sees.
func testNamespace(t testing.TB) string {
	t.Helper()
	c := apiClient(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(t.Name())}}
	if err := c.Create(t.Context(), ns); err != nil {
		t.Fatalf("create namespace for %s: %v", t.Name(), err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run: its values
		// without its end.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
		defer cancel()
		if err := c.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	t.Logf("namespace %s", ns.Name)
	if b := requireBed(t); b.HasWebhook() {
		logWebhookOnFailure(t, b.WebhookLogPath())
	}
	return ns.Name
}

// logWebhookOnFailure logs, when t fails, what the webhook logged (to path)
// while t ran.
func logWebhookOnFailure(t testing.TB, path string) {
	var start int64
	if info, err := os.Stat(path); err == nil {
		start = info.Size()
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		data, err := os.ReadFile(path)
		if err != nil || int64(len(data)) < start {
			t.Logf("read webhook log: %v", err)
			return
		}
		data = data[start:]
		if len(data) > logTail {
			data = data[len(data)-logTail:]
		}
		t.Logf("webhook log while %s ran (%s):\n%s", t.Name(), path, data)
	})
}

var notDNSLabel = regexp.MustCompile(`[^a-z0-9]+`)

// namespacePrefix turns a test name into a DNS label prefix ending in "-",
// leaving room for the 5-character suffix GenerateName adds. A name too long
// keeps its start and a hash of the whole, so prefixes stay distinct.
func namespacePrefix(testName string) string {
	const maxPrefix = 63 - 5 - 1 // label length, generated suffix, trailing "-"
	name := strings.Trim(notDNSLabel.ReplaceAllString(strings.ToLower(testName), "-"), "-")
	if len(name) > maxPrefix {
		sum := sha256.Sum256([]byte(testName))
		hash := hex.EncodeToString(sum[:])[:8]
		name = strings.TrimRight(name[:maxPrefix-len(hash)-1], "-") + "-" + hash
	}
	if name == "" {
		name = "e2e"
	}
	return name + "-"
}
