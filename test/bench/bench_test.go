package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/ptr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/mutate"
	"github.com/podgate/podgate/policies"
	"github.com/podgate/podgate/review"
	"github.com/podgate/podgate/validate"
)

// The inventory sizes and custom policy counts the benchmarks cover.
var (
	nodeCounts   = []int{10, 1000, 5000}
	customCounts = []int{10, 100}
)

func init() {
	// controller-runtime's webhook logs through its global logger, as it
	// does in the webhook; unset, it warns with a stack trace.
	logf.SetLogger(logr.Discard())
}

// evalTimeout is the webhook's default: the handlers pay for the context
// deadline as they do in production.
const evalTimeout = 3 * time.Second

func requests(b *testing.B) []Request {
	b.Helper()
	reqs, err := Requests(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	return reqs
}

// newEngine loads the built-in policies, custom extra ones, and n Nodes.
func newEngine(b *testing.B, nodes, custom int) *engine.Engine {
	b.Helper()
	src := engine.Sources{Builtin: policies.FS}
	if custom > 0 {
		src.PolicyDir = b.TempDir()
		for name, rego := range CustomPolicies(custom) {
			if err := os.WriteFile(filepath.Join(src.PolicyDir, name), []byte(rego), 0o600); err != nil {
				b.Fatal(err)
			}
		}
	}
	e := engine.New()
	e.PlanAhead() // as the webhook runs it
	ctx := b.Context()
	if err := e.Load(ctx, src); err != nil {
		b.Fatal(err)
	}
	if err := e.SetNodes(ctx, Nodes(nodes)); err != nil {
		b.Fatal(err)
	}
	return e
}

// latencies keeps the duration of every iteration, for p50 and p99 (the
// targets are percentiles, and ns/op is a mean), and the process's CPU time
// over the loop: on a shared machine the wall clock also counts the time
// other processes had the core, CPU time only ours (GC workers included).
type latencies struct {
	d   []time.Duration
	cpu time.Duration
}

func (l *latencies) time(f func()) {
	if l.d == nil {
		l.cpu = -cpuTime()
	}
	start := time.Now()
	f()
	l.d = append(l.d, time.Since(start))
}

func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	l.cpu += cpuTime()
	slices.Sort(l.d)
	b.ReportMetric(float64(l.d[len(l.d)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(l.cpu.Nanoseconds())/float64(len(l.d)), "cpu-ns/op")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEngine measures one evaluation of every policy, the engine
// alone: input built from the raw object, one prepared query, results
// decoded and enforcement resolved.
func BenchmarkEngine(b *testing.B) {
	reqs := requests(b)
	for _, nodes := range nodeCounts {
		e := newEngine(b, nodes, 0)
		for _, r := range reqs {
			ereq := review.EngineRequest(r.Admission)
			b.Run(fmt.Sprintf("%s/nodes=%d", r.Name, nodes), func(b *testing.B) {
				eval := evaluator(e, r.Path)
				ctx := b.Context()
				b.ReportAllocs()
				var lat latencies
				for b.Loop() {
					lat.time(func() {
						if err := eval(ctx, ereq); err != nil {
							b.Fatal(err)
						}
					})
				}
				lat.report(b)
			})
		}
	}
}

// BenchmarkHandler measures the admission handlers as controller-runtime
// calls them once it has decoded the AdmissionReview: checks, scope,
// evaluation, the patch diff or the violation messages, metrics.
func BenchmarkHandler(b *testing.B) {
	reqs := requests(b)
	for _, nodes := range nodeCounts {
		e := newEngine(b, nodes, 0)
		for _, r := range reqs {
			b.Run(fmt.Sprintf("%s/nodes=%d", r.Name, nodes), func(b *testing.B) {
				h := handler(e, r.Path)
				ctx := b.Context()
				b.ReportAllocs()
				var lat latencies
				for b.Loop() {
					lat.time(func() {
						if resp := h.Handle(ctx, r.Admission); resp.Result != nil && resp.Result.Code >= 500 {
							b.Fatalf("%s: %v", r.Name, resp.Result.Message)
						}
					})
				}
				lat.report(b)
			})
		}
	}
}

// BenchmarkServeHTTP measures the whole in-process request path minus TLS
// and the network: the AdmissionReview decoded by controller-runtime, the
// handler, the response encoded.
func BenchmarkServeHTTP(b *testing.B) {
	reqs := requests(b)
	e := newEngine(b, 10, 0)
	for _, r := range reqs {
		b.Run(r.Name, func(b *testing.B) {
			srv := &webhook.Admission{Handler: handler(e, r.Path), RecoverPanic: ptr.To(true)}
			b.ReportAllocs()
			b.SetBytes(int64(len(r.Body)))
			var lat latencies
			w := &discard{header: http.Header{}}
			for b.Loop() {
				lat.time(func() {
					req := httptest.NewRequest(http.MethodPost, r.Path, bytes.NewReader(r.Body))
					req.Header.Set("Content-Type", "application/json")
					w.n = 0
					srv.ServeHTTP(w, req)
					if w.n == 0 {
						b.Fatal("empty response")
					}
				})
			}
			lat.report(b)
		})
	}
}

// BenchmarkPolicies shows how the cost grows with the number of policies:
// the built-in ones plus 10 and 100 generated custom policies, 10 Nodes.
func BenchmarkPolicies(b *testing.B) {
	reqs := Only(requests(b), "/validate")
	for _, custom := range append([]int{0}, customCounts...) {
		handlers(b, newEngine(b, 10, custom), reqs, fmt.Sprintf("custom=%d", custom))
	}
}

// BenchmarkPolicyAlone shows what each built-in policy costs: /validate
// with that policy on and the others set to off in the config, then with
// every policy on and with none, 10 Nodes. With none nothing is decoded or
// evaluated, so the difference is the policy's own cost plus what any
// evaluation costs (the input, the query's setup).
func BenchmarkPolicyAlone(b *testing.B) {
	reqs := Only(requests(b), "/validate")
	var names []string
	for _, p := range newEngine(b, 0, 0).Policies() {
		names = append(names, p.Name)
	}
	for _, on := range append(slices.Clone(names), "every", "none") {
		config := "policies:\n"
		for _, name := range names {
			if on != name && on != "every" {
				config += fmt.Sprintf("  %s:\n    enforcement: off\n", name)
			}
		}
		if on == "every" {
			config = "{}\n"
		}
		file := filepath.Join(b.TempDir(), "config.yaml")
		if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
			b.Fatal(err)
		}
		e := engine.New()
		e.PlanAhead() // as the webhook runs it
		if err := e.Load(b.Context(), engine.Sources{Builtin: policies.FS, ConfigFile: file}); err != nil {
			b.Fatal(err)
		}
		if err := e.SetNodes(b.Context(), Nodes(10)); err != nil {
			b.Fatal(err)
		}
		handlers(b, e, reqs, on)
	}
}

// handlers runs the handler of each request as a sub-benchmark named
// prefix/request.
func handlers(b *testing.B, e *engine.Engine, reqs []Request, prefix string) {
	for _, r := range reqs {
		b.Run(prefix+"/"+r.Name, func(b *testing.B) {
			h := handler(e, r.Path)
			ctx := b.Context()
			b.ReportAllocs()
			var lat latencies
			for b.Loop() {
				lat.time(func() { h.Handle(ctx, r.Admission) })
			}
			lat.report(b)
		})
	}
}

func handler(e *engine.Engine, path string) admission.Handler {
	if path == "/mutate" {
		return &mutate.Handler{Engine: e, Log: logr.Discard(), EvalTimeout: evalTimeout}
	}
	return &validate.Handler{Engine: e, Log: logr.Discard(), EvalTimeout: evalTimeout}
}

func evaluator(e *engine.Engine, path string) func(context.Context, *engine.Request) error {
	if path == "/mutate" {
		return func(ctx context.Context, r *engine.Request) error { _, err := e.Mutations(ctx, r); return err }
	}
	return func(ctx context.Context, r *engine.Request) error { _, err := e.Violations(ctx, r); return err }
}

// discard is a ResponseWriter that counts what it is given.
type discard struct {
	header http.Header
	n      int
}

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }
func (d *discard) WriteHeader(int)             {}
