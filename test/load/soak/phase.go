package soak

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/podgate/podgate/test/load"
	"github.com/podgate/podgate/test/load/loadgen"
)

// phase is what one soak phase sends and how its figures are read.
type phase struct {
	name    string
	about   string  // one line for the report
	target  float64 // admission requests/s the webhook is to receive
	perSend float64 // webhook requests per request sent
	load    loadgen.Options
}

// runPhase primes the path, reads the idle webhook, runs the load while
// sampling the webhook's memory, and reads the idle webhook again once
// every connection to it has closed.
func (s *soaker) runPhase(ctx context.Context, ph phase) (*PhaseReport, error) {
	p := &PhaseReport{
		Name: ph.name, About: ph.about, Target: ph.target, SendRate: ph.load.Rate,
		Duration: s.o.Duration, MemoryWarmup: s.o.memoryWarmup(), ErrorsBy: map[string]int{},
	}
	s.logf("%s: %s", ph.name, ph.about)
	prime := ph.load
	prime.Duration = primeDuration
	res, err := loadgen.Run(ctx, prime)
	if err != nil {
		return p, fmt.Errorf("prime: %w", err)
	}
	p.PrimeErrors = res.Errors
	p.addErrors(res.ErrorsBy)
	if p.Before, err = s.idle(ctx); err != nil {
		return p, err
	}
	s.logf("%s: idle before the load: %s", ph.name, p.Before)

	var (
		smp      *memSampler
		cpu0     map[string]time.Duration
		count0   float64
		countErr error
	)
	load := ph.load
	load.Duration = s.o.Duration
	load.OnStart = func() {
		cpu0 = s.cpuTimes()
		count0, countErr = s.webhookRequests(ctx)
		smp = s.startSampling(ctx, ph.name)
	}
	s.logf("%s: %g requests/s for %s", ph.name, load.Rate, load.Duration)
	res, err = loadgen.Run(ctx, load)
	if smp != nil {
		p.Samples, p.SampleErrors = smp.stop()
	}
	if err != nil {
		return p, err
	}
	count1, err := s.webhookRequests(ctx)
	if err = cmp.Or(countErr, err); err != nil {
		return p, fmt.Errorf("count the webhook's requests: %w", err)
	}
	p.Cores = cores(cpu0, s.cpuTimes(), res.Elapsed)
	p.measured(res, int(count1-count0), ph.perSend)
	s.logf("%s: %s", ph.name, p.Stats)
	if p.After, err = s.idle(ctx); err != nil {
		return p, err
	}
	s.logf("%s: idle after the load: %s", ph.name, p.After)
	return p, nil
}

// measured fills in the load's figures.
func (p *PhaseReport) measured(res *loadgen.Result, webhookRequests int, perSend float64) {
	p.Stats = res.Summary()
	p.Elapsed = res.Elapsed
	p.Sent = p.Stats.Requests - res.Overloads
	p.Answered = p.Stats.Requests - p.Stats.Errors
	p.Errors = p.Stats.Errors + p.PrimeErrors
	p.addErrors(res.ErrorsBy)
	p.WebhookRequests = webhookRequests
	if secs := res.Elapsed.Seconds(); secs > 0 {
		p.WebhookRate = float64(webhookRequests) / secs
	}
	if p.Sent > 0 {
		p.WebhookPerSend = float64(webhookRequests) / float64(p.Sent)
	}
	p.ExpectedPerSend = perSend
	from := p.MemoryWarmup
	// A minute, or a third of what follows the warm-up in a short run.
	window := min(time.Minute, ((p.Duration - from) / 3).Round(time.Second))
	p.RSS = trendOf(p.Samples, from, window, func(m MemSample) int64 { return m.RSS })
	p.HeapInuse = trendOf(p.Samples, from, window, func(m MemSample) int64 { return m.HeapInuse })
	p.HeapLive = trendOf(p.Samples, from, window, func(m MemSample) int64 { return m.HeapLive })
}

// addErrors counts loadgen's error texts by kind, and keeps the texts.
func (p *PhaseReport) addErrors(by map[string]int) {
	for text, n := range by {
		p.ErrorsBy[errorKind(text)] += n
		if p.ErrorTexts == nil {
			p.ErrorTexts = map[string]int{}
		}
		if _, ok := p.ErrorTexts[text]; ok || len(p.ErrorTexts) < maxErrorTexts {
			p.ErrorTexts[text] += n
		}
	}
}

// maxErrorTexts bounds the error texts a report keeps: the kinds count
// them all.
const maxErrorTexts = 20

