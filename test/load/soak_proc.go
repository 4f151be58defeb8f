package load

import (
	"bufio"
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

func parseMetrics(r io.Reader, names []string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			// Label values may hold spaces: the value follows the '}'.
			name = line[:i]
			end := strings.LastIndexByte(line, '}')
			if end < 0 {
				continue
			}
			rest = line[end+1:]
		}
		if !slices.Contains(names, name) {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		out[name] += v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("metric %s not found", n)
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
