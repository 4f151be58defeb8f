package load

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/inventory"
	"github.com/podgate/podgate/test/bench"
	"github.com/podgate/podgate/test/cluster"
	"github.com/podgate/podgate/test/load/loadgen"
	"github.com/podgate/podgate/test/load/opapeer"
)

// Measured is one measured run against one server.
type Measured struct {
	Server string        `json:"server"`
	Mode   string        `json:"mode"`
	Rate   float64       `json:"rate,omitempty"` // 0: closed loop
	Stats  loadgen.Stats `json:"stats"`
	// CPUPerRequest is the server's CPU time divided by the requests it
	// answered: what a request costs, whatever else ran on the machine.
	CPUPerRequest time.Duration  `json:"cpuPerRequest"`
	Cores         float64        `json:"cores"` // server CPU time / wall time
	RSSMax        int64          `json:"rssMax"`
	ErrorsBy      map[string]int `json:"errorsBy,omitempty"`
	result        *loadgen.Result
}

// Pair is podgate and OPA measured alike, one after the other.
type Pair struct {
	Rate    float64  `json:"rate,omitempty"` // 0: closed loop
	Podgate Measured `json:"podgate"`
	OPA     Measured `json:"opa"`
}

// Decision is one payload's answer from each server.
type Decision struct {
	Request string `json:"request"`
	Podgate string `json:"podgate"`
	OPA     string `json:"opa"`
	Same    bool   `json:"same"`
}

// Report holds every figure of a run.
type Report struct {
	Machine       Machine          `json:"machine"`
	Options       map[string]any   `json:"options"`
	Payloads      map[string]int   `json:"payloadBytes"`
	Decisions     []Decision       `json:"decisions"`
	IdleRSS       map[string]int64 `json:"idleRSS"`
	MaxThroughput Pair             `json:"maxThroughput"`
	Rates         []Pair           `json:"rates"`
	Peers         *PeersRun        `json:"peers,omitempty"`
	Sustained     Measured         `json:"sustained"`
	MaxMix        Measured         `json:"maxMix"`
	MixRates      []Measured       `json:"mixRates"`
	Reload        *ReloadRun       `json:"reload,omitempty"`
	Inventory     *NodesRun        `json:"inventory,omitempty"`
	IdleRSSAfter  int64            `json:"idleRSSAfter"`
	Elapsed       time.Duration    `json:"elapsed"`
}

// ReloadRun is a run at a fixed rate during which the policy set is
// reloaded twice.
type ReloadRun struct {
	Measured
	Reloads int             `json:"reloads"` // policy set generations gained
	Windows []loadgen.Stats `json:"windows"` // the 2s after each change
}

// NodesRun is a run with a large Node inventory.
type NodesRun struct {
	Measured
	Nodes     int     `json:"nodes"`
	IdleRSS   int64   `json:"idleRSS"`
	IdleCores float64 `json:"idleCores"` // CPU used while no request came
}

// tester holds what the scenarios share.
type tester struct {
	o        Options
	out      io.Writer
	dir      string // scratch: certificates, logs, configs
	pki      *pki
	webhook  *server
	opa      *server
	metrics  string            // the webhook's /metrics URL
	policies string            // the webhook's --policy-dir
	validate []loadgen.Request // /validate of each object
	mix      []loadgen.Request // /validate and /mutate of each object
	opaReqs  []loadgen.Request // the /validate bodies, POSTed to OPA's /
}

