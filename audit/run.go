package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	reportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/metrics"
)

// writers apply and delete reports; the write rate limit, not their number,
// bounds how fast that goes.
const writers = 2

// key names an audited object.
type key struct{ Kind, Namespace, Name string }

func keyOf(kind string, obj client.Object) key {
	return key{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// finding is one series of the audit's gauges.
type finding struct{ policy, rule, enforcement string }

// state is what the audit knows of one object with a finding or a report.
type state struct {
	hash     string           // the stored report's content (hashOf); "" when none is stored
	findings map[finding]int  // what the last judgement found, for the gauges
	decision *engine.Decision // the last judgement, when it found anything (for Revalidate)
}

// mode is how a queued object is judged.
type mode int

const (
	// full judges with engine.Decide.
	full mode = iota
	// nodes judges after a Node change: only the policies that read the
	// inventory are evaluated again (engine.Revalidate), the rest of the
	// last judgement is kept.
	nodes
)

// run is the audit on the replica that holds the lease: it judges objects
// from the cache in workers and writes reports through a rate-limited
// queue. Only what has a finding or a report is kept in memory.
type run struct {
	a       *Auditor
	cache   cache.Cache
	client  client.Client
	workers int

	judgeQ  workqueue.TypedRateLimitingInterface[key]
	writeQ  workqueue.TypedRateLimitingInterface[key]
	limiter *rate.Limiter

	mu      sync.Mutex
	states  map[key]*state
	pending map[key]*Report // reports to write; a nil report is a delete
	modes   map[key]mode    // how queued objects are judged; full when absent
	scan    *scan           // the scan in progress, if any
	// fullGen is the policy set the last full scan started with: an object
	// with no state was found clean under it (or judged since).
	fullGen int64
}

// scan is a pass over every object: it is complete when each object it
// listed was judged once.
type scan struct {
	reason  string
	started time.Time
	left    map[key]bool
}

func newRun(a *Auditor, c cache.Cache, cl client.Client, workers int) *run {
	return &run{
		a: a, cache: c, client: cl, workers: workers,
		judgeQ: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[key](),
			workqueue.TypedRateLimitingQueueConfig[key]{Name: "podgate_audit"}),
		writeQ: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[key](),
			workqueue.TypedRateLimitingQueueConfig[key]{Name: "podgate_audit_reports"}),
		limiter: writeLimiter(a.Options.WriteQPS),
		states:  map[key]*state{},
		pending: map[key]*Report{},
		modes:   map[key]mode{},
	}
}

// Start audits until ctx ends (the lease is lost or the process stops).
func (r *run) Start(ctx context.Context) error {
	log := r.a.Log
	if err := r.waitForEngine(ctx); err != nil {
		return nil // ctx ended
	}
	if err := r.watch(ctx); err != nil {
		return err
	}
	if !r.cache.WaitForCacheSync(ctx) {
		return errors.New("audit cache did not sync")
	}
	metrics.AuditLeader.Set(1)
	defer metrics.AuditLeader.Set(0)
	defer r.clearGauges()
	r.a.condition.Set("")
	log.Info("auditing", "workers", r.workers, "interval", r.a.Options.Interval, "writeQPS", r.a.Options.WriteQPS)
	var wg sync.WaitGroup
	for range r.workers {
		wg.Go(func() { r.work(ctx, r.judgeQ, r.judge) })
	}
	for range writers {
		wg.Go(func() { r.work(ctx, r.writeQ, r.write) })
	}
	err := r.loop(ctx)
	r.judgeQ.ShutDown()
	r.writeQ.ShutDown()
	wg.Wait()
	return err
}

