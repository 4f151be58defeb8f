package load

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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
	n := 0
	for _, file := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			if os.IsNotExist(err) && file == "tcp6" {
				continue // no IPv6
			}
			return 0, err
		}
		n += countEstablished(string(data), port)
	}
	return n, nil
}

// countEstablished counts the lines of /proc/net/tcp{,6} in state 01
// (ESTABLISHED) whose local address ends in :port (hexadecimal).
func countEstablished(table string, port int) int {
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(table, "\n") {
		// sl local_address rem_address st ...
		f := strings.Fields(line)
		if len(f) > 3 && f[3] == "01" && strings.HasSuffix(f[1], want) {
			n++
		}
	}
	return n
}

// childPIDs finds this process's children by command name: envtest
// starts kube-apiserver and etcd as children of the process that starts
// the cluster.
func childPIDs(names ...string) map[string]int {
	out := map[string]int{}
	self := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ..."
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		comm := s[open+1 : end]
		if ppid == self && slices.Contains(names, comm) {
			pid, _ := strconv.Atoi(filepath.Base(dir))
			out[comm] = pid
		}
	}
	return out
}
