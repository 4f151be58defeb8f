package load

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/podgate/podgate/test/bench"
	"github.com/podgate/podgate/test/cluster"
)

// The scenarios of a load test run, in the order Run runs them (see
// docs/performance.md, "make loadtest").

// decisions sends each /validate payload once to each server: the
// comparison means something only if both decide alike.
func (t *tester) decisions(ctx context.Context, rep *Report, _ *cluster.Cluster) error {
	client := t.pki.client()
	for i, r := range t.validate {
		pg, err := post(ctx, client, t.webhook.url+r.Path, r.Body)
		if err != nil {
			return err
		}
		op, err := post(ctx, client, t.opa.url+"/", r.Body)
		if err != nil {
			return err
		}
		same := pg.Allowed == op.Allowed && pg.Code == op.Code && pg.Message == op.Message &&
			strings.Join(pg.Warnings, "\n") == strings.Join(op.Warnings, "\n")
		rep.Decisions = append(rep.Decisions, Decision{Request: t.validate[i].Name, Podgate: pg.Summary(), OPA: op.Summary(), Same: same})
		if !same {
			t.logf("%s: podgate and OPA decide differently:\n  podgate %+v\n  OPA     %+v", r.Name, pg, op)
		}
	}
	return nil
}

func (t *tester) idle(_ context.Context, rep *Report, _ *cluster.Cluster) error {
	for _, s := range []*server{t.webhook, t.opa} {
		u, err := ReadUsage(s.pid())
		if err != nil {
			return err
		}
		rep.IdleRSS[s.name] = u.RSS
	}
	t.logf("idle RSS: webhook %s, OPA %s", mib(rep.IdleRSS["webhook"]), mib(rep.IdleRSS["opa"]))
	return nil
}

// compare measures both servers' maximum throughput on /validate, then
// both at a quarter, half and three quarters of OPA's maximum, and at the
// sustained rate if OPA keeps up with it.
func (t *tester) compare(ctx context.Context, rep *Report, _ *cluster.Cluster) error {
	t.logf("podgate and OPA, same /validate payloads, %s per run", t.o.Step)
	var err error
	if rep.MaxThroughput.Podgate, err = t.measure(ctx, t.webhook, t.validate, 0, t.o.Step); err != nil {
		return err
	}
	if rep.MaxThroughput.OPA, err = t.measure(ctx, t.opa, t.opaReqs, 0, t.o.Step); err != nil {
		return err
	}
	opaMax := rep.MaxThroughput.OPA.Stats.Throughput
	var rates []float64
	for _, f := range []float64{0.25, 0.5, 0.75} {
		rates = append(rates, math.Max(10, math.Round(opaMax*f/10)*10))
	}
	if t.o.Rate < 0.9*opaMax {
		rates = append(rates, t.o.Rate)
	}
	for _, rate := range rates {
		p := Pair{Rate: rate}
		if p.Podgate, err = t.measure(ctx, t.webhook, t.validate, rate, t.o.Step); err != nil {
			return err
		}
		if p.OPA, err = t.measure(ctx, t.opa, t.opaReqs, rate, t.o.Step); err != nil {
			return err
		}
		rep.Rates = append(rep.Rates, p)
	}
	return nil
}

// maxMix measures the webhook's maximum throughput on the mix of both
// webhooks' requests, then its latency at a quarter, half and three
// quarters of it: the rates it sustains within a latency budget.
func (t *tester) maxMix(ctx context.Context, rep *Report, _ *cluster.Cluster) error {
	var err error
	if rep.MaxMix, err = t.measure(ctx, t.webhook, t.mix, 0, t.o.Step); err != nil {
		return err
	}
	for _, f := range []float64{0.25, 0.5, 0.75} {
		rate := math.Max(10, math.Round(rep.MaxMix.Stats.Throughput*f/10)*10)
		m, err := t.measure(ctx, t.webhook, t.mix, rate, t.o.Step)
		if err != nil {
			return err
		}
		rep.MixRates = append(rep.MixRates, m)
	}
	return nil
}

// belowMax is rate, or fraction of the webhook's maximum throughput on the
// mix when that is less: a run meant to measure something else (a reload,
// memory) must not measure an overloaded webhook's queue instead. Near
// saturation an open loop also opens more connections, whose handshakes
// take more CPU still, and the load generator and the machine's other work
// share the two cores.
func belowMax(rate, fraction float64, rep *Report) float64 {
	if limit := math.Round(fraction*rep.MaxMix.Stats.Throughput/10) * 10; limit > 0 && limit < rate {
		return limit
	}
	return rate
}

