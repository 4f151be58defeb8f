// Package e2e runs podgate against a real kube-apiserver and etcd, built by
// test/tools/build.sh at the versions test/tools pins, through
// controller-runtime's envtest. TestMain sets up one test bed for the whole
// package:
//
//   - etcd and kube-apiserver, and an admin kubeconfig (system:masters);
//   - four Nodes shaped like a small cluster (see clusterNodes);
//   - the webhook binary built from ./cmd/webhook, serving on loopback with
//     certificates from the certs package, and registered as the
//     MutatingWebhookConfiguration and ValidatingWebhookConfiguration
//     "podgate", checked to be called before any test runs.
//
// Tests reach it through helpers that take t: kubectl, kubectlApply,
// apiClient, testNamespace, metrics and webhookLog. A test of the webhook
// starts with requireWebhook(t), so it skips when there is none. A failed
// test logs what the webhook logged while it ran (testNamespace arranges
// it); a failed run prints the end of the webhook's log, and a failed
// set-up those of etcd and kube-apiserver too. Nothing outlives the run, not
// even a panic or Ctrl-C: see reaper.
//
// Environment:
//
//	PODGATE_E2E_NO_WEBHOOK=1   no webhook: only the API server and the Nodes
//	PODGATE_E2E_CONFIG=FILE    passed to the webhook as --config
//	PODGATE_E2E_POLICY_DIR=DIR passed to the webhook as --policy-dir
//
// `go test -short` skips the package: every helper skips its test.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	envNoWebhook = "PODGATE_E2E_NO_WEBHOOK"
	envConfig    = "PODGATE_E2E_CONFIG"
	envPolicyDir = "PODGATE_E2E_POLICY_DIR"

	// setUpTimeout bounds starting the test bed once its binaries are
	// built (building takes as long as it takes; go test's -timeout still
	// bounds it). A healthy start takes seconds.
	setUpTimeout = 5 * time.Minute
	// kubectlTimeout bounds one kubectl run; the API server answers in
	// milliseconds, so a run this long is stuck.
	kubectlTimeout = time.Minute
	// logTail is how much of each log a failed run prints.
	logTail = 64 << 10
)

// bed is the test bed TestMain set up; nil in -short mode.
var bed *testBed

// testBed is the running API server and webhook that every test shares.
type testBed struct {
	root         string // repository root
	tmp          string // this run's scratch dir: kubeconfig, certs, logs, binaries
	env          *envtest.Environment
	client       client.Client // admin
	kubeconfig   string        // admin kubeconfig file
	kubectl      string        // kubectl binary
	webhook      *webhook      // nil with PODGATE_E2E_NO_WEBHOOK=1
	reaper       *reaper
	logs         []*os.File // control plane logs, closed at tear down
	tearDownOnce sync.Once
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // bed stays nil: every helper skips its test
	}
	os.Exit(runSuite(m))
}

// runSuite sets up the test bed, runs the tests and tears the bed down,
// whatever happened; it prints the logs when anything failed.
func runSuite(m *testing.M) (code int) {
	b := &testBed{}
	var err error
	if b.reaper, err = startReaper(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	reapOnSignal(b.reaper)
	setUp := false
	defer func() {
		if code != 0 {
			// A failed set-up is often the control plane's doing; a failed
			// test, the webhook's.
			b.printLogs(os.Stderr, !setUp)
		}
		if err := b.tearDown(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: tear down: %v\n", err)
			code = 1
		}
	}()
	if err := b.setUp(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: set up: %v\n", err)
		return 1
	}
	setUp, bed = true, b
	return m.Run()
}

func (b *testBed) setUp() error {
	var err error
	if b.root, err = repoRoot(); err != nil {
		return err
	}
	if b.tmp, err = os.MkdirTemp("", "podgate-e2e-"); err != nil {
		return fmt.Errorf("make scratch dir: %w", err)
	}
	if err := b.reaper.removeDir(b.tmp); err != nil {
		return err
	}
	if err := buildTestBinaries(b.root); err != nil {
		return err
	}
	withWebhook := os.Getenv(envNoWebhook) != "1"
	var binary string
	if withWebhook {
		if binary, err = buildWebhook(b.root, b.tmp); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), setUpTimeout)
	defer cancel()
	up := logStep("test bed up")
	if err := b.startControlPlane(); err != nil {
		return err
	}
	if err := createNodes(ctx, b.client); err != nil {
		return err
	}
	if !withWebhook {
		fmt.Fprintf(os.Stderr, "e2e: %s=1: no webhook\n", envNoWebhook)
	} else if err := b.startWebhook(ctx, binary); err != nil {
		return err
	}
	up()
	return nil
}

