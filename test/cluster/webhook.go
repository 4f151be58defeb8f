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
	binary      string
	args        []string
	env         []string // added to the environment
	cmd         *exec.Cmd
	logPath     string
	log         *os.File
	port        int    // HTTPS admission endpoints
	metricsPort int    // Prometheus /metrics
	healthPort  int    // /healthz, /readyz
	caPEM       []byte // caBundle of the webhook configurations
	exited      chan struct{}
	exitErr     error // set before exited closes
	stopped     bool  // stop was called
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

// Webhook is one webhook process of the cluster.
type Webhook struct{ w *webhook }

// StartWebhook starts a webhook process, from the binary Start built
// (Options.Webhook or Options.BuildWebhook), with Options' flags and args,
// and waits until it is ready. With register, the API server is told to
// call it (there can be one such) and StartWebhook waits until it does;
// other processes serve no admission but run everything else, e.g. the
// audit. Stop stops every process.
func (c *Cluster) StartWebhook(ctx context.Context, args []string, register bool) (*Webhook, error) {
	if register && c.webhook != nil {
		return nil, errors.New("start webhook: one is registered already")
	}
	ready := c.step("webhook ready")
	w, err := c.launchWebhook(args)
	if err != nil {
		return nil, err
	}
	if err := w.waitReady(ctx); err != nil {
		return nil, err
	}
	ready()
	if !register {
		return &Webhook{w}, nil
	}
	c.webhook = w
	defer c.step("webhook registered and called")()
	if err := registerWebhook(ctx, c.client, w); err != nil {
		return nil, err
	}
	return &Webhook{w}, waitWired(ctx, c.client, w)
}

// launchWebhook starts a webhook process with a certificate and ports of
// its own, Options' flags and args, and hands it to the reaper; it does
// not wait for it to be ready.
func (c *Cluster) launchWebhook(args []string) (*webhook, error) {
	if c.binary == "" {
		return nil, errors.New("start webhook: not built (set Options.Webhook or Options.BuildWebhook)")
	}
	n := len(c.webhooks)
	w := &webhook{binary: c.binary, env: c.opts.WebhookEnv, logPath: filepath.Join(c.dir, fmt.Sprintf("webhook-%d.log", n))}
	if n == 0 {
		w.logPath = filepath.Join(c.dir, "webhook.log")
	}
	certDir := filepath.Join(c.dir, fmt.Sprintf("webhook-certs-%d", n))
	var err error
	if w.caPEM, err = writeWebhookCerts(certDir); err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	w.port, w.metricsPort, w.healthPort = ports[0], ports[1], ports[2]
	w.args = []string{
		"--kubeconfig", c.kubeconfig,
		"--cert-dir", certDir,
		"--port", strconv.Itoa(w.port),
		"--metrics-bind-address", loopback(w.metricsPort),
		"--health-probe-bind-address", loopback(w.healthPort),
	}
	if c.opts.Config != "" {
		w.args = append(w.args, "--config", c.opts.Config)
	}
	if c.opts.PolicyDir != "" {
		w.args = append(w.args, "--policy-dir", c.opts.PolicyDir)
	}
	w.args = append(append(w.args, c.opts.WebhookArgs...), args...)
	if err := c.runProcess(w); err != nil {
		return nil, err
	}
	c.webhooks = append(c.webhooks, w)
	return w, nil
}

// runProcess starts w (again, after a stop) and hands it to the reaper.
func (c *Cluster) runProcess(w *webhook) error {
	if err := w.start(); err != nil {
		return err
	}
	return c.reaper.killPID(w.cmd.Process.Pid)
}

// MetricsURL is the process's Prometheus endpoint.
func (h *Webhook) MetricsURL() string { return h.w.metricsURL() }

// Metrics returns the process's Prometheus metrics, as text.
func (h *Webhook) Metrics(ctx context.Context) (string, error) { return getText(ctx, h.w.metricsURL()) }

// PID is the process's id, for reading its resource use from /proc.
func (h *Webhook) PID() int { return h.w.cmd.Process.Pid }

// LogPath is the file the process logs to.
func (h *Webhook) LogPath() string { return h.w.logPath }

// Stop stops the process (SIGTERM, then a kill if it does not exit in
// time); the cluster's Stop does not stop it again.
func (h *Webhook) Stop(log io.Writer) error { return h.w.stop(log) }

// reloadSources makes an empty config file and policy directory in the
// scratch dir, for Options.ReloadSources.
func (c *Cluster) reloadSources() (config, policyDir string, err error) {
	dir := filepath.Join(c.dir, "sources") // not "podgate": the demo builds the CLI there
	config, policyDir = filepath.Join(dir, "config.yaml"), filepath.Join(dir, "policies")
	if err := os.MkdirAll(policyDir, 0o755); err != nil {
		return "", "", fmt.Errorf("make the webhook's policy dir: %w", err)
	}
	if err := os.WriteFile(config, []byte("# podgate's config (docs/authoring.md); the webhook reloads it when it changes.\n"), 0o644); err != nil {
		return "", "", fmt.Errorf("write the webhook's config: %w", err)
	}
	return config, policyDir, nil
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

// start runs the binary with its output appended to the log file, in a
// process group of its own: a Ctrl-C in the terminal goes to our process,
// which stops the webhook with SIGTERM when it is done with it, rather than
// straight to the webhook, which would then be gone before Stop.
func (w *webhook) start() error {
	var err error
	if w.log, err = os.OpenFile(w.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return fmt.Errorf("create webhook log: %w", err)
	}
	w.exited, w.exitErr, w.stopped = make(chan struct{}), nil, false
	w.cmd = exec.Command(w.binary, w.args...)
	if len(w.env) > 0 {
		w.cmd.Env = append(os.Environ(), w.env...)
	}
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
	if w.stopped {
		return nil
	}
	w.stopped = true
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