// Run starts a control plane, the webhook and OPA, runs every scenario
// and returns the figures; every process it started is stopped when it
// returns.
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	start := time.Now()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Root == "" {
		if o.Root, err = cluster.FindRoot("."); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "podgate-loadtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	t := &tester{o: o, out: o.Out, dir: dir}
	rep = &Report{Machine: ThisMachine(), IdleRSS: map[string]int64{}, Payloads: map[string]int{}, Options: map[string]any{
		"duration": o.Duration.String(), "step": o.Step.String(), "warmup": o.Warmup.String(), "rate": o.Rate,
		"nodes": o.Nodes, "nodesRate": o.NodesRate, "reloadRate": o.ReloadRate, "workers": o.Workers,
	}}
	if err := t.payloads(ctx, rep); err != nil {
		return nil, err
	}
	t.logf("control plane: etcd and kube-apiserver (test/cluster), for the webhook's Node informer")
	c, err := cluster.Start(ctx, cluster.Options{Root: o.Root, Log: o.Out})
	if err != nil {
		return nil, err
	}
	defer func() { err = joinErr(err, c.Stop()) }()
	if err := t.startServers(ctx, dir, c.Kubeconfig()); err != nil {
		return nil, err
	}
	defer func() { err = joinErr(err, t.webhook.stop(), t.opa.stop()) }()
	steps := []func(context.Context, *Report, *cluster.Cluster) error{
		// The sustained run comes last: if it overloads the webhook, the
		// queue it builds must not weigh on the other runs' figures.
		t.decisions, t.idle, t.compare, t.peers, t.maxMix, t.reload, t.inventory, t.sustained,
	}
	for _, step := range steps {
		if err := step(ctx, rep, c); err != nil {
			return rep, err
		}
	}
	rep.Elapsed = time.Since(start).Round(time.Second)
	if o.JSON != "" {
		data, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.JSON, data, 0o644); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func joinErr(errs ...error) error {
	var out []string
	for _, e := range errs {
		if e != nil {
			out = append(out, e.Error())
		}
	}
	if len(out) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(out, "; "))
}

func (t *tester) logf(format string, args ...any) {
	fmt.Fprintf(t.out, "loadtest: "+format+"\n", args...)
}

// payloads are bench's: each testdata object to /mutate as written and
// to /validate as mutated.
func (t *tester) payloads(ctx context.Context, rep *Report) error {
	reqs, err := bench.Requests(ctx)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		lr := loadgen.Request{Name: r.Name, Path: r.Path, Body: r.Body}
		t.mix = append(t.mix, lr)
		rep.Payloads[r.Name] = len(r.Body)
		if r.Path == "/validate" {
			t.validate = append(t.validate, lr)
			lr.Path = "/"
			t.opaReqs = append(t.opaReqs, lr)
		}
	}
	return nil
}

// webhookMemLimit is the soft memory limit the chart gives the webhook
// with its default resources (90% of 256Mi; test/chart checks what it
// renders), so that the memory figures are those of a deployed webhook.
const webhookMemLimit = "GOMEMLIMIT=230MiB"

func (t *tester) startServers(ctx context.Context, dir, kubeconfig string) error {
	var err error
	if t.pki, err = newPKI(filepath.Join(dir, "certs")); err != nil {
		return err
	}
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	t.policies = filepath.Join(dir, "policies")
	if err := os.Mkdir(t.policies, 0o755); err != nil {
		return err
	}
	t.metrics = "http://" + loopback(ports[1]) + "/metrics"
	if t.webhook, err = t.startWebhook(ctx, "webhook", dir, kubeconfig, ports[:3], "--policy-dir", t.policies); err != nil {
		return err
	}
	bundle := filepath.Join(dir, "opa-bundle")
	if err := opapeer.WriteBundle(ctx, bundle, clusterNodes()); err != nil {
		return err
	}
	t.opa, err = startServer("opa", t.o.OPA, dir, "https://"+loopback(ports[3]), nil,
		"run", "--server", "--addr", loopback(ports[3]),
		"--tls-cert-file", t.pki.cert(), "--tls-private-key-file", t.pki.key(),
		// Info level logs every request; podgate logs none at info.
		"--log-level", "error", "--skip-version-check", bundle)
	if err != nil {
		return err
	}
	if err := t.opa.waitReady(ctx, t.pki.client(), t.opa.url+"/health"); err != nil {
		return err
	}
	t.logf("webhook pid %d at %s, OPA pid %d at %s", t.webhook.pid(), t.webhook.url, t.opa.pid(), t.opa.url)
	return nil
}

