package soak

import (
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podgate/podgate/test/load"
)

func TestCreateAnswersAreJudgedAgainstTheWebhooksOwn(t *testing.T) {
	allowed := expectation{allowed: true, warnings: []string{"a", "b"}, paths: []string{"/spec/containers/0/readinessProbe", "/metadata/annotations/probes.podgate.dev~1added"}}
	created := `{"metadata":{"annotations":{"probes.podgate.dev/added":"app"}},"spec":{"containers":[{"readinessProbe":{}}]}}`
	denied := expectation{code: 403, message: "image tag latest"}
	warn := func(texts ...string) []string {
		var out []string
		for _, s := range texts {
			out = append(out, `299 - "`+s+`"`)
		}
		return out
	}
	cases := []struct {
		name     string
		want     expectation
		code     int
		warnings []string
		body     string
		kind     string // "" for no error
	}{
		{"an allowed object created with both warnings and the mutation is right", allowed, 201, warn("b", "a", "a"), created, ""},
		{"an allowed object with a warning missing is an unexpected answer", allowed, 201, warn("a"), created, kindUnexpected},
		{"an allowed object without the mutation's path is an unexpected answer", allowed, 201, warn("a", "b"), `{"spec":{"containers":[{}]}}`, kindUnexpected},
		{"an allowed object denied is an unexpected answer", allowed, 403, nil, `{"kind":"Status","message":"nope","code":403}`, kindUnexpected},
		{"a denied object denied with the policy's message is right", denied, 403, nil,
			`{"kind":"Status","message":"admission webhook \"validate.podgate.dev\" denied the request: image tag latest","code":403}`, ""},
		{"a denied object denied for another reason is an unexpected answer", denied, 403, nil, `{"kind":"Status","message":"quota","code":403}`, kindUnexpected},
		{"a denied object created is an unexpected answer", denied, 201, nil, created, kindUnexpected},
		{"a webhook call that failed is counted as such", allowed, 500, nil,
			`{"kind":"Status","message":"Internal error occurred: failed calling webhook \"mutate.podgate.dev\": context deadline exceeded","code":500}`, kindWebhookCall},
		{"the webhook's own 500 is counted as such", allowed, 500, nil,
			`{"kind":"Status","message":"admission webhook \"validate.podgate.dev\" denied the request: podgate could not evaluate its policies: eval_cancel_error: context deadline exceeded","code":500}`, kindWebhookError},
		{"a 429 is throttling", allowed, 429, nil, `{"kind":"Status","message":"too many requests","code":429}`, kindThrottled},
		{"a 503 is a server error", allowed, 503, nil, `{"kind":"Status","message":"unavailable","code":503}`, kindServer},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkCreate(c.want, "create/x", c.code, c.warnings, []byte(c.body))
			switch {
			case c.kind == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case c.kind != "" && err == nil:
				t.Errorf("no error, want %s", c.kind)
			case c.kind != "" && errorKind(err.Error()) != c.kind:
				t.Errorf("error %q is of kind %q, want %q", err, errorKind(err.Error()), c.kind)
			}
		})
	}
}

