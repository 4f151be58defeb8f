package cluster

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
	// Certificates for one run: long enough for any run (a KEEP=1 demo
	// included), short enough that a leaked key is worthless soon.
	caValidity      = 7 * 24 * time.Hour
	servingValidity = 24 * time.Hour
)

// webhook is the podgate webhook process.
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

// buildWebhook compiles ./cmd/webhook into the scratch dir, once per
// cluster, so the webhook is the working tree's. It has no deadline of its
// own: on a cold build cache it compiles OPA and client-go, which takes
// minutes on a small machine.
func (c *Cluster) buildWebhook(ctx context.Context) (string, error) {
	built := c.step("webhook built")
	binary := filepath.Join(c.dir, "webhook")
	cmd := groupCommand(ctx, "go", "build", "-o", binary, "./cmd/webhook")
	cmd.Dir = c.root
	if out, err := cmd.CombinedOutput(); err != nil {
		if len(out) > 0 {
			err = fmt.Errorf("%w\n%s", err, out)
		}
		return "", fmt.Errorf("go build ./cmd/webhook: %w", err)
	}
	built()
	return binary, nil
}

// startWebhook starts the webhook binary, waits until it is ready,
// registers it with the API server and waits until the API server calls it.
func (c *Cluster) startWebhook(ctx context.Context, binary string, o Options) error {
	w := &webhook{logPath: filepath.Join(c.dir, "webhook.log"), exited: make(chan struct{})}
	certDir := filepath.Join(c.dir, "webhook-certs")
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
		"--kubeconfig", c.kubeconfig,
		"--cert-dir", certDir,
		"--port", strconv.Itoa(w.port),
		"--metrics-bind-address", loopback(w.metricsPort),
		"--health-probe-bind-address", loopback(w.healthPort),
	}
	if o.Config != "" {
		args = append(args, "--config", o.Config)
	}
	if o.PolicyDir != "" {
		args = append(args, "--policy-dir", o.PolicyDir)
	}
	ready := c.step("webhook ready")
	if err := w.start(binary, args); err != nil {
		return err
	}
	c.webhook = w
	if err := c.reaper.killPID(w.cmd.Process.Pid); err != nil {
		return err
	}
	if err := w.waitReady(ctx); err != nil {
		return err
	}
	ready()
	defer c.step("webhook registered and called")()
	if err := registerWebhook(ctx, c.client, w); err != nil {
		return err
	}
	return waitWired(ctx, c.client, w)
}

// writeWebhookCerts writes a fresh CA and a serving certificate for
// localhost and 127.0.0.1 into dir, and returns the CA certificate.
func writeWebhookCerts(dir string) ([]byte, error) {
	ca, err := certs.NewCA("podgate-cluster-ca", caValidity)
	if err != nil {
		return nil, fmt.Errorf("webhook CA: %w", err)
	}
	pair, err := ca.Issue([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, servingValidity)
	if err != nil {
		return nil, fmt.Errorf("webhook serving certificate: %w", err)
	}
	if err := certs.WriteDir(dir, ca, pair); err != nil {
		return nil, fmt.Errorf("write webhook certificates: %w", err)
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

// start runs the binary with its output in the log file, in a process
// group of its own: a Ctrl-C in the terminal goes to our process, which
// stops the webhook with SIGTERM when it is done with it, rather than
// straight to the webhook, which would then be gone before Stop.
func (w *webhook) start(binary string, args []string) error {
	var err error
	if w.log, err = os.Create(w.logPath); err != nil {
		return fmt.Errorf("create webhook log: %w", err)
	}
	w.cmd = exec.Command(binary, args...)
	w.cmd.Stdout, w.cmd.Stderr = w.log, w.log
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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
// takes too long. An exit before stop is an error: the webhook crashed
// while in use.
func (w *webhook) stop(log io.Writer) error {
	defer w.log.Close()
	select {
	case <-w.exited:
		return fmt.Errorf("webhook exited while in use: %v (log %s)", w.exitErr, w.logPath)
	default:
	}
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop webhook: %w", err)
	}
	select {
	case <-w.exited:
		var exitErr *exec.ExitError
		if errors.As(w.exitErr, &exitErr) {
			fmt.Fprintf(log, "cluster: webhook exited on SIGTERM with %v\n", w.exitErr)
		}
		return nil
	case <-time.After(webhookStopTimeout):
		_ = w.cmd.Process.Kill()
		<-w.exited
		return fmt.Errorf("webhook did not exit within %s of SIGTERM; killed it", webhookStopTimeout)
	}
}

func (w *webhook) metricsURL() string { return "http://" + loopback(w.metricsPort) + "/metrics" }
