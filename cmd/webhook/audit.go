package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/podgate/podgate/audit"
	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/metrics"
)

// inClusterNamespace is where a pod finds its own namespace.
const inClusterNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// AuditOptions are the background audit's flags.
type AuditOptions struct {
	Enabled bool
	audit.Options
	LeaderElect bool
}

func newAuditOptions() AuditOptions {
	return AuditOptions{
		Options: audit.Options{
			Interval:   audit.DefaultInterval,
			MaxResults: audit.DefaultMaxResults,
			WriteQPS:   audit.DefaultWriteQPS,
		},
		LeaderElect: true,
	}
}

// AddFlags binds the audit's flags to fs.
func (o *AuditOptions) AddFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.Enabled, "audit", o.Enabled, "Judge the workloads already in the cluster and write OpenReports Reports of what they break (docs/audit.md).")
	fs.DurationVar(&o.Interval, "audit-interval", o.Interval, "Time between two full rescans of every workload; changes are judged as they happen.")
	fs.IntVar(&o.MaxResults, "audit-max-results", o.MaxResults, "Most results one report holds (failures first); 0 for no limit.")
	fs.Float64Var(&o.WriteQPS, "audit-write-qps", o.WriteQPS, "Most report writes (apply or delete) per second to the API server; 0 for no limit.")
	fs.BoolVar(&o.PassResults, "audit-pass-results", o.PassResults, "Also store a pass result for each policy a workload passes (every workload then has a report).")
	fs.IntVar(&o.Workers, "audit-workers", o.Workers, "Workloads judged in parallel; 0 means half the CPUs, leaving the rest to admission.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "With --audit, audit only on the replica that holds the lease "+audit.LeaseName+"; every replica serves admission.")
	fs.StringVar(&o.LeaseNamespace, "leader-election-namespace", o.LeaseNamespace, "Namespace of the audit lease; default the pod's own namespace, or the kubeconfig context's out of the cluster.")
}

// Validate reports the bad audit flags.
func (o *AuditOptions) Validate() error {
	var errs []error
	if o.Interval < time.Minute {
		errs = append(errs, fmt.Errorf("--audit-interval %s: want at least 1m (changes are judged as they happen; the rescan is a safety net)", o.Interval))
	}
	if o.MaxResults < 0 {
		errs = append(errs, fmt.Errorf("--audit-max-results %d: want 0 (no limit) or more", o.MaxResults))
	}
	if o.WriteQPS < 0 {
		errs = append(errs, fmt.Errorf("--audit-write-qps %g: want 0 (no limit) or more", o.WriteQPS))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("--audit-workers %d: want 0 (half the CPUs) or more", o.Workers))
	}
	return errors.Join(errs...)
}

// addAudit adds the audit to the manager when --audit is set.
func addAudit(mgr manager.Manager, eng *engine.Engine, cfg *rest.Config, o AuditOptions, log logr.Logger) (*audit.Auditor, error) {
	if !o.Enabled {
		return nil, nil
	}
	opts := o.Options
	opts.LeaderElection = o.LeaderElect
	if opts.LeaderElection && opts.LeaseNamespace == "" {
		opts.LeaseNamespace = ownNamespace()
	}
	metrics.AuditInterval.Set(opts.Interval.Seconds())
	a := &audit.Auditor{Engine: eng, Config: cfg, Options: opts, Log: log}
	return a, mgr.Add(a)
}

// ownNamespace is the pod's namespace in the cluster, else the namespace of
// the kubeconfig's current context ("default" when it names none).
func ownNamespace() string {
	if raw, err := os.ReadFile(inClusterNamespace); err == nil && strings.TrimSpace(string(raw)) != "" {
		return strings.TrimSpace(string(raw))
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if f := flag.Lookup(config.KubeconfigFlagName); f != nil && f.Value.String() != "" {
		rules.ExplicitPath = f.Value.String()
	}
	ns, _, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return ns
}
