package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podgate/podgate/certs"
)

const (
	webhookConfigName = "podgate"
	// webhookReadyTimeout bounds the webhook's start: it compiles every
	// policy and syncs its Node informer before /readyz says yes.
	webhookReadyTimeout = time.Minute
	// webhookWiredTimeout bounds the wait for the API server to call the
	// webhook: its cache of webhook configurations follows an informer, so
	// a new configuration takes effect a moment after it is created.
	webhookWiredTimeout = 30 * time.Second
	// webhookStopTimeout is how long the webhook may take to drain and exit
	// on SIGTERM before it is killed.
	webhookStopTimeout = 15 * time.Second
	pollInterval       = 100 * time.Millisecond
	// Certificates for one run: long enough for any run, short enough that a
	// leaked key is worthless soon.
	caValidity      = 7 * 24 * time.Hour
	servingValidity = 24 * time.Hour
)

// webhook is the podgate webhook process under test.
type webhook struct {
	cmd         *exec.Cmd
	logPath     string
	log         *os.File
	port        int    // HTTPS admission endpoints
	metricsPort int    // Prometheus /metrics
	healthPort  int    // /healthz, /readyz
	caPEM       []byte // caBundle of the webhook configurations
	exited      chan struct{}
	exitErr     error // set before exited closes
}

// startWebhook starts the webhook binary, waits until it is ready,
// registers it with the API server and waits until the API server calls it.
func (b *testBed) startWebhook(ctx context.Context, binary string) error {
	w := &webhook{logPath: filepath.Join(b.tmp, "webhook.log"), exited: make(chan struct{})}
	certDir := filepath.Join(b.tmp, "webhook-certs")
	var err error
	if w.caPEM, err = writeWebhookCerts(certDir); err != nil {
		return err
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	w.port, w.metricsPort, w.healthPort = ports[0], ports[1], ports[2]
	args := []string{
		"--kubeconfig", b.kubeconfig,
		"--cert-dir", certDir,
		"--port", strconv.Itoa(w.port),
		"--metrics-bind-address", loopback(w.metricsPort),
		"--health-probe-bind-address", loopback(w.healthPort),
	}
	if f := os.Getenv(envConfig); f != "" {
		args = append(args, "--config", f)
	}
	if d := os.Getenv(envPolicyDir); d != "" {
		args = append(args, "--policy-dir", d)
	}
	ready := logStep("webhook ready")
	if err := w.start(binary, args); err != nil {
		return err
	}
	b.webhook = w
	if err := b.reaper.killPID(w.cmd.Process.Pid); err != nil {
		return err
	}
	if err := w.waitReady(ctx); err != nil {
		return err
	}
	ready()
	defer logStep("webhook registered and called")()
	if err := registerWebhook(ctx, b.client, w); err != nil {
		return err
	}
	return waitWired(ctx, b.client, w)
}

// buildWebhook compiles ./cmd/webhook into dir, once per run. It has no
// deadline of its own: on a cold build cache it compiles OPA and client-go,
// which takes minutes on a small machine (go test's -timeout still bounds
// it).
func buildWebhook(root, dir string) (string, error) {
	defer logStep("webhook built")()
	binary := filepath.Join(dir, "webhook")
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/webhook")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/webhook: %w\n%s", err, out)
	}
	return binary, nil
}

// writeWebhookCerts writes a fresh CA and a serving certificate for
// localhost and 127.0.0.1 into dir, and returns the CA certificate.
func writeWebhookCerts(dir string) ([]byte, error) {
	ca, err := certs.NewCA("podgate-e2e-ca", caValidity)
	if err != nil {
		return nil, err
	}
	pair, err := ca.Issue([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, servingValidity)
	if err != nil {
		return nil, err
	}
	if err := certs.WriteDir(dir, ca, pair); err != nil {
		return nil, err
	}
	return ca.CertPEM, nil
}

// freePorts asks the kernel for n free loopback ports. They are free when
// asked; another process could take one before the webhook binds it, which
// on a test machine does not happen often enough to design around.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close() // held until all are picked, so none repeats
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// start runs the binary with its output in the log file.
func (w *webhook) start(binary string, args []string) error {
	var err error
	if w.log, err = os.Create(w.logPath); err != nil {
		return fmt.Errorf("create webhook log: %w", err)
	}
	w.cmd = exec.Command(binary, args...)
	w.cmd.Stdout, w.cmd.Stderr = w.log, w.log
	if err := w.cmd.Start(); err != nil {
		return fmt.Errorf("start webhook: %w", err)
	}
	go func() {
		w.exitErr = w.cmd.Wait()
		close(w.exited)
	}()
	return nil
}

// waitReady polls /readyz until it answers 200, the webhook exits, or the
// timeout passes.
func (w *webhook) waitReady(ctx context.Context) error {
	url := "http://" + loopback(w.healthPort) + "/readyz"
	var last string
	err := wait.PollUntilContextTimeout(ctx, pollInterval, webhookReadyTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case <-w.exited:
			return false, fmt.Errorf("webhook exited before it was ready: %v", w.exitErr)
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
		last = fmt.Sprintf("%s: %s", resp.Status, body)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("wait for webhook %s (last answer %q; log %s): %w", url, last, w.logPath, err)
	}
	return nil
}

// stop sends SIGTERM and waits for the webhook to exit, killing it when it
// takes too long.
func (w *webhook) stop() error {
	defer w.log.Close()
	select {
	case <-w.exited:
		return fmt.Errorf("webhook exited during the run: %v (log %s)", w.exitErr, w.logPath)
	default:
	}
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop webhook: %w", err)
	}
	select {
	case <-w.exited:
		var exitErr *exec.ExitError
		if errors.As(w.exitErr, &exitErr) {
			fmt.Fprintf(os.Stderr, "e2e: webhook exited on SIGTERM with %v\n", w.exitErr)
		}
		return nil
	case <-time.After(webhookStopTimeout):
		_ = w.cmd.Process.Kill()
		<-w.exited
		return fmt.Errorf("webhook did not exit within %s of SIGTERM; killed it", webhookStopTimeout)
	}
}

// metrics returns the webhook's Prometheus metrics, as text.
func metrics(t testing.TB) string {
	t.Helper()
	w := requireWebhook(t)
	return httpGet(t, "http://"+loopback(w.metricsPort)+"/metrics")
}

// webhookLog returns what the webhook has logged so far.
func webhookLog(t testing.TB) string {
	t.Helper()
	w := requireWebhook(t)
	data, err := os.ReadFile(w.logPath)
	if err != nil {
		t.Fatalf("read webhook log: %v", err)
	}
	return string(data)
}

// logOnFailure logs, when t fails, what the webhook logged while t ran.
func (w *webhook) logOnFailure(t testing.TB) {
	var start int64
	if info, err := os.Stat(w.logPath); err == nil {
		start = info.Size()
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		data, err := os.ReadFile(w.logPath)
		if err != nil || int64(len(data)) < start {
			t.Logf("read webhook log: %v", err)
			return
		}
		data = data[start:]
		if len(data) > logTail {
			data = data[len(data)-logTail:]
		}
		t.Logf("webhook log while %s ran (%s):\n%s", t.Name(), w.logPath, data)
	})
}

func httpGet(t testing.TB, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return string(body)
}
