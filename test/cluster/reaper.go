package cluster

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// reaper is a shell that outlives this process. It reads what to clean up
// from its stdin; when stdin closes without "disarm" (this process ended
// however it ended: a panic, go test's -timeout, a second Ctrl-C, SIGKILL)
// it kills those processes and removes those directories. envtest starts
// etcd and kube-apiserver in process groups of their own, and the webhook
// runs in one too, so without it they would outlive a crashed run.
type reaper struct {
	cmd *exec.Cmd
	mu  sync.Mutex // serializes lines on in
	in  io.WriteCloser
}

// reaperScript ignores the signals that end this process group (Ctrl-C, a
// closed terminal, a CI runner's SIGTERM), since it shares our group, and
// refuses anything but a plain PID above 1: kill -- -1 would signal every
// process.
const reaperScript = `trap '' INT HUP TERM QUIT
procs= dirs=
while read -r kind arg; do
  case $kind in disarm) exit 0 ;; esac
  case $kind:$arg in
    group:*[!0-9]*|pid:*[!0-9]*|group:|pid:|*:0|*:1) ;;
    group:*) procs="$procs -$arg" ;;
    pid:*) procs="$procs $arg" ;;
    dir:/?*) dirs="$dirs $arg" ;;
  esac
done
[ -n "$procs" ] && kill -s KILL -- $procs 2>/dev/null
[ -n "$dirs" ] && rm -rf -- $dirs
exit 0
`

func startReaper() (*reaper, error) {
	cmd := exec.Command("sh", "-c", reaperScript)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	return &reaper{cmd: cmd, in: in}, nil
}

func (r *reaper) tell(kind, arg string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := fmt.Fprintf(r.in, "%s %s\n", kind, arg); err != nil {
		return fmt.Errorf("tell reaper %s %s: %w", kind, arg, err)
	}
	return nil
}

func (r *reaper) removeDir(dir string) error { return r.tell("dir", dir) }
func (r *reaper) killPID(pid int) error      { return r.tell("pid", strconv.Itoa(pid)) }

// adoptChildren hands the reaper this process's children other than itself:
// etcd and kube-apiserver, which envtest starts each in a process group of
// its own and whose PIDs it does not expose.
func (r *reaper) adoptChildren() error {
	for _, pid := range childPIDs() {
		if pid == r.cmd.Process.Pid {
			continue
		}
		if err := r.tell("group", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// finish ends the reaper: disarmed when everything was stopped, otherwise
// left to kill and remove whatever it was told about.
func (r *reaper) finish(disarm bool) error {
	if disarm {
		_ = r.tell("disarm", "")
	}
	r.mu.Lock()
	_ = r.in.Close()
	r.mu.Unlock()
	if err := r.cmd.Wait(); err != nil {
		return fmt.Errorf("reaper: %w", err)
	}
	return nil
}

// childPIDs lists this process's children from /proc. Elsewhere than on
// Linux it finds none, and the reaper only removes directories.
func childPIDs() []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []int
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil && pid > 1 {
			pids = append(pids, pid)
		}
	}
	return pids
}
