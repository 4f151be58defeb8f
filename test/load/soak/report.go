package soak

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/podgate/podgate/test/load"
	"github.com/podgate/podgate/test/load/loadgen"
)

// The pass criteria of each phase (docs/performance.md, "Soak").
const (
	// minRateShare: the webhook must receive at least this share of the
	// target rate; less is a path that did not sustain it.
	minRateShare = 0.98
	// memoryGrowth and the slacks say what "flat" is: the end of the
	// load within 10% of its start plus a little. Heap in use swings with
	// each collection (GOGC 400: between the live heap and up to five
	// times it, a few times a second at these rates), so its slack is the
	// widest; RSS follows the heap and the scavenger; the live heap is
	// the collector's own count after marking, the steadiest of the three.
	memoryGrowth   = 0.10
	heapLiveSlack  = 2 << 20
	heapInuseSlack = 8 << 20
	rssSlack       = 8 << 20
	// goroutineSlack allows for goroutines that come and go in an idle
	// webhook: the Node informer's watch, restarted every 5 to 10
	// minutes, and the HTTP/2 connection to the API server. A leak per
	// request or per connection would show as thousands.
	goroutineSlack = 5
)

// Report holds every figure of a soak.
type Report struct {
	Machine  load.Machine     `json:"machine"`
	Options  map[string]any   `json:"options"`
	Expected []ExpectedAnswer `json:"expected"`
	Phases   []*PhaseReport   `json:"phases"`
	Elapsed  time.Duration    `json:"elapsed"`
}

// PhaseReport is one phase's figures.
type PhaseReport struct {
	Name         string         `json:"name"`
	About        string         `json:"about"`
	Target       float64        `json:"target"`   // admission requests/s the webhook is to receive
	SendRate     float64        `json:"sendRate"` // requests/s sent
	Duration     time.Duration  `json:"duration"`
	MemoryWarmup time.Duration  `json:"memoryWarmup"`
	Elapsed      time.Duration  `json:"elapsed"`
	Stats        loadgen.Stats  `json:"stats"`
	Sent         int            `json:"sent"`
	Answered     int            `json:"answered"` // with the expected answer
	Errors       int            `json:"errors"`   // the load's and the priming's
	PrimeErrors  int            `json:"primeErrors"`
	ErrorsBy     map[string]int `json:"errorsBy"`
	ErrorTexts   map[string]int `json:"errorTexts,omitempty"`
	// WebhookRequests is what the webhook counted during the load
	// (controller_runtime_webhook_requests_total).
	WebhookRequests int                `json:"webhookRequests"`
	WebhookRate     float64            `json:"webhookRate"`
	WebhookPerSend  float64            `json:"webhookPerSend"`
	ExpectedPerSend float64            `json:"expectedPerSend"`
	Cores           map[string]float64 `json:"cores"` // CPU time / wall time during the load, per process
	RSS             Trend              `json:"rss"`
	HeapInuse       Trend              `json:"heapInuse"`
	HeapLive        Trend              `json:"heapLive"`
	Before          Idle               `json:"before"`
	After           Idle               `json:"after"`
	Samples         []MemSample        `json:"samples"`
	SampleErrors    int                `json:"sampleErrors,omitempty"`
}

// Idle is the webhook with no load and, unless OpenConns says otherwise,
// no client connection.
type Idle struct {
	Goroutines int           `json:"goroutines"`
	OpenConns  int           `json:"openConns"` // still open when read (the wait is bounded)
	Waited     time.Duration `json:"waited"`    // for the connections to close
	RSS        int64         `json:"rss"`
	HeapInuse  int64         `json:"heapInuse"`
	HeapLive   int64         `json:"heapLive"`
}

func (i Idle) String() string {
	return fmt.Sprintf("%d goroutines, %d connections open (waited %s for them to close), RSS %s, heap in use %s, heap live %s",
		i.Goroutines, i.OpenConns, i.Waited, mib(i.RSS), mib(i.HeapInuse), mib(i.HeapLive))
}

// Trend is a memory figure over the samples after the warm-up. A single
// sample of the heap lands anywhere in a collection cycle, so Start and
// End are means over a window (a minute, or a third of a shorter run):
// the first after the warm-up and the last of the load. Slope is the
// least-squares fit over every sample after the warm-up.
type Trend struct {
	Start   int64         `json:"start"`
	End     int64         `json:"end"`
	Window  time.Duration `json:"window"`
	Min     int64         `json:"min"`
	Max     int64         `json:"max"`
	Slope   float64       `json:"slopeMiBPerMin"`
	Samples int           `json:"samples"`
}

