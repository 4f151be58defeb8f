package load

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/podgate/podgate/certs"
	"github.com/prometheus/procfs"
)

const (
	// readyTimeout bounds a server's start: the webhook compiles its
	// policies and syncs its Node informer, OPA compiles the same policies.
	readyTimeout = time.Minute
	// stopTimeout is how long a server may drain after SIGTERM.
	stopTimeout = 15 * time.Second
)

// server is a process under test: the podgate webhook or OPA.
type server struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	url     string // https://127.0.0.1:<port>
	exited  chan struct{}
	waitErr error
}

// startServer runs binary in a process group of its own that dies with
// this process (Pdeathsig), its output in dir/<name>.log, with env added to
// this process's environment.
func startServer(name, binary, dir, url string, env []string, args ...string) (*server, error) {
	s := &server{name: name, url: url, logPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	log, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(binary, args...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		_ = log.Close()
		close(s.exited)
	}()
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// waitReady polls url (plain HTTP or HTTPS with client) until it answers 200.
func (s *server) waitReady(ctx context.Context, client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last string
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited before it was ready: %v (log %s)", s.name, s.waitErr, s.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s (last: %s; log %s): %w", s.name, url, last, s.logPath, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Sprintf("%s: %s", resp.Status, body)
	}
}

// stop sends SIGTERM, then SIGKILL after stopTimeout.
func (s *server) stop() error {
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited during the load test: %v (log %s)", s.name, s.waitErr, s.logPath)
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-s.pid(), syscall.SIGKILL)
		<-s.exited
		return fmt.Errorf("%s ignored SIGTERM for %s; killed", s.name, stopTimeout)
	}
}

// Usage is a process's CPU time and memory at one moment, from /proc.
type Usage struct {
	At   time.Time
	CPU  time.Duration // user + system
	RSS  int64         // bytes
	Peak int64         // VmHWM: the largest RSS so far, bytes
}

// ReadUsage reads pid's Usage now.
func ReadUsage(pid int) (Usage, error) {
	u := Usage{At: time.Now()}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return u, err
	}
	stat, err := p.Stat()
	if err != nil {
		return u, err
	}
	status, err := p.NewStatus()
	if err != nil {
		return u, err
	}
	u.CPU = time.Duration(stat.CPUTime() * float64(time.Second))
	u.RSS, u.Peak = int64(status.VmRSS), int64(status.VmHWM)
	return u, nil
}

// sampler records a process's largest RSS while a run lasts.
type sampler struct {
	pid   int
	start Usage
	mu    sync.Mutex
	max   int64
	stop  chan struct{}
	done  chan struct{}
}

func sample(pid int) (*sampler, error) {
	u, err := ReadUsage(pid)
	if err != nil {
		return nil, err
	}
	s := &sampler{pid: pid, start: u, max: u.RSS, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				if u, err := ReadUsage(pid); err == nil {
					s.mu.Lock()
					s.max = max(s.max, u.RSS)
					s.mu.Unlock()
				}
			}
		}
	}()
	return s, nil
}

// resources is what a process used during a run.
type resources struct {
	CPU    time.Duration // CPU time used
	Cores  float64       // CPU time / wall time
	RSSMax int64         // largest RSS sampled
	RSSEnd int64
}

func (s *sampler) finish() (resources, error) {
	close(s.stop)
	<-s.done
	end, err := ReadUsage(s.pid)
	if err != nil {
		return resources{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cpu := end.CPU - s.start.CPU
	return resources{
		CPU:    cpu,
		Cores:  cpu.Seconds() / end.At.Sub(s.start.At).Seconds(),
		RSSMax: max(s.max, end.RSS),
		RSSEnd: end.RSS,
	}, nil
}

// pki is a CA and a serving certificate for 127.0.0.1 and localhost,
// written as tls.crt, tls.key and ca.crt.
type pki struct {
	dir  string
	pool *x509.CertPool
}

func newPKI(dir string) (*pki, error) {
	ca, err := certs.NewCA("podgate-loadtest-ca", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	pair, err := ca.Issue([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, 12*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := certs.WriteDir(dir, ca, pair); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.CertPEM) {
		return nil, errors.New("load test CA: no certificate")
	}
	return &pki{dir: dir, pool: pool}, nil
}

func (p *pki) cert() string { return filepath.Join(p.dir, certs.CertFile) }
func (p *pki) key() string  { return filepath.Join(p.dir, certs.KeyFile) }

func (p *pki) client() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}},
	}
}

// freePorts asks the kernel for n free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
