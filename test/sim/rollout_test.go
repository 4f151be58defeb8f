package sim

import (
	"context"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// untaintedWorker is the one Node of cluster.Nodes that takes ordinary
// Pods: the control plane and the GPU worker are tainted, worker-3 is
// cordoned.
const untaintedWorker = "worker-1"

func TestTheSourceNotesNginxDeploymentRollsOutAndRollsBackOnTheUntaintedWorker(t *testing.T) {
	ns := testNamespace(t)
	out := mustKubectl(t, "apply", "-n", ns, "-f", "examples/nginx-deployment.yaml")
	wantSays(t, out, "deployment.apps/nginx-deployment created")
	wantSays(t, mustKubectl(t, "rollout", "status", "-n", ns, "deployment/nginx-deployment", "--timeout=2m"),
		`deployment "nginx-deployment" successfully rolled out`)
	checkPods(t, ns, "nginx:1.14.2")

	// The default strategy (25% unavailable of 3 rounds down to 0) keeps
	// every replica available while it rolls: at least podgate's 75%.
	watch := watchAvailable(t, ns, "nginx-deployment")
	wantSays(t, mustKubectl(t, "set", "image", "-n", ns, "deployment/nginx-deployment", "nginx=nginx:1.16.1"),
		"deployment.apps/nginx-deployment image updated")
	wantSays(t, mustKubectl(t, "rollout", "status", "-n", ns, "deployment/nginx-deployment", "--timeout=2m"),
		`deployment "nginx-deployment" successfully rolled out`)
	lowest, events := watch()
	if events == 0 || 4*lowest < 3*3 {
		t.Errorf("during the rollout %d replicas of 3 were available at the lowest (%d status updates seen), want at least 75%%", lowest, events)
	}
	checkPods(t, ns, "nginx:1.16.1")

	history := mustKubectl(t, "rollout", "history", "-n", ns, "deployment/nginx-deployment")
	wantSays(t, history, "REVISION", "1 ", "2 ")
	wantSays(t, mustKubectl(t, "rollout", "undo", "-n", ns, "deployment/nginx-deployment"),
		"deployment.apps/nginx-deployment rolled back")
	wantSays(t, mustKubectl(t, "rollout", "status", "-n", ns, "deployment/nginx-deployment", "--timeout=2m"),
		`deployment "nginx-deployment" successfully rolled out`)
	checkPods(t, ns, "nginx:1.14.2")
}

// checkPods checks the Deployment's Pods: three, all Running and Ready on
// the untainted worker, with the image and the probes podgate injected
// into the template.
func checkPods(t *testing.T, ns, image string) {
	t.Helper()
	var pods corev1.PodList
	if err := bed.Client().List(t.Context(), &pods, client.InNamespace(ns), client.MatchingLabels{"app": "nginx"}); err != nil {
		t.Fatalf("list pods: %v", err)
	}
	var current []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Spec.Containers[0].Image == image {
			current = append(current, p)
		}
	}
	if len(current) != 3 {
		t.Fatalf("%d live pods run %s, want 3 (of %d pods)", len(current), image, len(pods.Items))
	}
	for _, p := range current {
		c := p.Spec.Containers[0]
		if p.Spec.NodeName != untaintedWorker || p.Status.Phase != corev1.PodRunning || !podReady(&p) {
			t.Errorf("pod %s: node %q, phase %s, ready %v; want Running and Ready on %s", p.Name, p.Spec.NodeName, p.Status.Phase, podReady(&p), untaintedWorker)
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil || c.StartupProbe == nil || c.ReadinessProbe.TCPSocket == nil {
			t.Errorf("pod %s: probes readiness %v, liveness %v, startup %v; want the three tcpSocket probes podgate injected", p.Name, c.ReadinessProbe, c.LivenessProbe, c.StartupProbe)
		}
	}
	wide := mustKubectl(t, "get", "pods", "-n", ns, "-o", "wide")
	wantSays(t, wide, "Running", untaintedWorker)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// watchAvailable watches the Deployment's status until the returned
// function is called, which returns the lowest availableReplicas seen and
// how many status updates were seen.
func watchAvailable(t *testing.T, ns, name string) func() (lowest int32, events int) {
	t.Helper()
	wc, err := client.NewWithWatch(bed.RESTConfig(), client.Options{})
	if err != nil {
		t.Fatalf("watch client: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	w, err := wc.Watch(ctx, &appsv1.DeploymentList{}, client.InNamespace(ns))
	if err != nil {
		cancel()
		t.Fatalf("watch deployments: %v", err)
	}
	var mu sync.Mutex
	lowest, events := int32(1<<30), 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if d, ok := ev.Object.(*appsv1.Deployment); ok && d.Name == name {
				mu.Lock()
				lowest, events = min(lowest, d.Status.AvailableReplicas), events+1
				mu.Unlock()
			}
		}
	}()
	return func() (int32, int) {
		w.Stop()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return lowest, events
	}
}

// wantSays fails t unless out holds every fragment.
func wantSays(t *testing.T, out string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(out, f) {
			t.Errorf("kubectl printed\n%s\nwant it to say %q", out, f)
		}
	}
}