// startWebhook starts the webhook binary as name on ports (serving,
// metrics, health) and waits until it is ready.
func (t *tester) startWebhook(ctx context.Context, name, dir, kubeconfig string, ports []int, args ...string) (*server, error) {
	s, err := startServer(name, t.o.Webhook, dir, "https://"+loopback(ports[0]), []string{webhookMemLimit},
		append([]string{"--kubeconfig", kubeconfig, "--cert-dir", t.pki.dir, "--port", strconv.Itoa(ports[0]),
			"--metrics-bind-address", loopback(ports[1]), "--health-probe-bind-address", loopback(ports[2])}, args...)...)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, http.DefaultClient, "http://"+loopback(ports[2])+"/readyz"); err != nil {
		return nil, errors.Join(err, s.stop())
	}
	return s, nil
}

// clusterNodes is the inventory the webhook's informer sees in the
// control plane test/cluster starts, as the engine keeps it.
func clusterNodes() map[string]engine.Node {
	out := map[string]engine.Node{}
	for _, n := range cluster.Nodes() {
		out[n.Name] = inventory.Facts(n)
	}
	return out
}

func post(ctx context.Context, client *http.Client, url string, body []byte) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Answer{}, fmt.Errorf("POST %s: %s: %.300s", url, resp.Status, data)
	}
	return ParseAnswer(data)
}

// measure runs one load against s and samples its CPU time and RSS
// during the measured part; onStart (may be nil) is called as it begins.
func (t *tester) measure(ctx context.Context, s *server, reqs []loadgen.Request, rate float64, d time.Duration, onStart ...func()) (Measured, error) {
	var smp *sampler
	var smpErr error
	res, err := loadgen.Run(ctx, loadgen.Options{
		URL: s.url, RootCAs: t.pki.pool, Requests: reqs, Rate: rate, Workers: t.o.Workers,
		Duration: d, Warmup: t.o.Warmup, Check: checkAnswer,
		OnStart: func() {
			smp, smpErr = sample(s.pid())
			for _, f := range onStart {
				f()
			}
		},
	})
	if smp != nil {
		usage, uerr := smp.finish()
		smpErr = cmp.Or(smpErr, uerr)
		if err == nil && smpErr == nil {
			m := Measured{Server: s.name, Mode: res.Mode, Rate: rate, Stats: res.Summary(), Cores: usage.Cores, RSSMax: usage.RSSMax, ErrorsBy: res.ErrorsBy, result: res}
			if len(m.ErrorsBy) == 0 {
				m.ErrorsBy = nil
			}
			if answered := m.Stats.Requests - m.Stats.Errors; answered > 0 {
				m.CPUPerRequest = usage.CPU / time.Duration(answered)
			}
			t.logf("%-8s %-26s %s  cpu/req %s  cores %.2f  rss max %s", s.name, res.Mode, m.Stats, us(m.CPUPerRequest), m.Cores, mib(m.RSSMax))
			return m, nil
		}
	}
	if err != nil {
		return Measured{}, fmt.Errorf("%s: %w", s.name, err)
	}
	return Measured{}, fmt.Errorf("%s: sample resource use: %w", s.name, smpErr)
}

// checkAnswer accepts an AdmissionReview answer: a 200 with a response
// that says whether the object is allowed.
func checkAnswer(_ loadgen.Request, body []byte) error {
	if !bytes.Contains(body, []byte(`"response"`)) || !bytes.Contains(body, []byte(`"allowed"`)) {
		return fmt.Errorf("answer is no AdmissionReview response: %.120s", body)
	}
	return nil
}

// metric reads one unlabelled gauge or counter from the webhook.
// metric reads one metric of the webhook: the sum of its series.
func (t *tester) metric(ctx context.Context, name string) (float64, error) {
	m, err := Scrape(ctx, t.metrics, name)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", t.metrics, err)
	}
	return m[name], nil
}

func (t *tester) waitMetric(ctx context.Context, name string, want float64) error {
	deadline := time.Now().Add(2 * time.Minute)
	var got float64
	var err error
	for time.Now().Before(deadline) {
		if got, err = t.metric(ctx, name); err == nil && got == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s is %v (%v), want %v", name, got, err, want)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func us(d time.Duration) string { return fmt.Sprintf("%.0fus", float64(d)/float64(time.Microsecond)) }
