package load

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// The targets.
const (
	targetP99         = 5 * time.Millisecond
	targetThroughputX = 3.0
	targetIdleRSS     = 64 << 20
	targetNodesRSS    = 150 << 20
	targetReloadP99   = 20 * time.Millisecond
	targetCPUvsGK     = 1.0 / 3 // podgate's CPU per request at most a third of Gatekeeper's
	// targetOffRatio: probes only must cost at most three quarters of every
	// policy; one server's CPU per request moves by 10-15% between runs of
	// the same load, so less than that is noise, not a saving.
	targetOffRatio = 0.75
)

// Target is one target and whether this run met it.
type Target struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Got    string `json:"got"`
	Met    bool   `json:"met"`
}

// Targets checks the figures against the targets.
func (r *Report) Targets() []Target {
	var ts []Target
	s := r.Sustained.Stats
	ts = append(ts, Target{
		Name:   fmt.Sprintf("sustained %s", r.Sustained.Mode),
		Target: fmt.Sprintf("p99 <= %s, 0 errors", ms(targetP99)),
		Got:    fmt.Sprintf("p99 %s, %d errors of %d, %.0f req/s answered", ms(s.P99), s.Errors, s.Requests, s.Throughput),
		Met:    s.P99 <= targetP99 && s.Errors == 0 && s.Throughput >= 0.98*rateOf(r.Options),
	})
	pg, op := r.MaxThroughput.Podgate.Stats.Throughput, r.MaxThroughput.OPA.Stats.Throughput
	ts = append(ts, Target{
		Name:   "maximum throughput vs OPA (/validate)",
		Target: fmt.Sprintf(">= %.0fx", targetThroughputX),
		Got:    fmt.Sprintf("%.0f vs %.0f req/s = %.2fx", pg, op, ratio(pg, op)),
		Met:    ratio(pg, op) >= targetThroughputX,
	})
	for _, p := range r.Rates {
		ts = append(ts, Target{
			Name:   fmt.Sprintf("p99 at %g/s vs OPA", p.Rate),
			Target: "lower than OPA's",
			Got: fmt.Sprintf("%s vs %s (%.2fx)", ms(p.Podgate.Stats.P99), ms(p.OPA.Stats.P99),
				ratio(float64(p.OPA.Stats.P99), float64(p.Podgate.Stats.P99))),
			Met: p.Podgate.Stats.P99 < p.OPA.Stats.P99 && p.Podgate.Stats.Errors == 0,
		})
	}
	ts = append(ts, r.Peers.targets()...)
	ts = append(ts, Target{
		Name: "idle RSS, embedded policies", Target: "<= 64 MiB",
		Got: mib(r.IdleRSS["webhook"]), Met: r.IdleRSS["webhook"] <= targetIdleRSS,
	})
	if n := r.Inventory; n != nil {
		ts = append(ts, Target{
			Name:   fmt.Sprintf("RSS with %d Nodes, %s", n.Nodes, n.Mode),
			Target: "<= 150 MiB",
			Got:    fmt.Sprintf("max %s (idle %s), p99 %s, %d errors", mib(n.RSSMax), mib(n.IdleRSS), ms(n.Stats.P99), n.Stats.Errors),
			// Met only at the rate: at a lower one (belowMax) the
			// figure is reported but proves less.
			Met: n.RSSMax <= targetNodesRSS && n.Rate >= nodesRateOf(r.Options),
		})
	}
	if rl := r.Reload; rl != nil {
		worst := rl.Stats.P99
		for _, w := range rl.Windows {
			worst = max(worst, w.P99)
		}
		ts = append(ts, Target{
			Name:   fmt.Sprintf("%d policy reloads, %s", rl.Reloads, rl.Mode),
			Target: "0 errors, p99 < 20ms",
			Got:    fmt.Sprintf("%d errors, p99 %s (worst 2s window after a change %s)", rl.Stats.Errors, ms(rl.Stats.P99), ms(worst)),
			Met:    rl.Stats.Errors == 0 && worst < targetReloadP99 && rl.Reloads >= 2,
		})
	}
	return ts
}

func nodesRateOf(opts map[string]any) float64 {
	r, _ := opts["nodesRate"].(float64)
	return r
}