func TestErrorTextsAreSortedIntoKinds(t *testing.T) {
	for text, want := range map[string]string{
		"not sent: too many requests in flight": kindNotSent,
		`Post "https://127.0.0.1:1/x": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`: kindTimeout,
		"HTTP 500: boom": kindServer,
		"HTTP 504: Timeout: request did not complete":      kindServer,
		"unexpected answer: mutate/pod: allowed false":     kindUnexpected,
		`Post "https://127.0.0.1:1/x": connection refused`: kindTransport,
	} {
		if got := errorKind(text); got != want {
			t.Errorf("errorKind(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestJSONPointersArePathsInTheObject(t *testing.T) {
	doc := map[string]any{"a": map[string]any{"b/c": []any{"x", map[string]any{"~k": 1}}}}
	for p, want := range map[string]bool{
		"":              true,
		"/a":            true,
		"/a/b~1c/0":     true,
		"/a/b~1c/1/~0k": true,
		"/a/b~1c/2":     false,
		"/a/bc":         false,
		"/a/b~1c/0/y":   false,
		"a":             false,
	} {
		if got := hasPointer(doc, p); got != want {
			t.Errorf("hasPointer(%q) = %t, want %t", p, got, want)
		}
	}
}

func TestOnlyEstablishedConnectionsToThePortAreCounted(t *testing.T) {
	// Port 9443 is 24E3; 01 is ESTABLISHED, 0A LISTEN, 06 TIME_WAIT.
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:24E3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:24E3 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:D431 0100007F:24E3 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:24E3 0100007F:D432 06 00000000:00000000 03:00001000 00000000     0        0 0 3 0000000000000000
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:24E3 0000000000000000FFFF00000100007F:D433 01 00000000:00000000 00:00000000 00000000     0        0 5 1 0 20 4 30 10 -1
`
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "net", "tcp"), []byte(tcp), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := establishedTo(root, 9443)
	if err != nil || n != 1 {
		t.Errorf("without tcp6: %d connections (%v), want 1", n, err)
	}
	if err := os.WriteFile(filepath.Join(root, "net", "tcp6"), []byte(tcp6), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := establishedTo(root, 9443); err != nil || n != 2 {
		t.Errorf("%d connections (%v), want 2 (the webhook's side of two)", n, err)
	}
}

func TestTrendIsFittedAfterTheWarmup(t *testing.T) {
	var samples []MemSample
	for i := range 13 { // 0..120s every 10s
		at := time.Duration(i) * 10 * time.Second
		v := int64(100<<20) + int64(i)*(1<<20) // +1 MiB per 10s: +6 MiB/min
		if at < 30*time.Second {
			v = 500 << 20 // the warm-up's figures are left out
		}
		samples = append(samples, MemSample{At: at, RSS: v})
	}
	tr := trendOf(samples, 30*time.Second, 30*time.Second, func(m MemSample) int64 { return m.RSS })
	if math.Abs(tr.Slope-6) > 1e-9 || tr.Samples != 10 {
		t.Errorf("slope %v over %d samples, want 6 MiB/min over 10", tr.Slope, tr.Samples)
	}
	// Start: mean of 30, 40, 50s (+3..+5 MiB); end: of 100, 110, 120s (+10..+12).
	if tr.Start != 104<<20 || tr.End != 111<<20 || tr.Min != 103<<20 || tr.Max != 112<<20 {
		t.Errorf("start %d end %d min %d max %d", tr.Start>>20, tr.End>>20, tr.Min>>20, tr.Max>>20)
	}
}

func TestPhaseCriteria(t *testing.T) {
	flat := Trend{Start: 50 << 20, End: 52 << 20, Samples: 50}
	good := func() *PhaseReport {
		return &PhaseReport{
			Name: PhaseDirect, Target: 1000, WebhookRate: 999, ErrorsBy: map[string]int{},
			RSS: flat, HeapInuse: flat, HeapLive: Trend{Start: 10 << 20, End: 10 << 20, Samples: 50},
			Before: Idle{Goroutines: 40}, After: Idle{Goroutines: 43},
		}
	}
	cases := []struct {
		name   string
		change func(*PhaseReport)
		failed string // the criterion that fails; "" for none
	}{
		{"a phase with no error, the rate, flat memory and no leak passes", func(*PhaseReport) {}, ""},
		{"one error fails", func(p *PhaseReport) { p.Errors, p.ErrorsBy[kindTimeout] = 1, 1 }, "errors"},
		{"a webhook receiving 95% of the rate fails", func(p *PhaseReport) { p.WebhookRate = 950 }, "rate"},
		{"a live heap grown by 4 of its 10 MiB fails", func(p *PhaseReport) { p.HeapLive.End = 14 << 20 }, "heap live"},
		{"RSS grown by 15 of its 50 MiB fails", func(p *PhaseReport) { p.RSS.End = 65 << 20 }, "RSS"},
		{"six goroutines more after the load fail", func(p *PhaseReport) { p.After.Goroutines = 46 }, "goroutines"},
		{"a connection left open fails", func(p *PhaseReport) { p.After.OpenConns = 1 }, "goroutines"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := good()
			c.change(p)
			r := &Report{Phases: []*PhaseReport{p}}
			var failed []string
			for _, f := range r.Failed() {
				failed = append(failed, f.Name)
			}
			want := []string{}
			if c.failed != "" {
				want = []string{c.failed}
			}
			if strings.Join(failed, ",") != strings.Join(want, ",") {
				t.Errorf("failed %q, want %q", failed, want)
			}
		})
	}
}

func TestSoakOptionsFromFlags(t *testing.T) {
	o := NewOptions()
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--duration", "1m", "--api-rate", "300", "--phases", "api"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Duration != time.Minute || o.apiRate() != 300 || o.Rate != DefaultRate || len(o.Phases) != 1 || o.Phases[0] != PhaseAPI {
		t.Errorf("options %+v", o)
	}
	if o.memoryWarmup() != 20*time.Second {
		t.Errorf("memory warm-up of a 1m run %s, want a third of it", o.memoryWarmup())
	}
	bad := NewOptions()
	bad.Duration, bad.Rate, bad.Phases = 2*time.Hour, 0, []string{"sideways"}
	err := bad.Validate()
	for _, want := range []string{"--duration", "--rate", "--phases"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
}

func TestOwnUsageAndChildrenAreRead(t *testing.T) {
	// Spend a few clock ticks of CPU, so that there is some to read.
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	u, err := load.ReadUsage(os.Getpid())
	if err != nil || u.CPU <= 0 || u.RSS <= 0 || u.Peak < u.RSS {
		t.Fatalf("usage of this process: %+v (%v)", u, err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if got := childPIDs("sleep", "etcd"); len(got) != 1 || got["sleep"] != cmd.Process.Pid {
		t.Fatalf("children: %v, want sleep=%d only", got, cmd.Process.Pid)
	}
}
