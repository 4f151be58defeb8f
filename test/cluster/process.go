package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// processStopTimeout is how long a controller may take to exit on SIGTERM
// before it is killed; they exit in well under a second.
const processStopTimeout = 15 * time.Second

// process is a control plane component this package starts itself
// (kube-controller-manager, kube-scheduler, kwok), in a process group of its
// own, with its output in a log file of the scratch dir.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	exitErr error // set before exited closes
}

// startProcess starts binary with args, logging to <name>.log in the
// scratch dir, and hands its process group to the reaper.
func (c *Cluster) startProcess(name, binary string, args ...string) error {
	log, err := c.createLog(name + ".log")
	if err != nil {
		return err
	}
	p := &process{name: name, logPath: log.Name(), exited: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.procs = append(c.procs, p)
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return c.reaper.tell("group", fmt.Sprint(p.cmd.Process.Pid))
}

// running returns an error when the process has exited.
func (p *process) running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited: %v (log %s)", p.name, p.exitErr, p.logPath)
	default:
		return nil
	}
}

// stop sends SIGTERM to the process group and waits, killing it when it
// takes too long. An exit before stop is an error: it crashed while in use.
func (p *process) stop() error {
	if err := p.running(); err != nil {
		return err
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(processStopTimeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed it", p.name, processStopTimeout)
	}
}

// binPath is a binary of bin/testbin.
func (c *Cluster) binPath(name string) string { return filepath.Join(c.root, "bin", "testbin", name) }

// writeFile writes data into the scratch dir and returns its path.
func (c *Cluster) writeFile(name string, data []byte) (string, error) {
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return path, nil
}
