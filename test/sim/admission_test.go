package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const denial = `admission webhook "validate.podgate.dev" denied the request`

// deployment is a Deployment with its probes written out, so only what a
// test adds (strategy, nodeSelector) is podgate's business.
func deployment(name, specExtra, podSpecExtra string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + `
spec:
  replicas: 2
  selector:
    matchLabels: {app: ` + name + `}
` + specExtra + `  template:
    metadata:
      labels: {app: ` + name + `}
    spec:
` + podSpecExtra + `      containers:
        - name: web
          image: nginx:1.27.3
          ports: [{containerPort: 80}]
          readinessProbe: {tcpSocket: {port: 80}}
          livenessProbe: {tcpSocket: {port: 80}}
          startupProbe: {tcpSocket: {port: 80}}
`
}

func TestADeploymentWithMaxUnavailable100PercentIsDeniedBeforeItCanTakeTheServiceDown(t *testing.T) {
	ns := testNamespace(t)
	manifest := deployment("all-down", "  strategy:\n    rollingUpdate: {maxUnavailable: 100%}\n", "")
	out, err := kubectl(t, strings.NewReader(manifest), "apply", "-n", ns, "-f", "-")
	if err == nil {
		t.Fatalf("kubectl apply succeeded, want podgate's denial:\n%s", out)
	}
	wantSays(t, out, denial, "[rollout/min-available] Deployment "+ns+"/all-down")
	var rs appsv1.ReplicaSetList
	if err := bed.Client().List(t.Context(), &rs, client.InNamespace(ns)); err != nil || len(rs.Items) > 0 {
		t.Errorf("ReplicaSets %v (err %v), want none: the Deployment was never stored", rs.Items, err)
	}
}

func TestPodsThatAReplicaSetCreatesAreNotCheckedAgain(t *testing.T) {
	ns := testNamespace(t)
	// No Node has disktype=ssd: podgate warns once, about the Deployment.
	manifest := deployment("ssd-only", "", "      nodeSelector: {disktype: ssd}\n")
	out, err := kubectl(t, strings.NewReader(manifest), "apply", "-n", ns, "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	warning := "Warning: [tolerations/schedulable] Deployment " + ns + "/ssd-only: 0/4 nodes can run its pods"
	if n := strings.Count(out, "Warning: "); n != 1 || !strings.Contains(out, warning) {
		t.Errorf("kubectl printed %d warnings:\n%s\nwant exactly one: %q", n, out, warning)
	}
	pods := waitPods(t, ns, "ssd-only", 2)
	for _, p := range pods {
		if p.Spec.NodeName != "" || !unschedulable(&p) {
			t.Errorf("pod %s: node %q, conditions %v; want Pending, Unschedulable, as podgate warned", p.Name, p.Spec.NodeName, p.Status.Conditions)
		}
	}
	var rsList appsv1.ReplicaSetList
	if err := bed.Client().List(t.Context(), &rsList, client.InNamespace(ns)); err != nil || len(rsList.Items) != 1 {
		t.Fatalf("ReplicaSets %d (err %v), want 1", len(rsList.Items), err)
	}
	for _, c := range rsList.Items[0].Status.Conditions {
		if c.Type == appsv1.ReplicaSetReplicaFailure {
			t.Errorf("ReplicaSet has %s: %s", c.Type, c.Message)
		}
	}
	events := mustKubectl(t, "get", "events", "-n", ns)
	if strings.Contains(events, "FailedCreate") || strings.Contains(events, "tolerations/schedulable") {
		t.Errorf("events show the ReplicaSet's Pods were checked again:\n%s", events)
	}
}

// waitPods waits until the Deployment app=name has n Pods that the
// scheduler has looked at (bound, or marked unschedulable).
func waitPods(t *testing.T, ns, app string, n int) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		if err := bed.Client().List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": app}); err != nil {
			return false, err
		}
		seen := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" || unschedulable(&p) {
				seen++
			}
		}
		return len(pods.Items) == n && seen == n, nil
	})
	if err != nil {
		t.Fatalf("wait for %d pods of %s seen by the scheduler (have %d): %v", n, app, len(pods.Items), err)
	}
	return pods.Items
}

// unschedulable: the scheduler found no Node for the Pod.
func unschedulable(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
		}
	}
	return false
}
