// Command auditbench measures podgate's background audit at scale (make
// auditbench; docs/performance.md, "Audit"): it starts kube-apiserver and
// etcd (test/cluster) with the Report CRD, creates WORKLOADS workloads
// through the API server (half Deployments, half bare Pods, one in ten
// breaking a deny rule, one in a hundred running only on the GPU node),
// then starts the webhook with --audit and measures:
//
//   - the first complete audit: until every report is written;
//   - the auditing process's CPU time and largest RSS;
//   - the report writes, against the number of violating workloads;
//   - a rescan in which nothing changed (a Node label no policy reads):
//     it must write nothing;
//   - a Node taint that makes the GPU-only workloads unschedulable: the
//     time until their reports are written.
//
// It prints the figures with the targets and writes them as JSON; it exits
// 1 when a target is missed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podgate/podgate/test/cluster"
)

// Targets on a 2-core machine.
const (
	targetFirstAudit = 60 * time.Second
	targetRSS        = 200 << 20
	targetTaint      = 10 * time.Second
	creators         = 16
)

type result struct {
	Workloads         int      `json:"workloads"`
	Violating         int      `json:"violating"`
	CreateSeconds     float64  `json:"createSeconds"`
	FirstScanSeconds  float64  `json:"firstScanSeconds"`
	FirstAuditSeconds float64  `json:"firstAuditSeconds"`
	CPUSeconds        float64  `json:"cpuSeconds"`
	RSSMaxMiB         float64  `json:"rssMaxMiB"`
	Writes            float64  `json:"writes"`
	RescanSeconds     float64  `json:"rescanSeconds"`
	RescanWrites      float64  `json:"rescanWrites"`
	TaintAffected     int      `json:"taintAffected"`
	TaintSeconds      float64  `json:"taintSeconds"`
	TaintScanSeconds  float64  `json:"taintScanSeconds"`
	Missed            []string `json:"missed,omitempty"`
}

func main() {
	n := flag.Int("workloads", 10000, "number of workloads")
	out := flag.String("json", "bin/auditbench/report.json", "where to write the figures")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := run(ctx, *n)
	if err != nil {
		fmt.Fprintln(os.Stderr, "auditbench:", err)
		os.Exit(2)
	}
	printResult(r)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err == nil {
		raw, _ := json.MarshalIndent(r, "", "  ")
		_ = os.WriteFile(*out, raw, 0o644)
	}
	if len(r.Missed) > 0 {
		os.Exit(1)
	}
}

func run(ctx context.Context, n int) (*result, error) {
	// The soft memory limit the chart gives the webhook with its default
	// resources (90% of 256Mi; test/chart checks what it renders), so that
	// the RSS is a deployed webhook's.
	c, err := cluster.Start(ctx, cluster.Options{BuildWebhook: true, WebhookEnv: []string{"GOMEMLIMIT=230MiB"}})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "auditbench: stop the cluster:", err)
		}
	}()
	r := &result{Workloads: n}
	start := time.Now()
	if r.Violating, err = create(ctx, c, n); err != nil {
		return nil, err
	}
	r.CreateSeconds = time.Since(start).Seconds()
	fmt.Printf("created %d workloads in %.1fs\n", n, r.CreateSeconds)

	start = time.Now()
	w, err := c.StartWebhook(ctx, []string{"--audit"}, false)
	if err != nil {
		return nil, err
	}
	var rssMax atomic.Int64
	sampling, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go sampleRSS(sampling, w.PID(), &rssMax)
	m := &metrics{w: w}
	if err := m.waitFor(ctx, "the first scan", 5*time.Minute, func() bool { return m.get("podgate_audit_last_scan_timestamp_seconds") > 0 }); err != nil {
		return nil, err
	}
	r.FirstScanSeconds = time.Since(start).Seconds()
	if err := m.waitFor(ctx, "every report written", 5*time.Minute, func() bool {
		return m.get("podgate_audit_report_writes_total") >= float64(r.Violating)
	}); err != nil {
		return nil, err
	}
	r.FirstAuditSeconds = time.Since(start).Seconds()
	stopSampling()
	r.RSSMaxMiB = float64(rssMax.Load()) / (1 << 20)
	r.CPUSeconds = cpuSeconds(w.PID())
	time.Sleep(2 * time.Second) // a straggling write would show now
	r.Writes = m.get("podgate_audit_report_writes_total")

	// A rescan in which nothing changes.
	last := m.get("podgate_audit_last_scan_timestamp_seconds")
	if _, stderr, err := c.Kubectl(ctx, nil, "label", "node", "worker-3", "podgate.dev/bench=touched"); err != nil {
		return nil, fmt.Errorf("label node: %v: %s", err, stderr)
	}
	start = time.Now()
	if err := m.waitFor(ctx, "the rescan", 5*time.Minute, func() bool { return m.get("podgate_audit_last_scan_timestamp_seconds") > last }); err != nil {
		return nil, err
	}
	r.RescanSeconds = time.Since(start).Seconds()
	r.RescanWrites = m.get("podgate_audit_report_writes_total") - r.Writes

	// A taint on the GPU node: the workloads that run only there.
	for i := range n {
		if pinned(i) {
			r.TaintAffected++
		}
	}
	before := m.get("podgate_audit_report_writes_total")
	if _, stderr, err := c.Kubectl(ctx, nil, "taint", "node", "worker-2", "maintenance=planned:NoSchedule"); err != nil {
		return nil, fmt.Errorf("taint node: %v: %s", err, stderr)
	}
	start = time.Now()
	if err := m.waitFor(ctx, "the tainted node's workloads reported", 5*time.Minute, func() bool {
		return m.get("podgate_audit_report_writes_total")-before >= float64(r.TaintAffected)
	}); err != nil {
		return nil, err
	}
	r.TaintSeconds = time.Since(start).Seconds()
	r.TaintScanSeconds = m.get("podgate_audit_scan_duration_seconds")

	if r.FirstAuditSeconds > targetFirstAudit.Seconds() {
		r.Missed = append(r.Missed, "first audit")
	}
	if r.RSSMaxMiB*(1<<20) > targetRSS {
		r.Missed = append(r.Missed, "RSS")
	}
	if r.Writes > float64(r.Violating) {
		r.Missed = append(r.Missed, "writes")
	}
	if r.RescanWrites != 0 {
		r.Missed = append(r.Missed, "rescan writes")
	}
	if r.TaintSeconds > targetTaint.Seconds() {
		r.Missed = append(r.Missed, "taint")
	}
	return r, nil
}

