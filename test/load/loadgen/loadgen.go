// Package loadgen sends AdmissionReview requests to an HTTPS admission
// webhook the way a busy API server does, and measures the latency of each.
//
// Two modes:
//
//   - open loop (Options.Rate > 0): requests are sent at fixed times, i/Rate
//     after the start, whether or not earlier ones have been answered, and
//     each latency is measured from its scheduled time. A webhook that
//     falls behind shows it as latency, never as a lower send rate (no
//     coordinated omission);
//   - closed loop (Rate == 0): Options.Workers goroutines send back to back;
//     the throughput is the webhook's maximum.
//
// Both are bounded by Options.Duration and Options.MaxRequests, speak
// HTTP/1.1 with keep-alive (as the API server does to a webhook that serves
// no HTTP/2), and refuse any address but loopback.
package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Defaults and bounds, each with its reason.
const (
	// DefaultWorkers keeps a 2-core webhook busy in closed loop without
	// piling up a queue that only adds latency.
	DefaultWorkers = 8
	// DefaultMaxInFlight bounds the requests outstanding in open loop:
	// beyond it the webhook is overloaded and further requests count as
	// errors instead of piling up goroutines and connections.
	DefaultMaxInFlight = 256
	// DefaultTimeout is the webhook timeoutSeconds of podgate's chart.
	DefaultTimeout = 10 * time.Second
	// MaxDuration and MaxRequestsLimit bound any run. An hour lets a soak
	// (make soak) run longer than its default 10 minutes; at 1,000
	// requests/s that is 3.6 million samples, about 90 MB of them.
	MaxDuration      = time.Hour
	MaxRequestsLimit = 10_000_000
)

// Request is one request of the mix: POSTed to Path with Body.
type Request struct {
	Name string
	Path string
	Body []byte
}

// Options says what to send, where, and how fast.
type Options struct {
	// URL is the webhook's base URL, https://127.0.0.1:<port>; only
	// loopback hosts are accepted.
	URL string
	// RootCAs verifies the webhook's certificate.
	RootCAs *x509.CertPool
	// Client, when set, sends every request in place of the HTTP/1.1
	// client built from RootCAs: e.g. one that speaks HTTP/2 and presents
	// a client certificate, as a client of the API server does. Its idle
	// connections are closed when the run ends.
	Client *http.Client
	// Requests are sent round-robin.
	Requests []Request
	// Rate is the open-loop rate in requests/s; 0 is closed loop.
	Rate float64
	// Workers is the closed-loop concurrency (DefaultWorkers when 0).
	Workers int
	// MaxInFlight bounds open-loop outstanding requests (DefaultMaxInFlight when 0).
	MaxInFlight int
	// Duration of the measured run; at most MaxDuration.
	Duration time.Duration
	// Warmup runs the same load before measuring, to open connections and
	// let both sides reach a steady state; not counted.
	Warmup time.Duration
	// MaxRequests stops the run early; at most MaxRequestsLimit (the
	// default).
	MaxRequests int
	// Timeout of one request (DefaultTimeout when 0).
	Timeout time.Duration
	// Check, when set, inspects each 200 answer's body; an error counts
	// as a failed request.
	Check func(req Request, body []byte) error
	// Expect, when set, judges every answer, whatever its status, in
	// place of the 200 check and Check: an API server answers a create
	// with 201, and a denial with 403 is a correct answer too. An error
	// counts as a failed request.
	Expect func(req Request, resp *http.Response, body []byte) error
	// OnStart, when set, is called as the measured run starts (after the
	// warmup), e.g. to start sampling the server's resource use.
	OnStart func()
}

// Sample is one measured request: when it was due (open loop) or sent
// (closed loop), relative to the start of the measured run, and how long
// it took from then until the whole answer was read.
type Sample struct {
	At      time.Duration
	Latency time.Duration
	Failed  bool
}

