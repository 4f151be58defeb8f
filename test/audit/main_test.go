// Package audit tests podgate's background audit on a whole simulated
// cluster (test/cluster in its Simulated mode: etcd, kube-apiserver,
// kube-controller-manager with its garbage collector, kube-scheduler and
// kwok running four Nodes) with the Report CRD the chart installs. The
// webhook is built but not started by TestMain: the story starts with
// workloads created before podgate was installed.
//
// `go test -short` skips the package.
package audit

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	reportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/test/cluster"
)

// waitTimeout bounds a wait on the cluster's controllers.
const waitTimeout = 2 * time.Minute

var (
	bed       *cluster.Cluster
	policyDir string // the webhooks' --policy-dir
	podgate   string // the podgate CLI, built from ./cmd/podgate
	reports   client.Client
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "podgate-audit-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	policyDir = filepath.Join(dir, "policies")
	if err := os.Mkdir(policyDir, 0o755); err != nil {
		panic(err)
	}
	opts := cluster.Options{
		Simulated:    true,
		BuildWebhook: true,
		PolicyDir:    policyDir,
		// The one-minute rescan is the shortest the flags allow; the
		// tests trigger rescans themselves (a Node change).
		WebhookArgs: []string{"--audit", "--audit-interval", "1m"},
	}
	os.Exit(cluster.RunSuite(m, "audit", opts, func(c *cluster.Cluster) {
		podgate = filepath.Join(dir, "podgate")
		build := exec.Command("go", "build", "-o", podgate, "./cmd/podgate")
		build.Dir = c.Root()
		if out, err := build.CombinedOutput(); err != nil {
			panic(string(out))
		}
		scheme := runtime.NewScheme()
		_ = clientgoscheme.AddToScheme(scheme)
		_ = reportsv1alpha1.Install(scheme)
		if reports, err = client.New(c.RESTConfig(), client.Options{Scheme: scheme}); err != nil {
			panic(err)
		}
		bed = c
	}))
}

// requireBed returns the cluster, or skips t in -short mode.
func requireBed(t testing.TB) *cluster.Cluster {
	t.Helper()
	if bed == nil {
		t.Skip("audit: no cluster in -short mode")
	}
	return bed
}

// kubectl runs kubectl as the admin user and returns what it printed.
func kubectl(t testing.TB, args ...string) string {
	t.Helper()
	t.Logf("kubectl %s", strings.Join(args, " "))
	stdout, stderr, err := requireBed(t).Kubectl(t.Context(), nil, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout + stderr
}

// namespace creates a namespace for t and waits for its default
// ServiceAccount.
func namespace(t *testing.T, name string) string {
	t.Helper()
	c := requireBed(t).Client()
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		var sa corev1.ServiceAccount
		return c.Get(ctx, types.NamespacedName{Namespace: name, Name: "default"}, &sa) == nil, nil
	})
	if err != nil {
		t.Fatalf("wait for %s/default ServiceAccount: %v", name, err)
	}
	return name
}

// report reads a Report; nil when there is none.
func report(t testing.TB, ns, name string) *reportsv1alpha1.Report {
	t.Helper()
	var rep reportsv1alpha1.Report
	if err := reports.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &rep); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil
		}
		t.Fatal(err)
	}
	return &rep
}

// waitFor polls cond every 200ms until it is true or timeout passes, and
// returns how long that took.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(start)
}

// result finds the result of policy/rule in rep.
func result(rep *reportsv1alpha1.Report, policy, rule string) *reportsv1alpha1.ReportResult {
	if rep == nil {
		return nil
	}
	for i, r := range rep.Results {
		if r.Policy == policy && r.Rule == rule {
			return &rep.Results[i]
		}
	}
	return nil
}

// metric reads one metric of a webhook process.
func metric(t testing.TB, w *cluster.Webhook, name string, labels map[string]string) float64 {
	t.Helper()
	text, err := w.Metrics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := cluster.MetricValue(text, name, labels)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