// create makes the n workloads (and their namespaces) through the API
// server and returns how many of them break a deny rule.
func create(ctx context.Context, c *cluster.Cluster, n int) (int, error) {
	cl := c.Client()
	for i := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespaceOf(i)}}
		if err := cl.Create(ctx, ns); err != nil {
			return 0, err
		}
	}
	violations := 0
	for i := range n {
		if violating(i) {
			violations++
		}
	}
	next := atomic.Int64{}
	var wg sync.WaitGroup
	var errs sync.Map
	for range creators {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := cl.Create(ctx, workload(i)); err != nil {
					errs.Store(i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	var first error
	errs.Range(func(_, v any) bool { first = v.(error); return false })
	return violations, first
}

// metrics reads the auditing process's metrics.
type metrics struct {
	w    *cluster.Webhook
	text string
}

func (m *metrics) get(name string) float64 {
	v, _, _ := cluster.MetricValue(m.text, name, nil)
	return v
}

func (m *metrics) waitFor(ctx context.Context, what string, timeout time.Duration, cond func() bool) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		text, err := m.w.Metrics(ctx)
		if err != nil {
			return false, nil
		}
		m.text = text
		return cond(), nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s (log %s): %w", what, m.w.LogPath(), err)
	}
	return nil
}

func sampleRSS(ctx context.Context, pid int, peak *atomic.Int64) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if p, err := procfs.NewProc(pid); err == nil {
			if s, err := p.NewStatus(); err == nil && int64(s.VmRSS) > peak.Load() {
				peak.Store(int64(s.VmRSS))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func cpuSeconds(pid int) float64 {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0
	}
	s, err := p.Stat()
	if err != nil {
		return 0
	}
	return s.CPUTime()
}

func printResult(r *result) {
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Printf("\naudit of %d workloads (%d violating), on %d CPUs\n", r.Workloads, r.Violating, runtime.NumCPU())
	fmt.Printf("  first scan complete          %6.1f s\n", r.FirstScanSeconds)
	fmt.Printf("  first audit, reports written %6.1f s   target <= %.0f s: %s\n", r.FirstAuditSeconds, targetFirstAudit.Seconds(), check(r.FirstAuditSeconds <= targetFirstAudit.Seconds()))
	fmt.Printf("  CPU time of the process      %6.1f s\n", r.CPUSeconds)
	fmt.Printf("  largest RSS                  %6.1f MiB target <= %d MiB: %s\n", r.RSSMaxMiB, targetRSS>>20, check(r.RSSMaxMiB <= targetRSS>>20))
	fmt.Printf("  report writes                %6.0f     target <= %d (one per violating workload): %s\n", r.Writes, r.Violating, check(r.Writes <= float64(r.Violating)))
	fmt.Printf("  rescan, nothing changed      %6.1f s, %.0f writes (target 0): %s\n", r.RescanSeconds, r.RescanWrites, check(r.RescanWrites == 0))
	fmt.Printf("  node taint, %d affected     %6.1f s until written (rescan %.1f s)  target <= %.0f s: %s\n", r.TaintAffected, r.TaintSeconds, r.TaintScanSeconds, targetTaint.Seconds(), check(r.TaintSeconds <= targetTaint.Seconds()))
}