// tearDown stops the webhook and the control plane and removes the scratch
// dir. It runs once, however often it is called.
func (b *testBed) tearDown() (err error) {
	b.tearDownOnce.Do(func() {
		var errs []error
		if b.webhook != nil {
			errs = append(errs, b.webhook.stop())
		}
		if b.env != nil {
			if err := b.env.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop etcd and kube-apiserver: %w", err))
			}
		}
		for _, f := range b.logs {
			_ = f.Close()
		}
		if b.tmp != "" {
			errs = append(errs, os.RemoveAll(b.tmp))
		}
		err = errors.Join(errs...)
		if b.reaper != nil {
			// Everything stopped: the reaper has nothing left to do. If
			// something did not stop, let it kill what is left.
			errs = append(errs, b.reaper.finish(err == nil))
		}
		err = errors.Join(errs...)
	})
	return err
}

// printLogs writes the end of the webhook's log and, when asked, of the
// control plane's.
func (b *testBed) printLogs(w io.Writer, controlPlane bool) {
	var files []string
	if b.webhook != nil {
		files = append(files, b.webhook.logPath)
	}
	if controlPlane {
		for _, f := range b.logs {
			files = append(files, f.Name())
		}
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(w, "e2e: read %s: %v\n", name, err)
			continue
		}
		if len(data) > logTail {
			data = data[len(data)-logTail:]
		}
		fmt.Fprintf(w, "==== %s (last %d bytes) ====\n%s\n==== end of %s ====\n",
			filepath.Base(name), len(data), data, filepath.Base(name))
	}
}

// logStep prints how long a step of the set-up took, when the returned
// function is called at its end.
func logStep(what string) func() {
	start := time.Now()
	return func() {
		fmt.Fprintf(os.Stderr, "e2e: %s in %s\n", what, time.Since(start).Round(time.Millisecond))
	}
}

// repoRoot finds the module root above the working directory (go test runs
// a package's tests in the package's folder).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("find repository root: no go.mod above %s", dir)
		}
	}
}

// requireBed returns the test bed, or skips t when there is none.
func requireBed(t testing.TB) *testBed {
	t.Helper()
	if bed == nil {
		t.Skip("e2e: no API server in -short mode")
	}
	return bed
}

// requireWebhook returns the running webhook, or skips t when there is none.
func requireWebhook(t testing.TB) *webhook {
	t.Helper()
	if b := requireBed(t); b.webhook != nil {
		return b.webhook
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
	ctx, cancel := context.WithTimeout(t.Context(), kubectlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.kubectl, args...)
	// KUBECACHEDIR keeps the discovery cache in the scratch dir, not in
	// the user's ~/.kube.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+b.kubeconfig, "KUBECACHEDIR="+filepath.Join(b.tmp, "kube-cache"))
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t.Logf("kubectl %s", strings.Join(args, " "))
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), ctx.Err())
	}
	return stdout.String(), stderr.String(), err
}

// apiClient is a client with admin rights, for creating fixtures and reading
// back what the API server stored.
func apiClient(t testing.TB) client.Client {
	t.Helper()
	return requireBed(t).client
}
