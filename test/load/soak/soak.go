// Package soak is `make soak` (through cmd/soak): the webhook under a
// steady load for minutes, straight over HTTPS and then behind a real
// kube-apiserver, checking every answer, that memory stays flat and that
// no goroutine leaks (docs/performance.md, "Soak"). It shares the load
// test's process and metrics readers (package load) and its generator
// (loadgen).
package soak

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/podgate/podgate/test/bench"
	"github.com/podgate/podgate/test/cluster"
	"github.com/podgate/podgate/test/load"
	"github.com/podgate/podgate/test/load/loadgen"
)

// The soak's phases, in the order they run.
const (
	PhaseDirect = "direct"     // HTTPS straight to the webhook
	PhaseAPI    = "api-server" // dry-run creates through kube-apiserver
)

// Soak defaults, each with its reason.
const (
	// DefaultDuration is the issue's: 10 minutes per phase.
	DefaultDuration = 10 * time.Minute
	// DefaultRate is the 1,000 admission requests/s.
	DefaultRate = 1000
	// DefaultMemoryWarmup is how long memory may grow before a phase's
	// figures start: connection pools reach their size, the collector's
	// pacing (cmd/webhook/gc.go) settles.
	DefaultMemoryWarmup = time.Minute
	// DefaultSampleInterval is how often RSS, heap and goroutines are read:
	// 60 samples in a 10-minute phase, enough for a slope.
	DefaultSampleInterval = 10 * time.Second
	// primeDuration is the load before each phase whose connections are
	// closed before the goroutine baseline: whatever the first requests
	// start once (pools, caches) is then counted on both sides.
	primeDuration = 5 * time.Second
	// webhookIdleTimeout is the webhook server's http.Server IdleTimeout
	// (controller-runtime's internal httpserver.New: 90s). The API server
	// keeps its idle connections to the webhook open about as long
	// (client-go's transports take http.DefaultTransport's 90s), and no
	// client of ours can close them, so after the API-server phase the
	// goroutine count is read only once they are gone.
	webhookIdleTimeout = 90 * time.Second
	// idleBound bounds the wait for the webhook's connections to close.
	idleBound = webhookIdleTimeout + 30*time.Second
	// settleTime lets the goroutines of connections just closed exit.
	settleTime = 2 * time.Second
)

// Options configure `make soak`.
type Options struct {
	Root     string        // repository root; found from the working directory when empty
	Duration time.Duration // of each phase's load
	// Rate is the admission requests/s the webhook is to receive in
	// both phases.
	Rate float64
	// APIRate, when not 0, replaces Rate in the API-server phase: a rate
	// that path sustains on a small machine, to show stability there.
	APIRate  float64
	Phases   []string      // PhaseDirect, PhaseAPI
	Warmup   time.Duration // memory warm-up of each phase
	Interval time.Duration // between memory samples
	JSON     string        // where to write the report as JSON ("" for nowhere)
	Out      io.Writer
}

// NewOptions returns the defaults.
func NewOptions() Options {
	return Options{
		Duration: DefaultDuration, Rate: DefaultRate, Phases: []string{PhaseDirect, PhaseAPI},
		Warmup: DefaultMemoryWarmup, Interval: DefaultSampleInterval, Out: os.Stdout,
	}
}

// AddFlags binds the options to fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Root, "root", o.Root, "Repository root (default: found from the working directory).")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "Load duration of each phase.")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "Admission requests/s the webhook is to receive.")
	fs.Float64Var(&o.APIRate, "api-rate", o.APIRate, "Admission requests/s of the API-server phase (0: --rate).")
	fs.Func("phases", fmt.Sprintf("Phases to run, comma-separated (default %q).", strings.Join(o.Phases, ",")), func(v string) error {
		o.Phases = nil
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p == "api" {
				p = PhaseAPI
			}
			if p != "" {
				o.Phases = append(o.Phases, p)
			}
		}
		return nil
	})
	fs.DurationVar(&o.Warmup, "memory-warmup", o.Warmup, "Memory figures start this long into each phase (at most a third of --duration).")
	fs.DurationVar(&o.Interval, "sample-interval", o.Interval, "How often the webhook's memory and goroutines are read.")
	fs.StringVar(&o.JSON, "json", o.JSON, "Also write the report to this file, as JSON.")
}

