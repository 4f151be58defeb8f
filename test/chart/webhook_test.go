package chart

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	"k8s.io/client-go/tools/clientcmd"
)

const (
	// webhookReadyTimeout bounds a webhook's start: compile the policies,
	// sync the Node inventory, make or read the certificate and inject the
	// caBundle.
	webhookReadyTimeout = 2 * time.Minute
	webhookStopTimeout  = 15 * time.Second
)

// replica is one webhook process running out of cluster.
type replica struct {
	name                  string
	port, metrics, health int
	certDir, logPath      string
	cmd                   *exec.Cmd
	exited                chan struct{}
}

// buildWebhook compiles ./cmd/webhook into dir.
func buildWebhook(t *testing.T, dir string) string {
	t.Helper()
	binary := filepath.Join(dir, "webhook")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", binary, "./cmd/webhook")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/webhook: %v\n%s", err, out)
	}
	return binary
}

// impersonatingKubeconfig writes a copy of the admin kubeconfig that acts
// as user, so the webhook gets exactly the rights the chart gave it.
func impersonatingKubeconfig(t *testing.T, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(bed.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = user
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// startReplica starts the webhook with args plus its own ports and cert
// dir, and stops it when t ends. The process dies with the test binary
// even if the cleanup never runs (Pdeathsig).
func startReplica(t *testing.T, binary, name string, port int, args []string) *replica {
	t.Helper()
	ports := freePorts(t, 2)
	dir := t.TempDir()
	r := &replica{name: name, port: port, metrics: ports[0], health: ports[1],
		certDir: filepath.Join(dir, "certs"), logPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	log, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "--port="+strconv.Itoa(r.port), "--cert-dir="+r.certDir,
		"--metrics-bind-address="+loopback(r.metrics), "--health-probe-bind-address="+loopback(r.health))
	r.cmd = exec.Command(binary, args...)
	r.cmd.Stdout, r.cmd.Stderr = log, log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start webhook %s: %v", name, err)
	}
	go func() { _ = r.cmd.Wait(); _ = log.Close(); close(r.exited) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(webhookStopTimeout):
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
		if t.Failed() {
			data, _ := os.ReadFile(r.logPath)
			if len(data) > 32<<10 {
				data = data[len(data)-32<<10:]
			}
			t.Logf("webhook %s log:\n%s", name, data)
		}
	})
	return r
}

// waitReady polls /readyz until it answers 200.
func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	url := "http://" + loopback(r.health) + "/readyz?verbose"
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, webhookReadyTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case <-r.exited:
			return false, fmt.Errorf("webhook %s exited: %v", r.name, r.cmd.ProcessState)
		default:
		}
		body, status, err := get(ctx, url)
		last = fmt.Sprintf("%d %s %v", status, body, err)
		return status == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("webhook %s not ready (last answer %s): %v", r.name, last, err)
	}
}

// servedCert is the certificate the replica serves now, verified against
// roots for 127.0.0.1.
func (r *replica) servedCert(roots *x509.CertPool) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", loopback(r.port),
		&tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, fmt.Errorf("TLS to webhook %s: %w", r.name, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func get(ctx context.Context, url string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(body), resp.StatusCode, err
}

// freePorts asks the kernel for n free loopback ports.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() // held until all are picked, so none repeats
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
