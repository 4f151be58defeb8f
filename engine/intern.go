package engine

import (
	"reflect"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// interned holds one shared term for each field name of the workload
// kinds (and a few values they often hold): the keys of an admitted object
// are nearly all among them, and parseJSON takes these terms instead of
// allocating a string and a term for every key of every request. Terms
// are never modified once built, so all requests share them, as OPA
// shares its own interned terms.
var interned = internTable()

// commonValues are string values that workload objects hold again and
// again.
var commonValues = []string{
	"v1", "apps/v1", "batch/v1",
	"TCP", "UDP", "SCTP", "Always", "IfNotPresent", "Never", "OnFailure",
	"RollingUpdate", "Recreate", "OnDelete", "OrderedReady", "Parallel",
	"Exists", "Equal", "In", "NotIn", "DoesNotExist", "Gt", "Lt",
	"NoSchedule", "PreferNoSchedule", "NoExecute", "DoNotSchedule", "ScheduleAnyway", "Honor", "Ignore",
	"ClusterFirst", "RuntimeDefault", "File", "FallbackToLogsOnError", "/dev/termination-log",
	"kubernetes.io/hostname", "topology.kubernetes.io/zone", "ALL",
}

func internTable() map[string]*ast.Term {
	names := map[string]bool{}
	seen := map[reflect.Type]bool{}
	for _, v := range []any{corev1.Pod{}, appsv1.Deployment{}, appsv1.StatefulSet{}, appsv1.DaemonSet{},
		appsv1.ReplicaSet{}, batchv1.Job{}, batchv1.CronJob{}} {
		fieldNames(reflect.TypeOf(v), names, seen)
	}
	for _, k := range WorkloadKinds {
		names[k] = true
	}
	for _, v := range commonValues {
		names[v] = true
	}
	out := make(map[string]*ast.Term, len(names))
	for name := range names {
		out[name] = ast.StringTerm(name)
	}
	return out
}

// fieldNames collects the JSON names of the fields of t and of every type
// it holds.
func fieldNames(t reflect.Type, names map[string]bool, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names[name] = true
		}
		fieldNames(f.Type, names, seen)
	}
}

// stringTerm is s as a term: the shared one when s is interned.
func stringTerm(s string) *ast.Term {
	if t := interned[s]; t != nil {
		return t
	}
	return ast.StringTerm(s)
}