// trendOf fits get over the samples from from on; window is the length
// of the start and end windows.
func trendOf(samples []MemSample, from, window time.Duration, get func(MemSample) int64) Trend {
	t := Trend{Window: window}
	var xs, ys []float64
	var last time.Duration
	for _, s := range samples {
		if s.At < from {
			continue
		}
		v := get(s)
		if t.Samples == 0 {
			t.Min, t.Max = v, v
		}
		t.Samples++
		t.Min, t.Max = min(t.Min, v), max(t.Max, v)
		xs, ys = append(xs, s.At.Minutes()), append(ys, float64(v)/(1<<20))
		last = s.At
	}
	t.Slope = slope(xs, ys)
	t.Start = meanOf(samples, from, from+window, get)
	t.End = meanOf(samples, max(from, last-window)+1, last+1, get)
	return t
}

// meanOf is the mean of get over the samples in [from, to).
func meanOf(samples []MemSample, from, to time.Duration, get func(MemSample) int64) int64 {
	var sum, n int64
	for _, s := range samples {
		if s.At >= from && s.At < to {
			sum, n = sum+get(s), n+1
		}
	}
	if n == 0 {
		return 0
	}
	return sum / n
}

// slope is the least-squares slope of ys over xs; 0 with fewer than two
// distinct xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy float64
	for i := range xs {
		sx, sy = sx+xs[i], sy+ys[i]
	}
	mx, my := sx/n, sy/n
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// Criterion is one pass criterion of one phase and whether it was met.
type Criterion struct {
	Phase string `json:"phase"`
	Name  string `json:"name"`
	Want  string `json:"want"`
	Got   string `json:"got"`
	Met   bool   `json:"met"`
}

// Criteria checks every phase against the pass criteria.
func (r *Report) Criteria() []Criterion {
	var out []Criterion
	for _, p := range r.Phases {
		out = append(out, p.criteria()...)
	}
	return out
}

// Failed is the criteria not met.
func (r *Report) Failed() []Criterion {
	return slices.DeleteFunc(r.Criteria(), func(c Criterion) bool { return c.Met })
}

func (p *PhaseReport) criteria() []Criterion {
	c := func(name, want, got string, met bool) Criterion {
		return Criterion{Phase: p.Name, Name: name, Want: want, Got: got, Met: met}
	}
	out := []Criterion{
		c("errors", "0", fmt.Sprintf("%d%s", p.Errors, p.errorKinds()), p.Errors == 0),
		c("rate", fmt.Sprintf(">= %.0f%% of %g admission requests/s", 100*minRateShare, p.Target),
			fmt.Sprintf("%.1f/s reached the webhook", p.WebhookRate), p.WebhookRate >= minRateShare*p.Target),
	}
	grow := func(name string, t Trend, slack int64) Criterion {
		limit := int64(float64(t.Start)*(1+memoryGrowth)) + slack
		return c(name, fmt.Sprintf("end <= start x %.2f + %s", 1+memoryGrowth, mib(slack)),
			fmt.Sprintf("%s -> %s (limit %s), slope %+.2f MiB/min", mib(t.Start), mib(t.End), mib(limit), t.Slope),
			t.Samples >= 2 && t.End <= limit)
	}
	out = append(out,
		grow("heap live", p.HeapLive, heapLiveSlack),
		grow("heap in use", p.HeapInuse, heapInuseSlack),
		grow("RSS", p.RSS, rssSlack),
		c("goroutines", fmt.Sprintf("after <= before + %d, no connection left", goroutineSlack),
			fmt.Sprintf("%d -> %d, %d connections left", p.Before.Goroutines, p.After.Goroutines, p.After.OpenConns),
			p.After.Goroutines <= p.Before.Goroutines+goroutineSlack && p.After.OpenConns == 0),
	)
	return out
}

