package audit

import (
	"encoding/json"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/engine"
)

// User is the user name policies see in input.request.userInfo when the
// audit judges a stored object: who wrote it is not known any more.
const User = "podgate:audit"

// lastApplied is the annotation kubectl apply keeps a whole copy of the
// object in; the audit's cache leaves it out (see Transform).
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Kind is one kind the audit judges: the kinds podgate's webhooks admit.
type Kind struct {
	GVK schema.GroupVersionKind
	// Controlled says whether objects of this kind that a controller owns
	// are judged: not for Pods, ReplicaSets and Jobs, whose owner's pod
	// template was judged instead (as in admission).
	Controlled bool
	// New returns an empty object and list of the kind.
	New     func() client.Object
	NewList func() client.ObjectList
}

// Kinds are the audited kinds, in the order reports and summaries list them.
var Kinds = []Kind{
	{GVK: corev1.SchemeGroupVersion.WithKind("Pod"), New: func() client.Object { return &corev1.Pod{} }, NewList: func() client.ObjectList { return &corev1.PodList{} }},
	{GVK: appsv1.SchemeGroupVersion.WithKind("Deployment"), Controlled: true, New: func() client.Object { return &appsv1.Deployment{} }, NewList: func() client.ObjectList { return &appsv1.DeploymentList{} }},
	{GVK: appsv1.SchemeGroupVersion.WithKind("StatefulSet"), Controlled: true, New: func() client.Object { return &appsv1.StatefulSet{} }, NewList: func() client.ObjectList { return &appsv1.StatefulSetList{} }},
	{GVK: appsv1.SchemeGroupVersion.WithKind("DaemonSet"), Controlled: true, New: func() client.Object { return &appsv1.DaemonSet{} }, NewList: func() client.ObjectList { return &appsv1.DaemonSetList{} }},
	{GVK: appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), New: func() client.Object { return &appsv1.ReplicaSet{} }, NewList: func() client.ObjectList { return &appsv1.ReplicaSetList{} }},
	{GVK: batchv1.SchemeGroupVersion.WithKind("Job"), New: func() client.Object { return &batchv1.Job{} }, NewList: func() client.ObjectList { return &batchv1.JobList{} }},
	{GVK: batchv1.SchemeGroupVersion.WithKind("CronJob"), Controlled: true, New: func() client.Object { return &batchv1.CronJob{} }, NewList: func() client.ObjectList { return &batchv1.CronJobList{} }},
}

// KindOf returns the audited kind named kind ("Deployment"), if any.
func KindOf(kind string) (Kind, bool) {
	for _, k := range Kinds {
		if k.GVK.Kind == kind {
			return k, true
		}
	}
	return Kind{}, false
}

// InScope says whether the audit judges obj of kind k: an object that a
// controller owns is judged only when k says so (a Deployment owned by an
// operator is; the Pods of a ReplicaSet are not).
func (k Kind) InScope(obj client.Object) bool {
	return k.Controlled || metav1.GetControllerOfNoCopy(obj) == nil
}

// Request is the admission request the audit judges obj as: a CREATE of the
// object as it is stored, by User. So a report says what admission would
// do if the object were applied today, mutation first: the probes the next
// apply injects are reported as pending mutations, and every deny rule it
// breaks as a failure (an UPDATE that changes nothing of a rule's fields
// would only warn; see docs/audit.md).
func (k Kind) Request(obj client.Object) (*engine.Request, error) {
	obj.GetObjectKind().SetGroupVersionKind(k.GVK)
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s/%s: %w", k.GVK.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return &engine.Request{
		UID:       string(obj.GetUID()),
		Kind:      engine.GroupVersionKind{Group: k.GVK.Group, Version: k.GVK.Version, Kind: k.GVK.Kind},
		Namespace: obj.GetNamespace(),
		Name:      obj.GetName(),
		Operation: engine.OperationCreate,
		UserInfo:  engine.UserInfo{Username: User},
		Object:    raw,
	}, nil
}

// Transform is the audit cache's transform: it keeps what policies judge
// and drops the rest, which bounds the cache's memory (Gatekeeper's audit
// ran out of memory caching whole objects at scale):
//   - managedFields, status and the last-applied-configuration annotation
//     (a second copy of the object) of every object;
//   - everything but the identity and owners of an object the audit does
//     not judge because a controller owns it (a ReplicaSet's Pods, a
//     Deployment's old ReplicaSets), which in most clusters is most of them.
func Transform(obj any) (any, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil // tombstones pass through
	}
	o.SetManagedFields(nil)
	if anns := o.GetAnnotations(); anns[lastApplied] != "" {
		delete(anns, lastApplied)
		o.SetAnnotations(anns)
	}
	k, ok := KindOf(reflect.TypeOf(o).Elem().Name())
	if ok && !k.InScope(o) {
		out := k.New()
		out.SetName(o.GetName())
		out.SetNamespace(o.GetNamespace())
		out.SetUID(o.GetUID())
		out.SetResourceVersion(o.GetResourceVersion())
		out.SetOwnerReferences(o.GetOwnerReferences())
		return out, nil
	}
	switch t := o.(type) {
	case *corev1.Pod:
		t.Status = corev1.PodStatus{}
	case *appsv1.Deployment:
		t.Status = appsv1.DeploymentStatus{}
	case *appsv1.StatefulSet:
		t.Status = appsv1.StatefulSetStatus{}
	case *appsv1.DaemonSet:
		t.Status = appsv1.DaemonSetStatus{}
	case *appsv1.ReplicaSet:
		t.Status = appsv1.ReplicaSetStatus{}
	case *batchv1.Job:
		t.Status = batchv1.JobStatus{}
	case *batchv1.CronJob:
		t.Status = batchv1.CronJobStatus{}
	}
	return o, nil
}

var _ toolscache.TransformFunc = Transform

// sameContent says whether two versions of a cached object differ only in
// their resourceVersion: with status and managedFields dropped, that is a
// status update, which cannot change a decision.
func sameContent(a, b client.Object) bool {
	a, b = a.DeepCopyObject().(client.Object), b.DeepCopyObject().(client.Object)
	a.SetResourceVersion("")
	b.SetResourceVersion("")
	return reflect.DeepEqual(a, b)
}
