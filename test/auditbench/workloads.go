package main

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The workloads, by their index i:
//   - even i a Deployment, odd i a bare Pod, in namespace bench-(i%namespaces);
//   - every violatingEvery-th breaks a deny rule: the Deployment lets half
//     of its 4 replicas go down (rollout/min-available), the Pod is a
//     redis with its data in an emptyDir (stateful-volumes, probes);
//   - every pinnedEvery-th (never a violating one) runs only on the GPU
//     node worker-2, so tainting that node makes exactly those
//     unschedulable (tolerations/schedulable);
//   - the rest break nothing and lack nothing: no report. Their
//     Deployments run one replica: on the test cluster's Nodes only
//     worker-1 takes ordinary pods, so more would be placement/single-node.
const (
	namespaces      = 20
	violatingEvery  = 10
	pinnedEvery     = 100
	pinnedOffset    = 5 // pinned indices are 5, 105, 205...: never a multiple of 10
	benchNamespaces = "bench-"
)

func namespaceOf(i int) string { return fmt.Sprintf("%s%02d", benchNamespaces, i%namespaces) }

func violating(i int) bool { return i%violatingEvery == 0 }

func pinned(i int) bool { return i%pinnedEvery == pinnedOffset }

// workload is the i-th object.
func workload(i int) client.Object {
	name := fmt.Sprintf("w-%05d", i)
	labels := map[string]string{"app": name}
	spec := podSpec(i)
	if i%2 == 1 {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespaceOf(i), Labels: labels}, Spec: spec}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespaceOf(i), Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
	if violating(i) {
		half := intstr.FromString("50%")
		d.Spec.Replicas = ptr.To[int32](4)
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &half}}
	}
	return d
}

func podSpec(i int) corev1.PodSpec {
	if violating(i) && i%2 == 1 {
		return corev1.PodSpec{
			Containers: []corev1.Container{{Name: "redis", Image: "redis:7.4.1",
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		}
	}
	probe := func(period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}},
			PeriodSeconds: period, TimeoutSeconds: 1, FailureThreshold: 3,
		}
	}
	spec := corev1.PodSpec{Containers: []corev1.Container{{
		Name:           "web",
		Image:          "nginx:1.27.3",
		Ports:          []corev1.ContainerPort{{ContainerPort: 80}},
		ReadinessProbe: probe(10),
		LivenessProbe:  probe(20),
		StartupProbe:   probe(5),
	}}}
	if pinned(i) {
		spec.NodeSelector = map[string]string{"gpu": "true"}
		spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	}
	return spec
}