// reload writes a custom policy into the webhook's policy directory at a
// third of the run and another at two thirds, under load.
func (t *tester) reload(ctx context.Context, rep *Report, _ *cluster.Cluster) error {
	d := max(t.o.Step, 9*time.Second)
	// Half the maximum: the reload's compilation takes a core for a moment,
	// and the question is what it does to requests, not to a queue.
	rate := belowMax(t.o.ReloadRate, 0.5, rep)
	t.logf("podgate at %g/s for %s, two policy reloads", rate, d)
	before, err := t.metric(ctx, "podgate_policy_set_generation")
	if err != nil {
		return err
	}
	custom := bench.CustomPolicies(2)
	var mu sync.Mutex
	var writes []time.Time
	var writeErr error
	var timers []*time.Timer
	startWrites := func() {
		for i, name := range []string{"custom_000.rego", "custom_001.rego"} {
			timers = append(timers, time.AfterFunc(d*time.Duration(i+1)/3, func() {
				mu.Lock()
				defer mu.Unlock()
				writes = append(writes, time.Now())
				if err := os.WriteFile(filepath.Join(t.policies, name), []byte(custom[name]), 0o644); err != nil {
					writeErr = err
				}
			}))
		}
	}
	m, err := t.measure(ctx, t.webhook, t.mix, rate, d, startWrites)
	for _, tm := range timers {
		tm.Stop()
	}
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if writeErr != nil {
		return writeErr
	}
	time.Sleep(time.Second) // a reload still under way finishes
	after, err := t.metric(ctx, "podgate_policy_set_generation")
	if err != nil {
		return err
	}
	run := &ReloadRun{Measured: m, Reloads: int(after - before)}
	for _, w := range writes {
		from := w.Sub(m.result.Started)
		st := m.result.Window(from, from+2*time.Second)
		run.Windows = append(run.Windows, st)
		t.logf("  2s after a policy change: %s", st)
	}
	t.logf("  policy set generations %v -> %v", before, after)
	rep.Reload = run
	// Back to the built-in policies only.
	for name := range custom {
		_ = os.Remove(filepath.Join(t.policies, name))
	}
	return t.waitMetric(ctx, "podgate_policy_set_generation", after+1)
}

// inventory adds Nodes to the cluster, waits until the webhook's
// inventory has them all, and runs at NodesRate.
func (t *tester) inventory(ctx context.Context, rep *Report, c *cluster.Cluster) error {
	if t.o.Nodes == 0 {
		return nil
	}
	t.logf("adding %d Nodes", t.o.Nodes)
	start := time.Now()
	nodes := bench.NodeObjects(t.o.Nodes)
	work := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := c.Client().Create(ctx, nodes[i]); err != nil {
					select {
					case errs <- fmt.Errorf("create node %s: %w", nodes[i].Name, err):
					default:
					}
				}
			}
		}()
	}
	for i := range nodes {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	want := float64(t.o.Nodes + len(cluster.Nodes()))
	if err := t.waitMetric(ctx, "podgate_inventory_nodes", want); err != nil {
		return err
	}
	t.logf("  %d Nodes created and in the webhook's inventory in %s", t.o.Nodes, time.Since(start).Round(100*time.Millisecond))
	idle, err := sample(t.webhook.pid())
	if err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	idleUse, err := idle.finish()
	if err != nil {
		return err
	}
	u, err := ReadUsage(t.webhook.pid())
	if err != nil {
		return err
	}
	t.logf("  idle with %d Nodes: %.2f cores, RSS %s", int(want), idleUse.Cores, mib(u.RSS))
	m, err := t.measure(ctx, t.webhook, t.mix, belowMax(t.o.NodesRate, 0.8, rep), t.o.Step)
	if err != nil {
		return err
	}
	rep.Inventory = &NodesRun{Measured: m, Nodes: int(want), IdleRSS: u.RSS, IdleCores: idleUse.Cores}
	time.Sleep(2 * time.Second)
	if u, err := ReadUsage(t.webhook.pid()); err == nil {
		rep.IdleRSSAfter = u.RSS
	}
	return nil
}

// sustained is the run at Rate for Duration, last: an overload there
// weighs on no other figure.
func (t *tester) sustained(ctx context.Context, rep *Report, _ *cluster.Cluster) error {
	t.logf("podgate, /validate and /mutate of each object, %g/s for %s", t.o.Rate, t.o.Duration)
	var err error
	rep.Sustained, err = t.measure(ctx, t.webhook, t.mix, t.o.Rate, t.o.Duration)
	return err
}
