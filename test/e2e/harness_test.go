// Package e2e runs podgate against a real kube-apiserver and etcd. TestMain
// starts one cluster for the whole package with test/cluster: the control
// plane, an admin kubeconfig, four Nodes shaped like a small cluster
// (cluster.Nodes), and the webhook built from ./cmd/webhook, registered as
// the MutatingWebhookConfiguration and ValidatingWebhookConfiguration
// "podgate" and checked to be called before any test runs.
//
// Tests reach it through helpers that take t: kubectl, kubectlApply,
// apiClient, testNamespace and metrics. A test of the webhook
// starts with requireWebhook(t), so it skips when there is none. A failed
// test logs what the webhook logged while it ran (testNamespace arranges
// it); a failed run prints the end of the webhook's log, and a failed
// start those of etcd and kube-apiserver too. Nothing outlives the run: on
// Ctrl-C or SIGTERM the cluster is stopped before the binary exits, and
// whatever a crash leaves, test/cluster's reaper kills.
//
// Environment:
//
//	PODGATE_E2E_NO_WEBHOOK=1   no webhook: only the API server and the Nodes
//	PODGATE_E2E_CONFIG=FILE    passed to the webhook as --config
//	PODGATE_E2E_POLICY_DIR=DIR passed to the webhook as --policy-dir
//
// Without the last two, the webhook gets an empty config file and an empty
// policy directory of the run's own, which the hot reload tests write to.
//
// `go test -short` skips the package: every helper skips its test.
package e2e

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/test/cluster"
)

const (
	envNoWebhook = "PODGATE_E2E_NO_WEBHOOK"
	envConfig    = "PODGATE_E2E_CONFIG"
	envPolicyDir = "PODGATE_E2E_POLICY_DIR"

	// logTail is how much of the webhook's log a failed test prints.
	logTail = 64 << 10
)

// bed is the cluster TestMain started; nil in -short mode.
var bed *testBed

// testBed is the cluster every test shares.
type testBed struct {
	*cluster.Cluster
	root      string // repository root: examples/, test/tools/
	config    string // the webhook's --config file
	policyDir string // the webhook's --policy-dir
}

// reloadSources returns the webhook's config file and policy directory:
// the environment's, or an empty pair of the run's own.
func reloadSources() (config, policyDir string, cleanup func(), err error) {
	config, policyDir = os.Getenv(envConfig), os.Getenv(envPolicyDir)
	if config != "" || policyDir != "" {
		return config, policyDir, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "podgate-e2e-sources-")
	if err != nil {
		return "", "", nil, err
	}
	config, policyDir = filepath.Join(dir, "config.yaml"), filepath.Join(dir, "policies")
	if err := errors.Join(os.WriteFile(config, nil, 0o644), os.Mkdir(policyDir, 0o755)); err != nil {
		return "", "", nil, err
	}
	return config, policyDir, func() { _ = os.RemoveAll(dir) }, nil
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runSuite(m))
}

// runSuite starts the cluster with the webhook's reload sources, runs the
// tests and stops everything (cluster.RunSuite).
func runSuite(m *testing.M) int {
	if testing.Short() {
		return m.Run() // bed stays nil: every helper skips its test
	}
	config, policyDir, cleanup, err := reloadSources()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer cleanup()
	webhook := os.Getenv(envNoWebhook) != "1"
	if !webhook {
		fmt.Fprintf(os.Stderr, "e2e: %s=1: no webhook\n", envNoWebhook)
	}
	o := cluster.Options{Webhook: webhook, Config: config, PolicyDir: policyDir}
	return cluster.RunSuite(m, "e2e", o, func(c *cluster.Cluster) {
		bed = &testBed{Cluster: c, root: c.Root(), config: config, policyDir: policyDir}
	})
}

// requireBed returns the test bed, or skips t when there is none.
func requireBed(t testing.TB) *testBed {
	t.Helper()
	if bed == nil {
		t.Skip("e2e: no API server in -short mode")
	}
	return bed
}

// requireWebhook returns the test bed when the webhook runs, or skips t.
func requireWebhook(t testing.TB) *testBed {
	t.Helper()
	if b := requireBed(t); b.HasWebhook() {
		return b
	}
	t.Skipf("e2e: %s=1: no webhook", envNoWebhook)
	return nil
}

// kubectl runs kubectl as the admin user and returns what it printed. A
// non-zero exit is err (an *exec.ExitError); the test goes on either way.
func kubectl(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runKubectl(t, nil, args...)
}

// kubectlApply pipes manifest (YAML or JSON, one or more documents) into
// `kubectl apply -f -`, with any extra arguments (-n, --dry-run=server, ...).
func kubectlApply(t testing.TB, manifest string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runKubectl(t, strings.NewReader(manifest), append([]string{"apply", "-f", "-"}, args...)...)
}

func runKubectl(t testing.TB, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	b := requireBed(t)
	t.Logf("kubectl %s", strings.Join(args, " "))
	return b.Kubectl(t.Context(), stdin, args...)
}

// apiClient is a client with admin rights, for creating fixtures and reading
// back what the API server stored.
func apiClient(t testing.TB) client.Client {
	t.Helper()
	return requireBed(t).Client()
}

// metrics returns the webhook's Prometheus metrics, as text.
func metrics(t testing.TB) string {
	t.Helper()
	m, err := requireWebhook(t).Metrics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return m
}
