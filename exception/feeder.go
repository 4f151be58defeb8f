package exception

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/podgate/podgate/api/v1alpha1"
	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/health"
)

// crdRetry is how often the Feeder looks for the CRD while it is missing.
const crdRetry = 10 * time.Second

// Feeder keeps the engine's exceptions in step with the cluster's
// PolicyExceptions, through an informer; it sets the list again when one
// expires, so that what was judged with it (the audit's reports) is judged
// again. While the CRD is not installed the webhook serves without
// exceptions and Condition says so. It is a manager Runnable.
type Feeder struct {
	Cache  cache.Cache
	Mapper meta.RESTMapper
	Engine *engine.Engine
	Log    logr.Logger

	condition health.Condition
}

// NeedLeaderElection is false: every replica admits, so every replica
// needs the exceptions.
func (f *Feeder) NeedLeaderElection() bool { return false }

// Condition says why no exception applies, or "".
func (f *Feeder) Condition() string { return f.condition.Get() }

// Start feeds the engine until ctx ends.
func (f *Feeder) Start(ctx context.Context) error {
	if !f.waitForCRD(ctx) {
		return nil
	}
	inf, err := f.Cache.GetInformer(ctx, &v1alpha1.PolicyException{})
	if err != nil {
		return fmt.Errorf("watch PolicyExceptions: %w", err)
	}
	dirty := make(chan struct{}, 1)
	mark := func(any) {
		select {
		case dirty <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: mark, DeleteFunc: mark, UpdateFunc: func(_, cur any) { mark(cur) },
	}); err != nil {
		return err
	}
	if !f.Cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("PolicyException cache did not sync")
	}
	f.condition.Set("")
	f.Log.Info("PolicyExceptions are watched")
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	for {
		next := f.rebuild(ctx)
		expiry.Reset(next)
		select {
		case <-ctx.Done():
			return nil
		case <-dirty:
		case <-expiry.C:
		}
	}
}

// waitForCRD waits until the API server serves PolicyExceptions; false
// when ctx ended first.
func (f *Feeder) waitForCRD(ctx context.Context) bool {
	logged := false
	for {
		_, err := f.Mapper.RESTMapping(GroupKind, v1alpha1.GroupVersion.Version)
		if err == nil {
			return true
		}
		c := fmt.Sprintf("the PolicyException CRD (%s/%s) is not installed: no exception applies (the chart installs it from charts/podgate/crds)",
			v1alpha1.GroupVersion.Group, v1alpha1.GroupVersion.Version)
		f.condition.Set(c)
		if !logged {
			f.Log.Info(c + "; looking for it every " + crdRetry.String())
			logged = true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(crdRetry):
		}
	}
}

// rebuild sets the engine's exceptions from the cache and returns how long
// until the next one expires (an hour when none does sooner).
func (f *Feeder) rebuild(ctx context.Context) time.Duration {
	var list v1alpha1.PolicyExceptionList
	if err := f.Cache.List(ctx, &list); err != nil {
		f.Log.Error(err, "list PolicyExceptions; the last list keeps applying")
		return crdRetry
	}
	now := time.Now()
	next := time.Hour
	out := make([]engine.Exception, 0, len(list.Items))
	for i := range list.Items {
		ex, err := FromObject(&list.Items[i])
		if err != nil {
			f.Log.Error(err, "PolicyException ignored")
			continue
		}
		if !ex.Expires.IsZero() && ex.Expires.After(now) {
			// A moment after it expires, so that the engine sees it expired.
			next = min(next, ex.Expires.Sub(now)+10*time.Millisecond)
		}
		out = append(out, ex)
	}
	f.Engine.SetExceptions(out)
	return next
}