func rateOf(opts map[string]any) float64 {
	r, _ := opts["rate"].(float64)
	return r
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// Print writes the report as tables.
func (r *Report) Print(w io.Writer) {
	line := strings.Repeat("-", 110)
	fmt.Fprintf(w, "\n%s\npodgate load test, %s\n", line, time.Now().UTC().Format(time.RFC3339))
	m := r.Machine
	fmt.Fprintf(w, "machine: %d CPUs (%s), %d GiB, Linux %s, %s, load average at start %s\n",
		m.CPUs, m.CPUModel, m.MemoryGiB, m.Kernel, m.Go, m.LoadAvg)
	fmt.Fprintf(w, "payloads (AdmissionReview bytes):")
	for _, name := range sortedKeys(r.Payloads) {
		fmt.Fprintf(w, " %s %d", name, r.Payloads[name])
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "\ndecisions on the /validate payloads:\n")
	for _, d := range r.Decisions {
		same := "same"
		if !d.Same {
			same = "DIFFERENT"
		}
		fmt.Fprintf(w, "  %-22s podgate: %-26s OPA: %-26s %s\n", d.Request, d.Podgate, d.OPA, same)
	}

	fmt.Fprintf(w, "\npodgate vs opa run --server, same payloads (/validate), one after the other:\n")
	fmt.Fprintf(w, "  %-14s %-8s %9s %9s %9s %9s %9s %8s %9s %6s\n", "load", "server", "req/s", "p50", "p90", "p99", "p99.9", "errors", "cpu/req", "cores")
	row := func(load string, mm Measured) {
		s := mm.Stats
		fmt.Fprintf(w, "  %-14s %-8s %9.0f %9s %9s %9s %9s %8d %9s %6.2f\n", load, mm.Server, s.Throughput,
			ms(s.P50), ms(s.P90), ms(s.P99), ms(s.P999), s.Errors, us(mm.CPUPerRequest), mm.Cores)
	}
	row("max", r.MaxThroughput.Podgate)
	row("max", r.MaxThroughput.OPA)
	for _, p := range r.Rates {
		row(fmt.Sprintf("%g/s", p.Rate), p.Podgate)
		row(fmt.Sprintf("%g/s", p.Rate), p.OPA)
	}
	mt := r.MaxThroughput
	fmt.Fprintf(w, "  ratios: max throughput %.2fx, CPU per request %.2fx less",
		ratio(mt.Podgate.Stats.Throughput, mt.OPA.Stats.Throughput),
		ratio(float64(mt.OPA.CPUPerRequest), float64(mt.Podgate.CPUPerRequest)))
	for _, p := range r.Rates {
		fmt.Fprintf(w, ", p99 at %g/s %.2fx lower", p.Rate, ratio(float64(p.OPA.Stats.P99), float64(p.Podgate.Stats.P99)))
	}
	fmt.Fprintln(w)

	r.Peers.print(w)

	fmt.Fprintf(w, "\npodgate alone, /validate and /mutate of each object:\n")
	fmt.Fprintf(w, "  %-30s %9s %9s %9s %9s %9s %9s %8s %9s %9s\n", "load", "req/s", "p50", "p90", "p99", "p99.9", "max", "errors", "cpu/req", "rss max")
	alone := func(name string, mm Measured) {
		s := mm.Stats
		fmt.Fprintf(w, "  %-30s %9.0f %9s %9s %9s %9s %9s %8d %9s %9s\n", name, s.Throughput,
			ms(s.P50), ms(s.P90), ms(s.P99), ms(s.P999), ms(s.Max), s.Errors, us(mm.CPUPerRequest), mib(mm.RSSMax))
	}
	alone(r.Sustained.Mode+" "+fmtDur(r.Options["duration"]), r.Sustained)
	alone(r.MaxMix.Mode, r.MaxMix)
	for _, m := range r.MixRates {
		alone(m.Mode, m)
	}
	if rl := r.Reload; rl != nil {
		alone(rl.Mode+", 2 reloads", rl.Measured)
		for i, win := range rl.Windows {
			fmt.Fprintf(w, "    2s after change %d: %s\n", i+1, win)
		}
	}
	if n := r.Inventory; n != nil {
		alone(fmt.Sprintf("%s, %d Nodes", n.Mode, n.Nodes), n.Measured)
	}
	fmt.Fprintf(w, "  RSS idle: webhook %s, OPA %s; webhook after the runs %s\n",
		mib(r.IdleRSS["webhook"]), mib(r.IdleRSS["opa"]), mib(r.IdleRSSAfter))

	fmt.Fprintf(w, "\ntargets:\n")
	for _, t := range r.Targets() {
		mark := "MET   "
		if !t.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  %s %-44s %-22s %s\n", mark, t.Name, t.Target, t.Got)
	}
	fmt.Fprintf(w, "elapsed %s\n%s\n", r.Elapsed, line)
}

func fmtDur(v any) string {
	s, _ := v.(string)
	return "for " + s
}

func sortedKeys(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }

// peer returns the figures of the named server, nil if it did not run.
func (p *PeersRun) peer(name string) *Peer {
	for i := range p.Peers {
		if p.Peers[i].Server == name {
			return &p.Peers[i]
		}
	}
	return nil
}

func (p *PeersRun) print(w io.Writer) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "\nside by side, the redis Pod (%d bytes) on /validate, one server after the other:\n", p.Bytes)
	fmt.Fprintf(w, "  %-12s %-24s %9s %9s %12s %12s %12s\n", "server", "decision", "max req/s", "cpu/req", "p50 @"+rateName(p.Rate), "p99 @"+rateName(p.Rate), "cpu/req @")
	for _, pr := range p.Peers {
		fmt.Fprintf(w, "  %-12s %-24s %9.0f %9s %12s %12s %12s\n", pr.Server, pr.Decision, pr.Max.Stats.Throughput,
			us(pr.Max.CPUPerRequest), ms(pr.AtRate.Stats.P50), ms(pr.AtRate.Stats.P99), us(pr.AtRate.CPUPerRequest))
	}
	m := p.Mix.Stats
	fmt.Fprintf(w, "  podgate, /validate and /mutate mix at %s: p50 %s, p99 %s, %d errors, cpu/req %s\n",
		rateName(p.Rate), ms(m.P50), ms(m.P99), m.Errors, us(p.Mix.CPUPerRequest))
}