// Result is what a run measured.
type Result struct {
	Mode      string        // "rate 2000/s" or "closed loop, 8 workers"
	Started   time.Time     // when the measured run began (after the warmup)
	Elapsed   time.Duration // from the first send to the last answer
	Samples   []Sample      // in completion order
	Errors    int
	ErrorsBy  map[string]int // error text -> count (truncated texts)
	Overloads int            // open-loop requests not sent: MaxInFlight reached
}

// Validate reports bad options.
func (o *Options) Validate() error {
	var errs []error
	u, err := url.Parse(o.URL)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("url %q: %w", o.URL, err))
	case u.Scheme != "https":
		errs = append(errs, fmt.Errorf("url %q: want https", o.URL))
	default:
		if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
			errs = append(errs, fmt.Errorf("url %q: only loopback addresses are load tested", o.URL))
		}
	}
	if len(o.Requests) == 0 {
		errs = append(errs, errors.New("no requests to send"))
	}
	if o.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %v: must not be negative", o.Rate))
	}
	if o.Duration <= 0 || o.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("duration %s: want (0, %s]", o.Duration, MaxDuration))
	}
	if o.Warmup < 0 || o.Warmup > MaxDuration {
		errs = append(errs, fmt.Errorf("warmup %s: want [0, %s]", o.Warmup, MaxDuration))
	}
	if o.MaxRequests < 0 || o.MaxRequests > MaxRequestsLimit {
		errs = append(errs, fmt.Errorf("max requests %d: want [0, %d]", o.MaxRequests, MaxRequestsLimit))
	}
	return errors.Join(errs...)
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxRequests == 0 {
		o.MaxRequests = MaxRequestsLimit
	}
}

// Run warms up, then measures, and returns what it measured. It ends when
// the duration has passed (waiting for the requests still in flight),
// when MaxRequests have been sent, or when ctx ends.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.defaults()
	client := o.Client
	if client == nil {
		client = newClient(o)
	}
	defer client.CloseIdleConnections()
	if o.Warmup > 0 {
		warm := o
		warm.Duration, warm.Warmup, warm.MaxRequests = o.Warmup, 0, MaxRequestsLimit
		warm.OnStart = nil
		if _, err := run(ctx, client, warm); err != nil {
			return nil, err
		}
	}
	return run(ctx, client, o)
}

func newClient(o Options) *http.Client {
	conns := o.Workers
	if o.Rate > 0 {
		conns = o.MaxInFlight
	}
	return &http.Client{
		Timeout: o.Timeout,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:   false,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

func run(ctx context.Context, client *http.Client, o Options) (*Result, error) {
	r := &recorder{errorsBy: map[string]int{}, samples: make([]Sample, 0, expected(o))}
	if o.OnStart != nil {
		o.OnStart()
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	var mode string
	if o.Rate > 0 {
		mode = fmt.Sprintf("rate %g/s", o.Rate)
		openLoop(ctx, client, o, start, r, &wg)
	} else {
		mode = fmt.Sprintf("closed loop, %d workers", o.Workers)
		closedLoop(ctx, client, o, start, r, &wg)
	}
	wg.Wait()
	res := &Result{Mode: mode, Started: start, Elapsed: time.Since(start), Samples: r.samples, Errors: r.errors, ErrorsBy: r.errorsBy, Overloads: r.overloads}
	if res.Errors > 0 && len(res.Samples) == res.Errors && ctx.Err() == nil {
		return res, fmt.Errorf("every request failed: %v", res.ErrorsBy)
	}
	return res, nil
}

func expected(o Options) int {
	n := 1 << 16
	if o.Rate > 0 {
		n = int(o.Rate*o.Duration.Seconds()) + 16
	}
	return min(n, o.MaxRequests, 1<<22)
}

// openLoop sends request i at start + i/Rate. It wakes up at the next due
// time and sends every request that is due, so a late wake-up sends a
// small burst, never fewer requests.
func openLoop(ctx context.Context, client *http.Client, o Options, start time.Time, r *recorder, wg *sync.WaitGroup) {
	interval := time.Duration(float64(time.Second) / o.Rate)
	inFlight := make(chan struct{}, o.MaxInFlight)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; i < o.MaxRequests; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		select {
		case inFlight <- struct{}{}:
		default:
			r.overload(due.Sub(start))
			continue
		}
		req := o.Requests[i%len(o.Requests)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-inFlight }()
			r.add(due.Sub(start), due, send(client, o, req))
		}()
	}
}

// closedLoop runs Workers senders until the duration or MaxRequests.
func closedLoop(ctx context.Context, client *http.Client, o Options, start time.Time, r *recorder, wg *sync.WaitGroup) {
	var mu sync.Mutex
	next := 0
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= o.MaxRequests || ctx.Err() != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := take()
				if !ok {
					return
				}
				sent := time.Now()
				r.add(sent.Sub(start), sent, send(client, o, o.Requests[i%len(o.Requests)]))
			}
		}()
	}
}