// loop starts a scan at once, at every change of the policy set or the
// Node inventory, and every Interval.
func (r *run) loop(ctx context.Context) error {
	eng := r.a.Engine
	policies, inventory, exceptions := eng.Generation(), eng.NodesGeneration(), eng.ExceptionsGeneration()
	if err := r.startScan(ctx, "start", full); err != nil {
		return err
	}
	ticker := time.NewTicker(r.a.Options.Interval)
	defer ticker.Stop()
	for {
		changed := eng.Changed()
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if err := r.startScan(ctx, "interval", full); err != nil {
				r.a.Log.Error(err, "audit scan failed")
			}
			continue
		case <-changed:
		}
		// Let the burst settle: a reload or a Node pool change is several
		// changes in a row.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(settle):
		}
		var err error
		switch p, n, x := eng.Generation(), eng.NodesGeneration(), eng.ExceptionsGeneration(); {
		case p != policies:
			err = r.startScan(ctx, "policy set reloaded", full)
		case n != inventory && x != exceptions:
			err = r.startScan(ctx, "node inventory and exceptions changed", full)
		case n != inventory:
			err = r.startScan(ctx, "node inventory changed", nodes)
		case x != exceptions:
			// An exception only changes what a violation is reported as:
			// only objects with findings can change.
			r.rejudgeFindings()
		}
		if err != nil {
			r.a.Log.Error(err, "audit scan failed")
		}
		policies, inventory, exceptions = eng.Generation(), eng.NodesGeneration(), eng.ExceptionsGeneration()
	}
}

func (r *run) waitForEngine(ctx context.Context) error {
	// The inventory is set once the webhook's Node informer synced: judging
	// earlier would report every workload against an empty inventory.
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		return r.a.Engine.Ready() && r.a.Engine.NodesGeneration() > 0, nil
	})
}

// watch wires the informers: a change of an audited object is judged; a
// report changed or deleted by someone else is written again.
func (r *run) watch(ctx context.Context) error {
	for _, k := range Kinds {
		inf, err := r.cache.GetInformer(ctx, k.New())
		if err != nil {
			return fmt.Errorf("watch %s: %w", k.GVK.Kind, err)
		}
		if _, err := inf.AddEventHandler(r.objectHandler(k)); err != nil {
			return err
		}
	}
	inf, err := r.cache.GetInformer(ctx, &reportsv1alpha1.Report{})
	if err != nil {
		return fmt.Errorf("watch reports: %w", err)
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, cur any) { r.reportChanged(cur, false) },
		DeleteFunc: func(obj any) { r.reportChanged(obj, true) },
	})
	return err
}

func (r *run) objectHandler(k Kind) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			// The first scan judges what the initial list brings.
			if o, ok := obj.(client.Object); ok && !initial && k.InScope(o) {
				r.enqueue(keyOf(k.GVK.Kind, o), full)
			}
		},
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(client.Object)
			c, ok2 := cur.(client.Object)
			if !ok1 || !ok2 || sameContent(o, c) {
				return
			}
			if k.InScope(c) || r.known(keyOf(k.GVK.Kind, c)) {
				r.enqueue(keyOf(k.GVK.Kind, c), full)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if o, ok := obj.(client.Object); ok && r.known(keyOf(k.GVK.Kind, o)) {
				r.enqueue(keyOf(k.GVK.Kind, o), full)
			}
		},
	}
}

// reportChanged re-judges the object of a report that changed to other
// content than the audit wrote, or was deleted, by someone else.
func (r *run) reportChanged(obj any, deleted bool) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	rep, ok := obj.(*reportsv1alpha1.Report)
	if !ok || rep.Scope == nil {
		return
	}
	k := key{Kind: rep.Scope.Kind, Namespace: rep.Namespace, Name: rep.Scope.Name}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.states[k]
	if st == nil {
		return
	}
	if deleted {
		st.hash = ""
	} else if h := storedHash(rep); h != st.hash {
		st.hash = h
	} else {
		return // the audit's own write
	}
	r.modes[k] = full
	r.judgeQ.Add(k)
}

// enqueue queues k to be judged in mode m; a full judgement wins over a
// lighter one already queued.
func (r *run) enqueue(k key, m mode) {
	r.mu.Lock()
	if cur, queued := r.modes[k]; !queued || m < cur {
		r.modes[k] = m
	}
	r.mu.Unlock()
	r.judgeQ.Add(k)
}

// takeMode is how k is to be judged now.
func (r *run) takeMode(k key) mode {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.modes[k]
	delete(r.modes, k)
	return m
}

func (r *run) known(k key) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.states[k] != nil
}

