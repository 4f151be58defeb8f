package audit

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	reportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	reportsac "github.com/openreports/reports-api/pkg/client/applyconfiguration/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metaac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/engine"
)

const (
	// Source is the source of every report and result podgate writes.
	Source = "podgate"
	// FieldManager is the server-side apply field manager of the reports.
	FieldManager = "podgate"
	// MutationRule is the rule of a pending mutation's result: the next
	// apply of the object would be mutated (e.g. a probe injected).
	MutationRule = "mutation"
	// managedBy labels every report podgate writes, so the audit watches
	// only its own.
	managedByKey   = "app.kubernetes.io/managed-by"
	managedByValue = "podgate"
	// maxNameLength is the longest name an object may have (a DNS subdomain).
	maxNameLength = 253
)

// Result is one line of a report: a violation, a pending mutation, or a
// policy the object passes (only with Options.PassResults).
type Result struct {
	Policy     string                 `json:"policy"`
	Rule       string                 `json:"rule,omitempty"`
	Result     reportsv1alpha1.Result `json:"result"`
	Message    string                 `json:"message"`
	Properties map[string]string      `json:"properties,omitempty"`
}

// severity orders results as a report lists them, and which a full one
// keeps: failures first.
func severity(r reportsv1alpha1.Result) int {
	switch r {
	case "fail":
		return 0
	case "error":
		return 1
	case "warn":
		return 2
	case "skip":
		return 3
	}
	return 4
}

// Results are the report lines of a decision:
//   - each violation: result fail for a deny, warn for a warn, and warn
//     with the property enforcement=dryrun for a dryrun; the message is the
//     line kubectl shows; properties field and enforcement; a violation a
//     PolicyException covers is skip, with the properties exception
//     (namespace/name) and expires, and its own enforcement;
//   - each pending mutation (not the notes): rule "mutation", result warn,
//     properties op and path;
//   - with pass, a pass result for each policy that reports nothing.
func Results(d *engine.Decision, policies []engine.Policy, pass bool) []Result {
	var out []Result
	fired := map[string]bool{}
	for _, v := range d.Violations {
		r := Result{Policy: v.Policy, Rule: v.Rule, Message: d.Line(v), Properties: map[string]string{"enforcement": string(v.Enforcement)}}
		switch {
		case v.Exception != nil:
			r.Result = "skip"
			r.Properties["enforcement"] = string(v.Exception.Enforcement)
			r.Properties["exception"] = v.Exception.Namespace + "/" + v.Exception.Name
			r.Properties["expires"] = "never"
			if !v.Exception.Expires.IsZero() {
				r.Properties["expires"] = v.Exception.Expires.UTC().Format(time.RFC3339)
			}
		case v.Enforcement == engine.Deny:
			r.Result = "fail"
		default:
			r.Result = "warn"
		}
		if v.Field != "" {
			r.Properties["field"] = v.Field
		}
		out = append(out, r)
		fired[v.Policy] = true
	}
	for _, m := range d.Changes() {
		out = append(out, Result{
			Policy:     m.Policy,
			Rule:       MutationRule,
			Result:     "warn",
			Message:    fmt.Sprintf("[%s/%s] %s: not yet applied: %s", m.Policy, MutationRule, d.Object, m.Message),
			Properties: map[string]string{"op": string(m.Op), "path": m.Path},
		})
		fired[m.Policy] = true
	}
	if pass {
		for _, p := range policies {
			if !fired[p.Name] {
				out = append(out, Result{Policy: p.Name, Result: "pass", Message: fmt.Sprintf("[%s] %s: passes", p.Name, d.Object)})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Result) int {
		return cmp.Or(cmp.Compare(severity(a.Result), severity(b.Result)), cmp.Compare(a.Policy, b.Policy),
			cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Message, b.Message))
	})
	return out
}

// Summary counts results by result.
func Summary(results []Result) reportsv1alpha1.ReportSummary {
	var s reportsv1alpha1.ReportSummary
	for _, r := range results {
		switch r.Result {
		case "pass":
			s.Pass++
		case "fail":
			s.Fail++
		case "warn":
			s.Warn++
		case "error":
			s.Error++
		case "skip":
			s.Skip++
		}
	}
	return s
}

// Report is what the audit wants stored for one object.
type Report struct {
	Name    string                 // the Report's name (ReportName)
	Scope   corev1.ObjectReference // the object
	Results []Result               // at most the maximum, failures first
	Summary reportsv1alpha1.ReportSummary
	Limit   int  // the maximum number of results, 0 for none
	Pass    bool // whether pass results are kept

	hash string
}