// send POSTs one request and reads the whole answer.
func send(client *http.Client, o Options, req Request) error {
	hr, err := http.NewRequest(http.MethodPost, o.URL+req.Path, bytes.NewReader(req.Body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	resp, err := client.Do(hr)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if o.Expect != nil {
		return o.Expect(req, resp, body)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", req.Path, resp.StatusCode)
	}
	if o.Check != nil {
		return o.Check(req, body)
	}
	return nil
}

type recorder struct {
	mu        sync.Mutex
	samples   []Sample
	errors    int
	overloads int
	errorsBy  map[string]int
}

func (r *recorder) add(at time.Duration, from time.Time, err error) {
	lat := time.Since(from)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, Sample{At: at, Latency: lat, Failed: err != nil})
	if err != nil {
		r.errors++
		msg := err.Error()
		if len(msg) > 160 {
			msg = msg[:160]
		}
		r.errorsBy[msg]++
	}
}

func (r *recorder) overload(at time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.overloads++
	r.errors++
	r.errorsBy["not sent: too many requests in flight"]++
	r.samples = append(r.samples, Sample{At: at, Failed: true})
}

// Stats summarizes samples.
type Stats struct {
	Requests                       int // measured requests (failed ones included)
	Errors                         int
	Throughput                     float64 // answered requests per second of elapsed time
	P50, P90, P99, P999, Max, Mean time.Duration
}

// Summary is the run's stats over all its samples.
func (r *Result) Summary() Stats {
	return Summarize(r.Samples, r.Elapsed)
}

// Window is the stats of the samples due in [from, to).
func (r *Result) Window(from, to time.Duration) Stats {
	var in []Sample
	for _, s := range r.Samples {
		if s.At >= from && s.At < to {
			in = append(in, s)
		}
	}
	return Summarize(in, to-from)
}

// Summarize computes percentiles of the answered requests' latencies (a
// sorted copy: exact, and cheap for the few million samples a bounded run
// has) and the throughput over elapsed.
func Summarize(samples []Sample, elapsed time.Duration) Stats {
	lat := make([]time.Duration, 0, len(samples))
	st := Stats{Requests: len(samples)}
	var sum time.Duration
	for _, s := range samples {
		if s.Failed {
			st.Errors++
			continue
		}
		lat = append(lat, s.Latency)
		sum += s.Latency
	}
	if elapsed > 0 {
		st.Throughput = float64(len(lat)) / elapsed.Seconds()
	}
	if len(lat) == 0 {
		return st
	}
	slices.Sort(lat)
	at := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	st.P50, st.P90, st.P99, st.P999 = at(0.50), at(0.90), at(0.99), at(0.999)
	st.Max = lat[len(lat)-1]
	st.Mean = sum / time.Duration(len(lat))
	return st
}

// String is one line: throughput, percentiles, errors.
func (s Stats) String() string {
	return fmt.Sprintf("%8.0f req/s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  errors %d/%d",
		s.Throughput, ms(s.P50), ms(s.P90), ms(s.P99), ms(s.P999), ms(s.Max), s.Errors, s.Requests)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
