// Package metrics defines podgate's Prometheus metrics. They are registered
// in controller-runtime's registry, which the manager serves on the metrics
// port next to controller-runtime's own webhook and client metrics.
package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Decisions, as the decision label says them.
const (
	Allowed = "allowed" // admitted, nothing to say
	Warned  = "warned"  // admitted with warnings
	Denied  = "denied"  // rejected by a deny rule
	Mutated = "mutated" // admitted with a patch
	Skipped = "skipped" // out of scope (excluded namespace, controlled pod, unchanged template...)
	Errored = "error"   // bad request or internal failure
)

// Latency buckets from 100us to 10s: admission is expected in the
// sub-millisecond range and the API server gives up after timeoutSeconds.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 12)

var (
	// Requests counts admission requests by webhook, operation, kind and decision.
	Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "podgate_admission_requests_total",
		Help: "Admission requests by webhook (mutate, validate), operation, kind and decision.",
	}, []string{"webhook", "operation", "kind", "decision"})

	// Latency is the time from request decoded to response ready.
	Latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "podgate_admission_duration_seconds",
		Help:    "Time to answer an admission request, by webhook.",
		Buckets: latencyBuckets,
	}, []string{"webhook"})

	// Violations counts reported violations by policy, rule and enforcement.
	Violations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "podgate_violations_total",
		Help: "Policy violations found, by policy, rule and enforcement (deny, warn, dryrun).",
	}, []string{"policy", "rule", "enforcement"})

	// Excepted counts violations a PolicyException turned into warnings.
	Excepted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "podgate_excepted_violations_total",
		Help: "Violations admitted because a PolicyException covers them, by policy and rule.",
	}, []string{"policy", "rule"})

	// Evaluation is the time spent in Rego evaluation alone.
	Evaluation = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "podgate_policy_evaluation_duration_seconds",
		Help:    "Time spent evaluating the policy set for one request, by webhook.",
		Buckets: latencyBuckets,
	}, []string{"webhook"})

	// PolicyGeneration counts the policy sets loaded since start.
	PolicyGeneration = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "podgate_policy_set_generation",
		Help: "How many policy sets were loaded since the process started.",
	})

	// PolicySetInfo is 1 for the hash of the policy set being served.
	PolicySetInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "podgate_policy_set_info",
		Help: "The policy set being served: 1 for its hash (of the policy files and config).",
	}, []string{"hash"})

	// ReloadErrors counts policy or config changes that were rejected.
	ReloadErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "podgate_policy_reload_errors_total",
		Help: "Policy or config changes rejected because they did not compile or validate; the last good set kept serving.",
	})

	// Reloads counts policy sets swapped in after a change on disk.
	Reloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "podgate_policy_reloads_total",
		Help: "Policy sets swapped in after a change of the policy directory or config file.",
	})

	// InventoryLastEvent is when the Node watch last delivered anything.
	InventoryLastEvent = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "podgate_inventory_last_event_timestamp_seconds",
		Help: "When the Node watch last delivered an event (kubelets report Node status at least every 5 minutes): far in the past means the inventory is stale.",
	})

	// InventoryNodes is the number of Nodes the policies see.
	InventoryNodes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "podgate_inventory_nodes",
		Help: "Nodes in the inventory that the tolerations, placement and rollout policies use.",
	})
)

// The audit's metrics (package audit).
var (
	// AuditViolations is what the audit currently finds.
	AuditViolations = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "podgate_audit_violations",
		Help: "Violations the audit currently finds in the cluster's workloads, by policy, rule and enforcement.",
	}, []string{"policy", "rule", "enforcement"})

	// AuditMutations is how many pending mutations the audit finds.
	AuditMutations = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "podgate_audit_pending_mutations",
		Help: "Mutations the next apply of the cluster's workloads would get (e.g. probes to inject), by policy.",
	}, []string{"policy"})

	// AuditObjects is how many objects the audit judges.
	AuditObjects = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "podgate_audit_objects",
		Help: "Objects the audit judges, by kind, as of its last complete scan.",
	}, []string{"kind"})

	// AuditEvaluations counts the audit's judgements.
	AuditEvaluations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "podgate_audit_evaluations_total",
		Help: "Objects judged by the audit, by result (ok, error).",
	}, []string{"result"})

	// AuditScanDuration is how long the last complete scan took.
	AuditScanDuration = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "podgate_audit_scan_duration_seconds",
		Help: "How long the audit's last complete scan of every workload took.",
	})

	// AuditLastScan is when the last complete scan ended.
	AuditLastScan = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "podgate_audit_last_scan_timestamp_seconds",
		Help: "When the audit last completed a scan of every workload.",
	})

	// AuditReportWrites counts report writes by operation (apply, delete).
	AuditReportWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "podgate_audit_report_writes_total",
		Help: "Reports the audit wrote, by operation (apply, delete).",
	}, []string{"operation"})

	// AuditReportWriteErrors counts failed report writes.
	AuditReportWriteErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "podgate_audit_report_write_errors_total",
		Help: "Report writes that failed (and are retried), by operation (apply, delete).",
	}, []string{"operation"})

	// AuditInterval is the audit's full rescan interval.
	AuditInterval = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "podgate_audit_interval_seconds",
		Help: "The audit's --audit-interval: the time between two full rescans (0 when the audit is off).",
	})

	// AuditLeader is 1 on the replica that audits.
	AuditLeader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "podgate_audit_leader",
		Help: "1 when this replica holds the audit lease and audits, else 0.",
	})
)

func init() {
	crmetrics.Registry.MustRegister(Requests, Latency, Violations, Excepted, Evaluation, PolicyGeneration, PolicySetInfo,
		ReloadErrors, Reloads, InventoryNodes, InventoryLastEvent,
		AuditViolations, AuditMutations, AuditObjects, AuditEvaluations, AuditScanDuration, AuditLastScan,
		AuditReportWrites, AuditReportWriteErrors, AuditInterval, AuditLeader)
}

// collectors are every metric of this package, for Names.
var collectors = []prometheus.Collector{
	Requests, Latency, Violations, Excepted, Evaluation, PolicyGeneration, PolicySetInfo,
	ReloadErrors, Reloads, InventoryNodes, InventoryLastEvent,
	AuditViolations, AuditMutations, AuditObjects, AuditEvaluations, AuditScanDuration, AuditLastScan,
	AuditReportWrites, AuditReportWriteErrors, AuditInterval, AuditLeader,
}

// Names are the names of podgate's own metric families, histograms with
// their _bucket, _sum and _count series: what dashboards and alerts may
// query.
func Names() []string {
	var out []string
	for _, c := range collectors {
		ch := make(chan *prometheus.Desc, 1)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			name := fqName(d)
			out = append(out, name)
			if _, ok := c.(*prometheus.HistogramVec); ok {
				out = append(out, name+"_bucket", name+"_sum", name+"_count")
			}
		}
	}
	return out
}

// fqName reads a descriptor's name from its String form, the only place
// client_golang shows it: Desc{fqName: "name", ...}.
func fqName(d *prometheus.Desc) string {
	s := d.String()
	const key = `fqName: "`
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	s = s[i+len(key):]
	return s[:strings.IndexByte(s, '"')]
}
