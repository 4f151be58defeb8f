// Package audit judges the workloads already in the cluster with the same
// decisions as admission (engine.Decide) and writes what it finds as
// OpenReports Reports, one per workload with a finding, in the workload's
// namespace and owned by it. It re-judges a workload when it changes, when
// the policy set or config reloads, when the Node inventory changes, and in
// a full rescan every Options.Interval.
//
// Exactly one replica audits: the audit runs in a manager of its own that
// campaigns for a lease (controller-runtime leader election), so every
// replica serves admission and losing the lease stops only the audit,
// which then campaigns again.
package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/go-logr/logr"
	reportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/health"
)

// Defaults, each with its reason.
const (
	// DefaultInterval is the full rescan: a safety net for anything a
	// watch missed; changes are judged as they happen.
	DefaultInterval = time.Hour
	// DefaultMaxResults bounds one report (Kyverno's reports once filled
	// etcd): far more than one workload breaks in practice.
	DefaultMaxResults = 50
	// DefaultWriteQPS bounds the audit's report writes to the API server,
	// so a first audit or a policy change that touches thousands of
	// workloads trickles in instead of flooding etcd: 50 writes a second
	// are a few percent of what one API server takes, and write the
	// reports of 1,000 broken workloads in 20 seconds.
	DefaultWriteQPS = 50
	// LeaseName is the Lease the audit replicas campaign for.
	LeaseName = "podgate-audit"
	// retryDelay is how long a replica waits before campaigning again
	// after it lost the lease or failed to start the audit.
	retryDelay = 5 * time.Second
	// settle gathers the burst of changes a policy reload or a Node pool
	// change makes into one rescan.
	settle = time.Second
)

// Options are the audit's settings.
type Options struct {
	// Interval is the time between two full rescans.
	Interval time.Duration
	// MaxResults bounds the results of one report; 0 for no bound.
	MaxResults int
	// WriteQPS bounds report writes (apply and delete) per second.
	WriteQPS float64
	// PassResults keeps a pass result for each policy an object passes.
	PassResults bool
	// Workers judge objects in parallel; 0 means half the CPUs (at least
	// one), leaving the rest to admission, which shares the process.
	Workers int
	// LeaderElection makes replicas campaign for the audit lease; off, the
	// process audits alone.
	LeaderElection bool
	// LeaseNamespace is where the lease lives.
	LeaseNamespace string
}

// Auditor is the audit, as a runnable of the webhook's manager that runs on
// every replica and audits on the one that holds the lease.
type Auditor struct {
	Engine  *engine.Engine
	Config  *rest.Config
	Options Options
	Log     logr.Logger

	condition health.Condition // why the audit does not run, for /readyz
}

// NeedLeaderElection is false: every replica campaigns for the audit's own
// lease (see Start); the webhook's manager elects nobody.
func (a *Auditor) NeedLeaderElection() bool { return false }

// Start campaigns for the lease and audits while it holds it, until ctx
// ends. A lost lease or a failed start (the Report CRD not installed, the
// API server unreachable) is logged and retried.
func (a *Auditor) Start(ctx context.Context) error {
	for {
		err := a.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		a.condition.Set(fmt.Sprintf("audit stopped at %s, retrying: %v", time.Now().UTC().Format(time.RFC3339), err))
		a.Log.Error(err, "audit stopped; campaigning again", "retryIn", retryDelay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retryDelay):
		}
	}
}

// Condition says why the audit failed to run and is retrying, or "":
// /readyz shows it without failing (admission is unaffected).
func (a *Auditor) Condition() string { return a.condition.Get() }

// runOnce builds a manager that campaigns for the lease and, once elected,
// runs the audit; it returns when the lease is lost or ctx ends.
func (a *Auditor) runOnce(ctx context.Context) error {
	hc, err := rest.HTTPClientFor(a.Config)
	if err != nil {
		return err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(a.Config, hc)
	if err != nil {
		return fmt.Errorf("discover the API: %w", err)
	}
	// Checked first: the manager's cache cannot even be made without it.
	if err := reportsServed(mapper); err != nil {
		return err
	}
	scheme := kruntime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), reportsv1alpha1.Install(scheme)); err != nil {
		return err
	}
	byObject := map[client.Object]cache.ByObject{
		&reportsv1alpha1.Report{}: {Label: labels.SelectorFromSet(labels.Set{managedByKey: managedByValue})},
	}
	for _, k := range Kinds {
		byObject[k.New()] = cache.ByObject{Transform: Transform}
	}
	mgr, err := ctrl.NewManager(a.Config, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        a.Log,
		Metrics:                       metricsserver.Options{BindAddress: "0"}, // the webhook's manager serves them
		HealthProbeBindAddress:        "0",
		LeaderElection:                a.Options.LeaderElection,
		LeaderElectionID:              LeaseName,
		LeaderElectionNamespace:       a.Options.LeaseNamespace,
		LeaderElectionReleaseOnCancel: true, // a replica that stops hands over at once
		Cache: cache.Options{
			ByObject:         byObject,
			DefaultTransform: cache.TransformStripManagedFields(),
		},
	})
	if err != nil {
		return fmt.Errorf("audit manager: %w", err)
	}
	workers := a.Options.Workers
	if workers <= 0 {
		workers = max(1, runtime.GOMAXPROCS(0)/2)
	}
	r := newRun(a, mgr.GetCache(), mgr.GetClient(), workers)
	if err := mgr.Add(r); err != nil {
		return err
	}
	// A replica waiting for the lease is as it should be: the condition
	// is cleared (podgate_audit_leader says which replica audits).
	a.condition.Set("")
	return mgr.Start(ctx)
}

// reportsServed checks that the API server serves the Report kind.
func reportsServed(mapper meta.RESTMapper) error {
	gk := schema.GroupKind{Group: reportsv1alpha1.GroupName, Kind: "Report"}
	if _, err := mapper.RESTMapping(gk, reportsv1alpha1.SchemeGroupVersion.Version); err != nil {
		return fmt.Errorf("the %s/%s Report CRD is not installed (the chart installs it unless audit.installReportCRD is false): %w",
			reportsv1alpha1.GroupName, reportsv1alpha1.SchemeGroupVersion.Version, err)
	}
	return nil
}