// work runs f on q's keys until q shuts down; a failed key is retried
// with backoff.
func (r *run) work(ctx context.Context, q workqueue.TypedRateLimitingInterface[key], f func(context.Context, key) error) {
	for {
		k, shutdown := q.Get()
		if shutdown {
			return
		}
		if err := f(ctx, k); err != nil && ctx.Err() == nil {
			r.a.Log.Error(err, "audit", "kind", k.Kind, "namespace", k.Namespace, "name", k.Name)
			q.AddRateLimited(k)
		} else {
			q.Forget(k)
		}
		q.Done(k)
	}
}

// startScan queues every audited object, and every object the audit has
// a report of (a report whose object is gone is deleted), to be judged in
// mode m.
func (r *run) startScan(ctx context.Context, reason string, m mode) error {
	keys := map[key]bool{}
	for _, k := range Kinds {
		list := k.NewList()
		if err := r.cache.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
			return fmt.Errorf("list %s: %w", k.GVK.Kind, err)
		}
		n := 0
		for _, o := range Items(list) {
			if k.InScope(o) {
				keys[keyOf(k.GVK.Kind, o)] = true
				n++
			}
		}
		metrics.AuditObjects.WithLabelValues(k.GVK.Kind).Set(float64(n))
	}
	var reports reportsv1alpha1.ReportList
	if err := r.cache.List(ctx, &reports, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("list reports: %w", err)
	}
	r.mu.Lock()
	for i := range reports.Items {
		rep := &reports.Items[i]
		if rep.Scope == nil {
			continue
		}
		k := key{Kind: rep.Scope.Kind, Namespace: rep.Namespace, Name: rep.Scope.Name}
		if !keys[k] && r.states[k] == nil {
			r.states[k] = &state{hash: storedHash(rep)}
		}
		keys[k] = true
	}
	if r.scan == nil {
		r.scan = &scan{reason: reason, started: time.Now(), left: map[key]bool{}}
	}
	if m == full {
		r.fullGen = r.a.Engine.Generation()
	}
	for k := range keys {
		r.scan.left[k] = true
		if cur, queued := r.modes[k]; !queued || m < cur {
			r.modes[k] = m
		}
	}
	r.mu.Unlock()
	r.a.Log.V(1).Info("audit scan started", "reason", reason, "objects", len(keys))
	for k := range keys {
		r.judgeQ.Add(k)
	}
	r.judged(key{}) // an empty scan is complete at once
	return nil
}

// rejudgeFindings queues, in full, every object with a finding.
func (r *run) rejudgeFindings() {
	r.mu.Lock()
	keys := make([]key, 0, len(r.states))
	for k, st := range r.states {
		if len(st.findings) > 0 {
			keys = append(keys, k)
			r.modes[k] = full
		}
	}
	r.mu.Unlock()
	r.a.Log.V(1).Info("exceptions changed: judging again what has findings", "objects", len(keys))
	for _, k := range keys {
		r.judgeQ.Add(k)
	}
}

// judged marks k judged for the scan in progress, and completes the scan
// when it was the last.
func (r *run) judged(k key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.scan
	if s == nil {
		return
	}
	delete(s.left, k)
	if len(s.left) > 0 {
		return
	}
	r.scan = nil
	took := time.Since(s.started)
	metrics.AuditScanDuration.Set(took.Seconds())
	metrics.AuditLastScan.SetToCurrentTime()
	r.a.Log.Info("audit scan complete", "reason", s.reason, "took", took.Round(time.Millisecond).String(),
		"withFindings", len(r.states), "writesPending", len(r.pending))
}

func (r *run) clearGauges() {
	metrics.AuditViolations.Reset()
	metrics.AuditMutations.Reset()
	metrics.AuditObjects.Reset()
}

// cachedReport is the stored report of k, or nil.
func (r *run) cachedReport(ctx context.Context, k key) *reportsv1alpha1.Report {
	var rep reportsv1alpha1.Report
	err := r.cache.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: ReportName(k.Kind, k.Name)}, &rep)
	if err != nil {
		if !apierrors.IsNotFound(err) {
			r.a.Log.Error(err, "read report", "namespace", k.Namespace, "name", ReportName(k.Kind, k.Name))
		}
		return nil
	}
	return &rep
}
