package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/procfs"
)

// scrapeClient opens a connection per scrape: an idle keep-alive
// connection to the metrics server would hold a goroutine of the webhook
// and blur the goroutine counts.
var scrapeClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// scrape reads metrics from a Prometheus text endpoint: for each name, the
// sum of its series (a counter's labels, e.g. per webhook path and code).
// A name the endpoint does not have is an error.
func scrape(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body, names)
}

// parseMetrics sums, for each name, the samples of that metric family in
// a Prometheus text exposition (expfmt's parser).
func parseMetrics(r io.Reader, names []string) (map[string]float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, n := range names {
		mf, ok := families[n]
		if !ok {
			return nil, fmt.Errorf("metric %s not found", n)
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				out[n] += m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[n] += m.GetGauge().GetValue()
			case m.Untyped != nil:
				out[n] += m.GetUntyped().GetValue()
			default:
				return nil, fmt.Errorf("metric %s: a %s has no single value", n, mf.GetType())
			}
		}
	}
	return out, nil
}

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
