package inventory

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podgate/podgate/engine"
)

func bigNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-2", Labels: map[string]string{"gpu": "true"},
			Annotations: map[string]string{"big": "annotation"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.NodeSpec{Unschedulable: true, PodCIDR: "10.0.0.0/24",
			Taints: []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64")},
			Images:   []corev1.ContainerImage{{Names: []string{"a very large image list"}}},
		},
	}
}

func TestTransformKeepsOnlyWhatPoliciesUse(t *testing.T) {
	out, err := Transform(bigNode())
	if err != nil {
		t.Fatal(err)
	}
	n := out.(*corev1.Node)
	if n.Annotations != nil || n.ManagedFields != nil || n.Spec.PodCIDR != "" || n.Status.Capacity != nil || n.Status.Images != nil {
		t.Fatalf("kept more than name, labels, taints and unschedulable: %+v", n)
	}
	if got := Facts(n); !reflect.DeepEqual(got, engine.Node{
		Labels:        map[string]string{"gpu": "true"},
		Taints:        []engine.Taint{{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}},
		Unschedulable: true,
	}) {
		t.Fatalf("facts = %+v", got)
	}
}

func TestOnlyChangesPoliciesSeeTriggerARebuild(t *testing.T) {
	a, _ := Transform(bigNode())
	heartbeat := bigNode()
	heartbeat.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	b, _ := Transform(heartbeat)
	if changed(a, b) {
		t.Fatal("a status heartbeat must not rebuild the inventory")
	}
	uncordoned := bigNode()
	uncordoned.Spec.Unschedulable = false
	c, _ := Transform(uncordoned)
	if !changed(a, c) {
		t.Fatal("uncordoning must rebuild the inventory")
	}
}