// NewReport is the report of a decision on obj of kind k; nil when it has
// no result (the object then has no report).
func NewReport(k Kind, obj client.Object, results []Result, limit int, pass bool) *Report {
	if len(results) == 0 {
		return nil
	}
	r := &Report{
		Name: ReportName(k.GVK.Kind, obj.GetName()),
		Scope: corev1.ObjectReference{
			APIVersion: k.GVK.GroupVersion().String(), Kind: k.GVK.Kind,
			Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID(),
		},
		Summary: Summary(results),
		Results: results,
		Limit:   limit,
		Pass:    pass,
	}
	if limit > 0 && len(results) > limit {
		r.Results = results[:limit]
	}
	r.hash = hashOf(r.Scope, r.Results, r.Summary)
	return r
}

// ReportName names the report of a kind's object: "deployment-web". A name
// that would be too long is cut and made unique with a hash of the whole.
func ReportName(kind, name string) string {
	full := strings.ToLower(kind) + "-" + name
	if len(full) <= maxNameLength {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	return full[:maxNameLength-11] + "-" + hex.EncodeToString(sum[:])[:10]
}

// hashOf identifies a report's content, timestamps left out: a report is
// written only when this changes.
func hashOf(scope corev1.ObjectReference, results []Result, summary reportsv1alpha1.ReportSummary) string {
	raw, _ := json.Marshal(struct {
		S corev1.ObjectReference
		R []Result
		M reportsv1alpha1.ReportSummary
	}{scope, results, summary})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

// storedHash is hashOf a report as the cluster has it.
func storedHash(rep *reportsv1alpha1.Report) string {
	if rep.Scope == nil {
		return "unscoped"
	}
	results := make([]Result, len(rep.Results))
	for i, r := range rep.Results {
		results[i] = Result{Policy: r.Policy, Rule: r.Rule, Result: r.Result, Message: r.Description, Properties: r.Properties}
	}
	return hashOf(*rep.Scope, results, rep.Summary)
}

// resultKey identifies a result across writes, so it keeps the timestamp
// of when it was first found.
func resultKey(policy, rule, message string, props map[string]string) string {
	return policy + "\x00" + rule + "\x00" + message + "\x00" + props["field"] + "\x00" + props["path"]
}

// Apply is the report as a server-side apply configuration, owned by the
// object (so Kubernetes deletes it with the object). Results that stored
// has too keep their timestamps; new ones are stamped now.
func (r *Report) Apply(stored *reportsv1alpha1.Report, now time.Time) *reportsac.ReportApplyConfiguration {
	since := map[string]metav1.Timestamp{}
	if stored != nil {
		for _, s := range stored.Results {
			since[resultKey(s.Policy, s.Rule, s.Description, s.Properties)] = s.Timestamp
		}
	}
	stamp := metav1.Timestamp{Seconds: now.Unix()}
	results := make([]*reportsac.ReportResultApplyConfiguration, len(r.Results))
	for i, res := range r.Results {
		ts, ok := since[resultKey(res.Policy, res.Rule, res.Message, res.Properties)]
		if !ok {
			ts = stamp
		}
		rr := reportsac.ReportResult().WithSource(Source).WithPolicy(res.Policy).WithResult(res.Result).
			WithDescription(res.Message).WithTimestamp(ts).WithScored(res.Result != "pass")
		if res.Rule != "" {
			rr.WithRule(res.Rule)
		}
		if len(res.Properties) > 0 {
			rr.WithProperties(res.Properties)
		}
		results[i] = rr
	}
	ac := reportsac.Report(r.Name, r.Scope.Namespace).
		WithLabels(map[string]string{managedByKey: managedByValue}).
		WithOwnerReferences(metaac.OwnerReference().
			WithAPIVersion(r.Scope.APIVersion).WithKind(r.Scope.Kind).WithName(r.Scope.Name).WithUID(r.Scope.UID)).
		WithSource(Source).
		WithScope(r.Scope).
		WithSummary(reportsac.ReportSummary().WithPass(r.Summary.Pass).WithFail(r.Summary.Fail).
			WithWarn(r.Summary.Warn).WithError(r.Summary.Error).WithSkip(r.Summary.Skip)).
		WithResults(results...)
	filter := []reportsv1alpha1.StatusFilter{"fail", "warn", "error", "skip"}
	if r.Pass {
		filter = append(filter, "pass")
	}
	limits := reportsac.Limits().WithStatusFilter(filter...)
	if r.Limit > 0 {
		limits.WithMaxResults(r.Limit)
	}
	return ac.WithConfiguration(reportsac.ReportConfiguration().WithLimits(limits))
}
