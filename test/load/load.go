package load

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/podgate/podgate/test/load/loadgen"
)

// Defaults, each with its reason.
const (
	// DefaultDuration is the sustained run: 2,000 requests/s for 60s.
	DefaultDuration = 60 * time.Second
	// DefaultStep is each comparison step: long enough for a few thousand
	// samples per rate (a stable p99), short enough that `make loadtest`
	// stays under ten minutes.
	DefaultStep = 10 * time.Second
	// DefaultWarmup opens the connections and lets both servers reach a
	// steady state before each measurement.
	DefaultWarmup = 2 * time.Second
	// DefaultRate is the target rate.
	DefaultRate = 2000
	// DefaultNodes is the inventory of the memory run (issue: 5,000 Nodes).
	DefaultNodes = 5000
	// DefaultNodesRate is the rate of the memory run (issue: 1,000/s).
	DefaultNodesRate = 1000
	// DefaultReloadRate is the rate during the policy reloads.
	DefaultReloadRate = 1000
)

// Options configure a load test run.
type Options struct {
	Root    string // repository root; found from the working directory when empty
	Webhook string // the webhook binary (built from ./cmd/webhook)
	OPA     string // the opa binary (built from the pinned module)
	// NullWebhook is the floor of the side-by-side comparison (./test/load/cmd/nullwebhook).
	NullWebhook string
	// Gatekeeper is the gatekeeper binary, its CRDs and policy next to it
	// (test/tools/build.sh gatekeeper); "" leaves Gatekeeper out.
	Gatekeeper string
	Duration   time.Duration // the sustained run at Rate
	Step       time.Duration // each comparison, max-throughput, reload and memory run
	Warmup     time.Duration
	Rate       float64 // the sustained run's rate
	Nodes      int     // Nodes added for the memory run; 0 skips it
	NodesRate  float64
	ReloadRate float64
	Workers    int    // closed-loop workers
	JSON       string // where to write the figures as JSON ("" for nowhere)
	Out        io.Writer
}

// NewOptions returns the defaults.
func NewOptions() Options {
	return Options{
		Duration: DefaultDuration, Step: DefaultStep, Warmup: DefaultWarmup,
		Rate: DefaultRate, Nodes: DefaultNodes, NodesRate: DefaultNodesRate, ReloadRate: DefaultReloadRate,
		Workers: loadgen.DefaultWorkers, Out: os.Stdout,
	}
}

// AddFlags binds the options to fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Root, "root", o.Root, "Repository root (default: found from the working directory).")
	fs.StringVar(&o.Webhook, "webhook", o.Webhook, "The podgate webhook binary.")
	fs.StringVar(&o.OPA, "opa", o.OPA, "The opa binary to compare with.")
	fs.StringVar(&o.NullWebhook, "null-webhook", o.NullWebhook, "The null webhook binary (decodes and allows).")
	fs.StringVar(&o.Gatekeeper, "gatekeeper", o.Gatekeeper, "The gatekeeper binary to compare with (empty: none).")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "Duration of the sustained run at --rate.")
	fs.DurationVar(&o.Step, "step", o.Step, "Duration of each comparison, maximum-throughput, reload and memory run.")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "Warm-up before each measured run.")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "Rate of the sustained run, requests/s.")
	fs.IntVar(&o.Nodes, "nodes", o.Nodes, "Nodes to add for the memory run (0 skips it).")
	fs.Float64Var(&o.NodesRate, "nodes-rate", o.NodesRate, "Rate of the memory run, requests/s.")
	fs.Float64Var(&o.ReloadRate, "reload-rate", o.ReloadRate, "Rate during the policy reloads, requests/s.")
	fs.IntVar(&o.Workers, "workers", o.Workers, "Concurrent senders of the maximum-throughput runs.")
	fs.StringVar(&o.JSON, "json", o.JSON, "Also write every figure to this file, as JSON.")
}

// Validate reports every bad option; the bounds keep a run finite.
func (o *Options) Validate() error {
	var errs []error
	for name, path := range map[string]string{"--webhook": o.Webhook, "--opa": o.OPA, "--null-webhook": o.NullWebhook} {
		if path == "" {
			errs = append(errs, fmt.Errorf("%s: required", name))
		} else if _, err := os.Stat(path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if o.Gatekeeper != "" {
		if _, err := os.Stat(o.Gatekeeper); err != nil {
			errs = append(errs, fmt.Errorf("--gatekeeper: %w", err))
		}
	}
	for name, d := range map[string]time.Duration{"--duration": o.Duration, "--step": o.Step} {
		if d <= 0 || d > loadgen.MaxDuration {
			errs = append(errs, fmt.Errorf("%s %s: want (0, %s]", name, d, loadgen.MaxDuration))
		}
	}
	if o.Warmup < 0 || o.Warmup > time.Minute {
		errs = append(errs, fmt.Errorf("--warmup %s: want [0, 1m]", o.Warmup))
	}
	for name, r := range map[string]float64{"--rate": o.Rate, "--nodes-rate": o.NodesRate, "--reload-rate": o.ReloadRate} {
		if r <= 0 || r > 100_000 {
			errs = append(errs, fmt.Errorf("%s %g: want (0, 100000]", name, r))
		}
	}
	if o.Nodes < 0 || o.Nodes > 20_000 {
		errs = append(errs, fmt.Errorf("--nodes %d: want [0, 20000]", o.Nodes))
	}
	if o.Workers < 1 || o.Workers > 256 {
		errs = append(errs, fmt.Errorf("--workers %d: want [1, 256]", o.Workers))
	}
	return errors.Join(errs...)
}

// DurationFromEnv reads a duration such as LOADTEST_DURATION: "60s", or
// a plain number of seconds.
func DurationFromEnv(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(s) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", name, v, err)
	}
	return d, nil
}

// Machine describes where the figures were measured.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	MemoryGiB int    `json:"memoryGiB"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	LoadAvg   string `json:"loadAvg"` // at the start: other work on the machine
}

// ThisMachine describes the machine this runs on, now.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
				kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				m.MemoryGiB = (kb + 512<<10) >> 20
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(data))
	}
	return m
}
