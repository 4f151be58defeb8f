package audit

import (
	"context"
	"fmt"
	"math"
	"time"

	reportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/metrics"
)

// Judge is the audit's decision on obj of kind k: engine.Decide on the
// object as stored (Kind.Request). `podgate audit` and the audit share it.
func Judge(ctx context.Context, eng *engine.Engine, k Kind, obj client.Object) (*engine.Decision, error) {
	req, err := k.Request(obj)
	if err != nil {
		return nil, err
	}
	return eng.Decide(ctx, req)
}

// judge judges one object and queues the write of its report when it
// changed; an object that is gone or out of scope loses its report.
func (r *run) judge(ctx context.Context, k key) error {
	defer r.judged(k)
	kind, ok := KindOf(k.Kind)
	if !ok {
		r.forget(k) // a report of a kind the audit does not know
		return nil
	}
	obj := kind.New()
	err := r.cache.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		r.forget(k)
		return nil
	case err != nil:
		return err
	case !kind.InScope(obj):
		r.forget(k)
		return nil
	}
	d, err := r.decide(ctx, k, kind, obj)
	if err != nil {
		metrics.AuditEvaluations.WithLabelValues("error").Inc()
		return fmt.Errorf("judge: %w", err)
	}
	metrics.AuditEvaluations.WithLabelValues("ok").Inc()
	var rep *Report
	if d.Skipped == "" {
		var policies []engine.Policy
		if r.a.Options.PassResults {
			policies = r.a.Engine.Policies()
		}
		rep = NewReport(kind, obj, Results(d, policies, r.a.Options.PassResults), r.a.Options.MaxResults, r.a.Options.PassResults)
	}
	r.record(ctx, k, d, rep)
	return nil
}

// decide judges obj: after a Node change, by revalidating the last
// judgement when the engine can (engine.Revalidate), else in full.
func (r *run) decide(ctx context.Context, k key, kind Kind, obj client.Object) (*engine.Decision, error) {
	eng := r.a.Engine
	if r.takeMode(k) == nodes {
		r.mu.Lock()
		var prev *engine.Decision
		if st := r.states[k]; st != nil {
			prev = st.decision
		}
		current := r.fullGen == eng.Generation()
		r.mu.Unlock()
		if current {
			req, err := kind.Request(obj)
			if err != nil {
				return nil, err
			}
			d, ok, err := eng.Revalidate(ctx, req, prev)
			if err != nil || ok {
				return d, err
			}
		}
	}
	return Judge(ctx, eng, kind, obj)
}

// record keeps what a judgement found and queues a write when the report
// the cluster should hold differs from what it holds (or will, once the
// writes queued before are done).
func (r *run) record(ctx context.Context, k key, d *engine.Decision, rep *Report) {
	found := findingsOf(d)
	var stored *reportsv1alpha1.Report
	r.mu.Lock()
	st := r.states[k]
	r.mu.Unlock()
	if st == nil {
		// First sight of k since the audit started: what the cluster holds
		// is in the cache (a report from before a restart or a failover).
		stored = r.cachedReport(ctx, k)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st = r.states[k]; st == nil {
		st = &state{}
		if stored != nil {
			st.hash = storedHash(stored)
		}
	}
	setGauges(st.findings, found)
	st.findings = found
	st.decision = nil
	if len(found) > 0 {
		st.decision = d
	}
	target := st.hash
	if p, ok := r.pending[k]; ok {
		target = p.Hash()
	}
	if want := rep.Hash(); want != target {
		r.pending[k] = rep
		r.writeQ.Add(k)
	}
	r.keep(k, st)
}

// forget drops what the audit knows of k and queues the deletion of its
// report, if it has one.
func (r *run) forget(k key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.states[k]
	if st == nil {
		return
	}
	setGauges(st.findings, nil)
	st.findings, st.decision = nil, nil
	_, writing := r.pending[k]
	if st.hash != "" || writing {
		r.pending[k] = nil
		r.writeQ.Add(k)
	}
	r.keep(k, st)
}

// keep stores st under k while there is something to remember; the
// caller holds r.mu.
func (r *run) keep(k key, st *state) {
	_, writing := r.pending[k]
	if st.hash == "" && len(st.findings) == 0 && !writing {
		delete(r.states, k)
		return
	}
	r.states[k] = st
}

// write applies or deletes k's report, at most WriteQPS writes a second.
func (r *run) write(ctx context.Context, k key) error {
	r.mu.Lock()
	rep, ok := r.pending[k]
	r.mu.Unlock()
	if !ok {
		return nil
	}
	if err := r.limiter.Wait(ctx); err != nil {
		return err
	}
	op := "apply"
	var err error
	if rep == nil {
		op = "delete"
		report := &reportsv1alpha1.Report{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: ReportName(k.Kind, k.Name)}}
		if err = r.client.Delete(ctx, report); apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			err = nil
		}
	} else {
		ac := rep.Apply(r.cachedReport(ctx, k), time.Now())
		err = r.client.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership)
	}
	if err != nil {
		metrics.AuditReportWriteErrors.WithLabelValues(op).Inc()
		return fmt.Errorf("%s report %s/%s: %w", op, k.Namespace, ReportName(k.Kind, k.Name), err)
	}
	metrics.AuditReportWrites.WithLabelValues(op).Inc()
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.pending[k]; ok && cur == rep {
		delete(r.pending, k) // else a newer report is queued: it is written next
	}
	st := r.states[k]
	if st == nil {
		st = &state{}
	}
	st.hash = rep.Hash()
	r.keep(k, st)
	return nil
}

// Hash identifies the report's content; "" for no report (nil).
func (r *Report) Hash() string {
	if r == nil {
		return ""
	}
	return r.hash
}

// findingsOf counts a decision's violations and pending mutations.
func findingsOf(d *engine.Decision) map[finding]int {
	if d.Skipped != "" {
		return nil
	}
	var out map[finding]int
	add := func(f finding) {
		if out == nil {
			out = map[finding]int{}
		}
		out[f]++
	}
	for _, v := range d.Violations {
		e := string(v.Enforcement)
		if v.Exception != nil {
			e = "excepted"
		}
		add(finding{v.Policy, v.Rule, e})
	}
	for _, m := range d.Changes() {
		add(finding{m.Policy, MutationRule, ""})
	}
	return out
}

// setGauges moves the audit's gauges from one object's old findings to
// its new ones.
func setGauges(old, cur map[finding]int) {
	for f, n := range old {
		gauge(f).Sub(float64(n))
	}
	for f, n := range cur {
		gauge(f).Add(float64(n))
	}
}

func gauge(f finding) prometheus.Gauge {
	if f.rule == MutationRule && f.enforcement == "" {
		return metrics.AuditMutations.WithLabelValues(f.policy)
	}
	return metrics.AuditViolations.WithLabelValues(f.policy, f.rule, f.enforcement)
}

// writeLimiter allows qps writes a second, in bursts of up to a second's
// worth; qps <= 0 means no limit.
func writeLimiter(qps float64) *rate.Limiter {
	if qps <= 0 {
		return rate.NewLimiter(rate.Inf, 1)
	}
	return rate.NewLimiter(rate.Limit(qps), int(math.Max(1, qps)))
}

// Items are the objects of a typed list.
func Items(list client.ObjectList) []client.Object {
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil
	}
	out := make([]client.Object, 0, len(items))
	for _, it := range items {
		if o, ok := it.(client.Object); ok {
			out = append(out, o)
		}
	}
	return out
}