// Validate reports every bad option; the bounds keep a run finite.
func (o *Options) Validate() error {
	var errs []error
	if o.Duration < 30*time.Second || o.Duration > loadgen.MaxDuration {
		errs = append(errs, fmt.Errorf("--duration %s: want [30s, %s]", o.Duration, loadgen.MaxDuration))
	}
	for name, r := range map[string]float64{"--rate": o.Rate, "--api-rate": o.APIRate} {
		if r < 0 || r > 100_000 || (r == 0 && name == "--rate") {
			errs = append(errs, fmt.Errorf("%s %g: want (0, 100000]", name, r))
		}
	}
	if len(o.Phases) == 0 {
		errs = append(errs, errors.New("--phases: none"))
	}
	for _, p := range o.Phases {
		if p != PhaseDirect && p != PhaseAPI {
			errs = append(errs, fmt.Errorf("--phases: %q: want %s or %s", p, PhaseDirect, PhaseAPI))
		}
	}
	if o.Warmup < 0 {
		errs = append(errs, fmt.Errorf("--memory-warmup %s: must not be negative", o.Warmup))
	}
	if o.Interval < time.Second || o.Interval > time.Minute {
		errs = append(errs, fmt.Errorf("--sample-interval %s: want [1s, 1m]", o.Interval))
	}
	return errors.Join(errs...)
}

// memoryWarmup is Warmup, or a third of the phase when that is shorter,
// so that a short trial run still has samples to fit.
func (o *Options) memoryWarmup() time.Duration { return min(o.Warmup, o.Duration/3) }

func (o *Options) apiRate() float64 { return cmp.Or(o.APIRate, o.Rate) }

// soaker holds what the phases share.
type soaker struct {
	o        Options
	out      io.Writer
	c        *cluster.Cluster
	pid      int    // the webhook's
	port     int    // the webhook's HTTPS port
	url      string // https://127.0.0.1:<port>
	roots    *x509.CertPool
	metrics  string            // the webhook's /metrics URL
	mix      []loadgen.Request // /validate and /mutate of each object
	expected map[string]expectation
}

// Run starts a control plane with the webhook registered in it, runs
// the phases one after the other and returns the report; every process
// it started is stopped when it returns. The error is about running the
// soak; whether the figures meet the criteria is the report's Failed.
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	start := time.Now()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	s := &soaker{o: o, out: o.Out}
	rep = &Report{Machine: load.ThisMachine(), Options: map[string]any{
		"duration": o.Duration.String(), "rate": o.Rate, "apiRate": o.apiRate(), "phases": o.Phases,
		"memoryWarmup": o.memoryWarmup().String(), "sampleInterval": o.Interval.String(),
	}}
	defer func() {
		rep.Elapsed = time.Since(start).Round(time.Second)
		if o.JSON != "" {
			err = errors.Join(err, rep.writeJSON(o.JSON))
		}
	}()
	s.logf("control plane: etcd and kube-apiserver with the webhook registered (test/cluster)")
	s.c, err = cluster.Start(ctx, cluster.Options{Root: o.Root, Webhook: true, Log: o.Out})
	if err != nil {
		return rep, err
	}
	defer func() {
		if err != nil && ctx.Err() == nil {
			s.c.WriteLogTails(s.out, false)
		}
		err = errors.Join(err, s.c.Stop())
	}()
	if err := s.setup(ctx, rep); err != nil {
		return rep, err
	}
	for _, name := range o.Phases {
		var p *PhaseReport
		if name == PhaseDirect {
			p, err = s.runPhase(ctx, s.directPhase())
		} else {
			var ph phase
			if ph, err = s.apiPhase(ctx); err == nil {
				p, err = s.runPhase(ctx, ph)
			}
		}
		if err != nil {
			return rep, fmt.Errorf("%s phase: %w", name, err)
		}
		// Only a phase that ran to its end is reported: a part of one
		// proves nothing of flat memory or leaks.
		rep.Phases = append(rep.Phases, p)
	}
	return rep, nil
}

// setup finds the webhook, builds the payloads and asks the webhook for
// each one's answer: what both phases expect.
func (s *soaker) setup(ctx context.Context, rep *Report) error {
	s.url, s.pid, s.metrics = s.c.WebhookURL(), s.c.WebhookPID(), s.c.MetricsURL()
	u, err := url.Parse(s.url)
	if err != nil {
		return err
	}
	if s.port, err = strconv.Atoi(u.Port()); err != nil {
		return fmt.Errorf("webhook URL %s: %w", s.url, err)
	}
	s.roots = x509.NewCertPool()
	if !s.roots.AppendCertsFromPEM(s.c.WebhookCA()) {
		return errors.New("webhook CA: no certificate")
	}
	reqs, err := bench.Requests(ctx)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		s.mix = append(s.mix, loadgen.Request{Name: r.Name, Path: r.Path, Body: r.Body})
	}
	s.expected, rep.Expected, err = s.decide(ctx)
	if err != nil {
		return err
	}
	for _, e := range rep.Expected {
		s.logf("expected answer for %-12s %s", e.Object+":", e.Summary)
	}
	return nil
}

func (s *soaker) logf(format string, args ...any) {
	fmt.Fprintf(s.out, "soak: "+format+"\n", args...)
}

func (r *Report) writeJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
