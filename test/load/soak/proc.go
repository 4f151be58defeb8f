package soak

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/prometheus/procfs"
)

// openConns counts the established TCP connections whose local port is
// port (the webhook's side of its clients' connections), in pid's network
// namespace.
func openConns(pid, port int) (int, error) {
	return establishedTo(fmt.Sprintf("/proc/%d", pid), port)
}

// establishedTo counts the connections in state ESTABLISHED with local
// port port in root/net/tcp and root/net/tcp6 (the latter may be missing:
// no IPv6).
func establishedTo(root string, port int) (int, error) {
	fs, err := procfs.NewFS(root)
	if err != nil {
		return 0, err
	}
	const established = 1 // TCP_ESTABLISHED in include/net/tcp_states.h
	n := 0
	// procfs deprecates its /proc/net/tcp reader for sock_diag over
	// netlink, a socket and a dependency more; the kernel still writes
	// these files, and the soak reads another process's, as ss would.
	//nolint:staticcheck // SA1019: see above.
	for i, table := range []func() (procfs.NetTCP, error){fs.NetTCP, fs.NetTCP6} {
		lines, err := table()
		if err != nil {
			if i == 1 && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return 0, err
		}
		for _, l := range lines {
			if l.St == established && l.LocalPort == uint64(port) {
				n++
			}
		}
	}
	return n, nil
}

// childPIDs finds this process's children by command name: envtest
// starts kube-apiserver and etcd as children of the process that starts
// the cluster.
func childPIDs(names ...string) map[string]int {
	out := map[string]int{}
	procs, err := procfs.AllProcs()
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, p := range procs {
		st, err := p.Stat()
		if err == nil && st.PPID == self && slices.Contains(names, st.Comm) {
			out[st.Comm] = p.PID
		}
	}
	return out
}
