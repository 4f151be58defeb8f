package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	reportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/podgate/podgate/engine"
)

func decision() *engine.Decision {
	req := &engine.Request{Kind: engine.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, Namespace: "shop", Name: "web",
		Operation: engine.OperationCreate, Object: []byte(`{"metadata":{"name":"web"}}`)}
	d := &engine.Decision{Object: req.Describe(), Violations: []engine.Violation{
		{Policy: "rollout", Rule: "pinned-image", Message: "pin it", Field: "spec.template.spec.containers[0].image", Enforcement: engine.Warn},
		{Policy: "rollout", Rule: "min-available", Message: "too many down", Field: "spec.strategy", Enforcement: engine.Deny},
		{Policy: "probes", Rule: "identical", Message: "same probes", Enforcement: engine.DryRun},
	}, Mutations: []engine.Mutation{
		{Policy: "probes", Op: engine.OpAdd, Path: "/spec/template/spec/containers/0/readinessProbe", Message: "added readinessProbe"},
		{Policy: "probes", Op: engine.OpNote, Message: "nothing for the sidecar"},
	}}
	return d
}

func TestResultsSayWhatAdmissionWouldDoFailuresFirst(t *testing.T) {
	rs := Results(decision(), []engine.Policy{{Name: "probes"}, {Name: "rollout"}, {Name: "stateful-volumes"}}, true)
	got := make([]string, len(rs))
	for i, r := range rs {
		got[i] = string(r.Result) + " " + r.Policy + "/" + r.Rule + " " + r.Properties["enforcement"]
	}
	want := []string{
		"fail rollout/min-available deny",
		"warn probes/identical dryrun",
		"warn probes/mutation ",
		"warn rollout/pinned-image warn",
		"pass stateful-volumes/ ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rs[0].Message != "[rollout/min-available] Deployment shop/web: too many down" || rs[0].Properties["field"] != "spec.strategy" {
		t.Errorf("a violation's result: %+v", rs[0])
	}
	m := rs[2]
	if m.Message != "[probes/mutation] Deployment shop/web: not yet applied: added readinessProbe" ||
		m.Properties["op"] != "add" || m.Properties["path"] != "/spec/template/spec/containers/0/readinessProbe" {
		t.Errorf("a pending mutation's result: %+v", m)
	}
	if s := Summary(rs); s.Fail != 1 || s.Warn != 3 || s.Pass != 1 {
		t.Errorf("summary %+v", s)
	}
}

func TestAReportKeepsTheFirstResultsUpToItsLimitAndCountsThemAll(t *testing.T) {
	k, _ := KindOf("Deployment")
	obj := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1"}}
	if NewReport(k, obj, nil, 10, false) != nil {
		t.Fatal("an object with no result has no report")
	}
	rs := Results(decision(), nil, false)
	rep := NewReport(k, obj, rs, 2, false)
	if len(rep.Results) != 2 || rep.Results[0].Result != "fail" || rep.Summary.Fail != 1 || rep.Summary.Warn != 3 {
		t.Fatalf("report %+v", rep)
	}
	if rep.Name != "deployment-web" || rep.Scope.Kind != "Deployment" || rep.Scope.APIVersion != "apps/v1" || rep.Scope.UID != "u1" {
		t.Errorf("name %s, scope %+v", rep.Name, rep.Scope)
	}
}

// The audit writes a report only when its content changed: the hash of a
// report read back from the API server must be the hash it was written
// with, whatever timestamps it carries.
func TestAStoredReportHashesAsTheReportItWasWrittenFrom(t *testing.T) {
	k, _ := KindOf("Deployment")
	obj := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1"}}
	rep := NewReport(k, obj, Results(decision(), nil, false), 50, false)
	stored := roundTrip(t, rep.Apply(nil, time.Unix(1000, 0)))
	if storedHash(stored) != rep.Hash() {
		t.Fatal("a stored report does not hash as the report it was written from: every rescan would write it again")
	}
	later := roundTrip(t, rep.Apply(stored, time.Unix(5000, 0)))
	for i, r := range later.Results {
		if r.Timestamp.Seconds != 1000 {
			t.Errorf("result %d lost the time it was first found: %v", i, r.Timestamp)
		}
	}
	if len(stored.OwnerReferences) != 1 || stored.OwnerReferences[0].UID != "u1" || stored.Labels[managedByKey] != managedByValue {
		t.Errorf("owner %+v, labels %v", stored.OwnerReferences, stored.Labels)
	}
	changed := NewReport(k, obj, Results(decision(), nil, false)[1:], 50, false)
	if changed.Hash() == rep.Hash() {
		t.Error("a report with one result less hashes the same")
	}
}

func roundTrip(t *testing.T, ac any) *reportsv1alpha1.Report {
	t.Helper()
	raw, err := json.Marshal(ac)
	if err != nil {
		t.Fatal(err)
	}
	var rep reportsv1alpha1.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

func TestReportNamesFitKubernetesAndStayUnique(t *testing.T) {
	if got := ReportName("StatefulSet", "mysql"); got != "statefulset-mysql" {
		t.Errorf("got %s", got)
	}
	long := strings.Repeat("a", 250)
	a, b := ReportName("Deployment", long+"x"), ReportName("Deployment", long+"y")
	if len(a) > 253 || len(b) > 253 || a == b {
		t.Errorf("long names %d and %d characters, equal %v", len(a), len(b), a == b)
	}
}

func TestTheCacheKeepsWhatPoliciesJudgeAndNoMore(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: "shop",
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			Annotations:   map[string]string{lastApplied: `{"kind":"Pod"}`, "probes.podgate.dev/tcp": "6379"}},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "redis", Image: "redis"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	out, _ := Transform(pod.DeepCopy())
	p := out.(*corev1.Pod)
	if p.ManagedFields != nil || p.Status.Phase != "" || p.Annotations[lastApplied] != "" {
		t.Errorf("kept managedFields, status or the last-applied copy: %+v", p)
	}
	if p.Annotations["probes.podgate.dev/tcp"] != "6379" || len(p.Spec.Containers) != 1 {
		t.Errorf("lost what policies read: %+v", p)
	}

	owned := pod.DeepCopy()
	owned.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-1", UID: "rs", Controller: ptr.To(true)}}
	out, _ = Transform(owned)
	p = out.(*corev1.Pod)
	if len(p.Spec.Containers) != 0 || p.Name != "redis" || len(p.OwnerReferences) != 1 {
		t.Errorf("a ReplicaSet's pod is kept whole: %+v", p)
	}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", OwnerReferences: owned.OwnerReferences},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3)}}
	out, _ = Transform(deploy)
	if d := out.(*appsv1.Deployment); d.Spec.Replicas == nil {
		t.Error("a Deployment an operator owns is judged, so kept whole")
	}
}

func TestAStoredObjectIsJudgedAsItsCreationByTheAudit(t *testing.T) {
	k, _ := KindOf("Deployment")
	req, err := k.Request(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1"}})
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	_ = json.Unmarshal(req.Object, &obj)
	if req.Operation != engine.OperationCreate || req.UserInfo.Username != User || obj["kind"] != "Deployment" || obj["apiVersion"] != "apps/v1" ||
		req.Kind != (engine.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}) {
		t.Errorf("request %+v, object %v", req, obj)
	}
}