func (p *PeersRun) targets() []Target {
	if p == nil {
		return nil
	}
	var ts []Target
	pg, probes := p.peer("podgate"), p.peer("probes-only")
	if pg == nil {
		return nil
	}
	if gk := p.peer("gatekeeper"); gk != nil {
		c := ratio(float64(pg.Max.CPUPerRequest), float64(gk.Max.CPUPerRequest))
		ts = append(ts, Target{
			Name: "CPU per request vs Gatekeeper (redis Pod)", Target: "<= 1/3",
			Got: fmt.Sprintf("%s vs %s = %.2fx", us(pg.Max.CPUPerRequest), us(gk.Max.CPUPerRequest), c),
			Met: c > 0 && c <= targetCPUvsGK,
		})
		x := ratio(pg.Max.Stats.Throughput, gk.Max.Stats.Throughput)
		ts = append(ts, Target{
			Name: "maximum throughput vs Gatekeeper (redis Pod)", Target: fmt.Sprintf(">= %.0fx", targetThroughputX),
			Got: fmt.Sprintf("%.0f vs %.0f req/s = %.2fx", pg.Max.Stats.Throughput, gk.Max.Stats.Throughput, x),
			Met: x >= targetThroughputX,
		})
	}
	if op := p.peer("opa"); op != nil {
		x := ratio(pg.Max.Stats.Throughput, op.Max.Stats.Throughput)
		ts = append(ts, Target{
			Name: "maximum throughput vs OPA (redis Pod)", Target: fmt.Sprintf(">= %.0fx", targetThroughputX),
			Got: fmt.Sprintf("%.0f vs %.0f req/s = %.2fx", pg.Max.Stats.Throughput, op.Max.Stats.Throughput, x),
			Met: x >= targetThroughputX,
		})
	}
	if probes != nil {
		x := ratio(float64(probes.Max.CPUPerRequest), float64(pg.Max.CPUPerRequest))
		ts = append(ts, Target{
			Name: "probes only vs every policy, CPU per request", Target: fmt.Sprintf("<= %.2fx", targetOffRatio),
			Got: fmt.Sprintf("%s vs %s = %.2fx", us(probes.Max.CPUPerRequest), us(pg.Max.CPUPerRequest), x),
			Met: x > 0 && x <= targetOffRatio,
		})
	}
	ts = append(ts, Target{
		Name: fmt.Sprintf("p99 at %s, /validate and /mutate mix", rateName(p.Rate)), Target: "<= " + ms(targetP99),
		Got: fmt.Sprintf("p99 %s, %d errors", ms(p.Mix.Stats.P99), p.Mix.Stats.Errors),
		Met: p.Mix.Stats.P99 <= targetP99 && p.Mix.Stats.Errors == 0,
	})
	return ts
}

func rateName(r float64) string { return fmt.Sprintf("%g/s", r) }