// idle waits until no connection to the webhook is open (bounded by
// idleBound), lets their goroutines exit, and reads the webhook.
func (s *soaker) idle(ctx context.Context) (Idle, error) {
	start := time.Now()
	conns, err := openConns(s.pid, s.port)
	for err == nil && conns > 0 && time.Since(start) < idleBound {
		if err = sleep(ctx, time.Second); err == nil {
			conns, err = openConns(s.pid, s.port)
		}
	}
	if err != nil {
		return Idle{}, err
	}
	waited := time.Since(start)
	if err := sleep(ctx, settleTime); err != nil {
		return Idle{}, err
	}
	m, err := s.sample(ctx, 0)
	if err != nil {
		return Idle{}, err
	}
	return Idle{Goroutines: m.Goroutines, OpenConns: conns, Waited: waited.Round(time.Second), RSS: m.RSS, HeapInuse: m.HeapInuse, HeapLive: m.HeapLive}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// MemSample is one reading of the webhook during a load.
type MemSample struct {
	At         time.Duration `json:"at"` // since the load began
	RSS        int64         `json:"rss"`
	HeapInuse  int64         `json:"heapInuse"`
	HeapLive   int64         `json:"heapLive"`
	Goroutines int           `json:"goroutines"`
}

// Names of the webhook's metrics the soak reads (controller-runtime's
// registry: the Go collector with every runtime/metrics value).
const (
	metricHeapInuse  = "go_memstats_heap_inuse_bytes"
	metricHeapLive   = "go_gc_heap_live_bytes" // marked live by the last GC
	metricGoroutines = "go_goroutines"
	metricRequests   = "controller_runtime_webhook_requests_total"
)

// sample reads the webhook's RSS from /proc and its heap and goroutines
// from /metrics.
func (s *soaker) sample(ctx context.Context, at time.Duration) (MemSample, error) {
	u, err := load.ReadUsage(s.pid)
	if err != nil {
		return MemSample{}, fmt.Errorf("webhook usage: %w", err)
	}
	m, err := load.Scrape(ctx, s.metrics, metricHeapInuse, metricHeapLive, metricGoroutines)
	if err != nil {
		return MemSample{}, err
	}
	return MemSample{At: at, RSS: u.RSS, HeapInuse: int64(m[metricHeapInuse]), HeapLive: int64(m[metricHeapLive]), Goroutines: int(m[metricGoroutines])}, nil
}

func (s *soaker) webhookRequests(ctx context.Context) (float64, error) {
	m, err := load.Scrape(ctx, s.metrics, metricRequests)
	return m[metricRequests], err
}

// memSampler samples the webhook every interval until stopped.
type memSampler struct {
	read    func(at time.Duration) (MemSample, error)
	logf    func(format string, args ...any)
	start   time.Time
	stopped chan struct{}
	done    chan struct{}
	samples []MemSample
	errs    int
}

func (s *soaker) startSampling(ctx context.Context, phase string) *memSampler {
	m := &memSampler{
		read:  func(at time.Duration) (MemSample, error) { return s.sample(ctx, at) },
		logf:  func(format string, args ...any) { s.logf(phase+": "+format, args...) },
		start: time.Now(), stopped: make(chan struct{}), done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		t := time.NewTicker(s.o.Interval)
		defer t.Stop()
		for {
			m.take()
			// About once a minute, the latest sample: progress.
			if n := len(m.samples); n > 1 && n%6 == 1 {
				last := m.samples[n-1]
				m.logf("%s: RSS %s, heap in use %s, heap live %s, %d goroutines", last.At.Round(time.Second),
					mib(last.RSS), mib(last.HeapInuse), mib(last.HeapLive), last.Goroutines)
			}
			select {
			case <-m.stopped:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memSampler) take() {
	smp, err := m.read(time.Since(m.start))
	if err != nil {
		m.errs++
		m.logf("sample: %v", err)
		return
	}
	m.samples = append(m.samples, smp)
}

// stop ends the sampling with a last sample: the end of the load.
func (m *memSampler) stop() ([]MemSample, int) {
	close(m.stopped)
	<-m.done
	m.take()
	return m.samples, m.errs
}

// cpuTimes reads the CPU time used so far by the webhook, kube-apiserver,
// etcd and this process (the load generator or API client): where the
// machine's cores went.
func (s *soaker) cpuTimes() map[string]time.Duration {
	pids := map[string]int{"webhook": s.pid, "client": os.Getpid()}
	for name, pid := range childPIDs("kube-apiserver", "etcd") {
		pids[name] = pid
	}
	out := map[string]time.Duration{}
	for name, pid := range pids {
		if u, err := load.ReadUsage(pid); err == nil {
			out[name] = u.CPU
		}
	}
	return out
}

func cores(before, after map[string]time.Duration, elapsed time.Duration) map[string]float64 {
	out := map[string]float64{}
	for name, t1 := range after {
		if t0, ok := before[name]; ok && elapsed > 0 {
			out[name] = (t1 - t0).Seconds() / elapsed.Seconds()
		}
	}
	return out
}