func (p *PhaseReport) errorKinds() string {
	if len(p.ErrorsBy) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(p.ErrorsBy)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, p.ErrorsBy[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// sustained says whether the phase's path kept up with its target.
func (p *PhaseReport) sustained() bool {
	return p.Errors == 0 && p.WebhookRate >= minRateShare*p.Target
}

// Print writes the report.
func (r *Report) Print(w io.Writer) {
	line := strings.Repeat("-", 100)
	fmt.Fprintf(w, "\n%s\npodgate soak, %s\n", line, time.Now().UTC().Format(time.RFC3339))
	m := r.Machine
	fmt.Fprintf(w, "machine: %d CPUs (%s), %d GiB, Linux %s, %s, load average at start %s\n",
		m.CPUs, m.CPUModel, m.MemoryGiB, m.Kernel, m.Go, m.LoadAvg)
	fmt.Fprintf(w, "expected answers (the webhook's own, asked once):\n")
	for _, e := range r.Expected {
		fmt.Fprintf(w, "  %-12s %s\n", e.Object, e.Summary)
	}
	for _, p := range r.Phases {
		p.print(w, r.Options)
	}
	fmt.Fprintf(w, "\ncriteria:\n")
	for _, c := range r.Criteria() {
		mark := "PASS"
		if !c.Met {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-10s %-11s want %-40s got %s\n", mark, c.Phase, c.Name, c.Want, c.Got)
	}
	fmt.Fprintf(w, "elapsed %s\n%s\n", r.Elapsed, line)
}

func (p *PhaseReport) print(w io.Writer, opts map[string]any) {
	s := p.Stats
	fmt.Fprintf(w, "\nphase %s: %s\n", p.Name, p.About)
	fmt.Fprintf(w, "  target %g admission requests/s for %s (%g requests/s sent, %g webhook requests each)\n",
		p.Target, p.Duration, p.SendRate, p.ExpectedPerSend)
	if rate, _ := opts["rate"].(float64); p.Target < rate {
		fmt.Fprintf(w, "  NOTE: run below the soak rate (%g/s) by request (--api-rate)\n", rate)
	}
	fmt.Fprintf(w, "  sent %d, answered as expected %d (%.1f/s), errors %d%s\n", p.Sent, p.Answered, s.Throughput, p.Errors, p.errorKinds())
	if p.PrimeErrors > 0 {
		fmt.Fprintf(w, "    of which %d in the %s priming before the load\n", p.PrimeErrors, primeDuration)
	}
	for _, text := range slices.Sorted(maps.Keys(p.ErrorTexts)) {
		fmt.Fprintf(w, "    %6d x %s\n", p.ErrorTexts[text], text)
	}
	fmt.Fprintf(w, "  webhook received %d requests: %.1f/s, %.2f per request sent\n", p.WebhookRequests, p.WebhookRate, p.WebhookPerSend)
	fmt.Fprintf(w, "  latency (client, from the scheduled send): p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		ms(s.P50), ms(s.P90), ms(s.P99), ms(s.P999), ms(s.Max))
	var cores []string
	for _, name := range slices.Sorted(maps.Keys(p.Cores)) {
		cores = append(cores, fmt.Sprintf("%s %.2f", name, p.Cores[name]))
	}
	fmt.Fprintf(w, "  CPU cores: %s\n", strings.Join(cores, ", "))
	fmt.Fprintf(w, "  memory every %v after a %s warm-up (%d samples; start and end: means of the first and last %s):\n",
		opts["sampleInterval"], p.MemoryWarmup, p.RSS.Samples, p.RSS.Window)
	for _, t := range []struct {
		name string
		t    Trend
	}{{"RSS", p.RSS}, {"heap in use", p.HeapInuse}, {"heap live", p.HeapLive}} {
		fmt.Fprintf(w, "    %-12s start %10s  end %10s  min %10s  max %10s  slope %+.3f MiB/min\n",
			t.name, mib(t.t.Start), mib(t.t.End), mib(t.t.Min), mib(t.t.Max), t.t.Slope)
	}
	fmt.Fprintf(w, "  idle before: %s\n  idle after:  %s\n", p.Before, p.After)
	if !p.sustained() {
		fmt.Fprintf(w, "  NOT SUSTAINED: this path did not carry %g admission requests/s here: %.1f/s reached the webhook, %d errors.\n",
			p.Target, p.WebhookRate, p.Errors)
		if p.Name == PhaseAPI {
			fmt.Fprintf(w, "  Its stability is shown at a rate it sustains with: make soak SOAK_PHASES=api SOAK_API_RATE=<rate>\n")
		}
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
