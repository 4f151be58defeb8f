package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// example reads a manifest from examples/.
func example(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(requireBed(t).root, "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// denied applies a manifest and checks kubectl prints the webhook's denial
// with each of the wanted fragments.
func denied(t *testing.T, ns, manifest string, want ...string) string {
	t.Helper()
	stdout, stderr, err := kubectlApply(t, manifest, "-n", ns)
	if err == nil {
		t.Fatalf("kubectl apply succeeded, want a denial:\n%s%s", stdout, stderr)
	}
	const prefix = `admission webhook "validate.podgate.dev" denied the request: `
	for _, w := range append([]string{prefix}, want...) {
		if !strings.Contains(stderr, w) {
			t.Errorf("kubectl printed\n%s\nwant it to contain %q", stderr, w)
		}
	}
	return stderr
}

func TestSeedRedisPodWithEmptyDirIsDenied(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	denied(t, ns, example(t, "redis-pod.yaml"),
		"[stateful-volumes/persistent-storage] Pod "+ns+"/redis: ", `"redis-storage"`, "emptyDir")
	err := apiClient(t).Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "redis"}, &corev1.Pod{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("a denied Pod must not be stored, got %v", err)
	}
}

func TestSeedNginxDeploymentGetsProbesAndStillRollsToANewImage(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	stdout, stderr, err := kubectlApply(t, example(t, "nginx-deployment.yaml"), "-n", ns)
	if err != nil || !strings.Contains(stdout, "deployment.apps/nginx-deployment created") {
		t.Fatalf("apply: %v\n%s%s", err, stdout, stderr)
	}
	if want := "Warning: [placement/single-node] Deployment " + ns + "/nginx-deployment: all 3 replicas fit only node worker-1"; !strings.Contains(stderr, want) {
		t.Errorf("kubectl printed\n%s\nwant %q", stderr, want)
	}
	d := getDeployment(t, ns, "nginx-deployment")
	c := d.Spec.Template.Spec.Containers[0]
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.TCPSocket == nil || p.TCPSocket.Port.IntValue() != 80 {
			t.Errorf("stored %s probe = %+v, want tcpSocket on port 80", name, p)
		}
	}
	if note := d.Annotations["podgate.dev/mutations"]; !strings.Contains(note, `added readinessProbe (tcpSocket port 80) to container "nginx"`) {
		t.Errorf("podgate.dev/mutations = %q", note)
	}

	stdout, stderr, err = kubectl(t, "set", "image", "deployment/nginx-deployment", "nginx=nginx:1.16.1", "-n", ns)
	if err != nil || !strings.Contains(stdout, "deployment.apps/nginx-deployment image updated") {
		t.Fatalf("set image: %v\n%s%s", err, stdout, stderr)
	}
	d = getDeployment(t, ns, "nginx-deployment")
	c = d.Spec.Template.Spec.Containers[0]
	if c.Image != "nginx:1.16.1" || c.ReadinessProbe == nil || c.LivenessProbe == nil {
		t.Fatalf("after set image: image %s, readiness %v, liveness %v", c.Image, c.ReadinessProbe, c.LivenessProbe)
	}
}

func getDeployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	if err := apiClient(t).Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func TestDeploymentWithMaxUnavailableHalfOfFourReplicasIsDenied(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	denied(t, ns, example(t, "deployment-max-unavailable-50.yaml"), "[rollout/min-available] Deployment "+ns+"/web: ")
}

func TestDeploymentWithoutRevisionHistoryIsDenied(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	denied(t, ns, example(t, "deployment-no-history.yaml"), "[rollout/revision-history] Deployment "+ns+"/api: ")
}

func TestPodToleratingTheControlPlaneTaintOutsideKubeSystemIsDenied(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	denied(t, ns, example(t, "pod-control-plane-toleration.yaml"), "[tolerations/control-plane] Pod "+ns+"/sneaky: ")
}

func TestPodNoNodeToleratesIsAdmittedWithAWarning(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	stdout, stderr, err := kubectlApply(t, example(t, "pod-no-node-fits.yaml"), "-n", ns)
	if err != nil || !strings.Contains(stdout, "pod/trainer created") {
		t.Fatalf("apply: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stderr, "Warning: [tolerations/schedulable] Pod "+ns+"/trainer: 0/4 nodes can run this pod") {
		t.Fatalf("kubectl printed\n%s\nwant the schedulable warning", stderr)
	}
}

// podgate's tolerations/comparison-operator warns that a cluster without
// TaintTolerationComparisonOperators (this one) rejects a Gt toleration:
// the API server does, before the validating webhook is asked.
func TestAnAPIServerWithoutTheComparisonGateRejectsAGtTolerationAsPodgateSays(t *testing.T) {
	requireBed(t)
	ns := testNamespace(t)
	pod := `apiVersion: v1
kind: Pod
metadata: {name: render}
spec:
  containers: [{name: render, image: "blender:4.2.1", ports: [{containerPort: 8080}]}]
  tolerations: [{key: node.example.com/cores, operator: Gt, value: "4", effect: NoSchedule}]
`
	stdout, stderr, err := kubectlApply(t, pod, "-n", ns)
	if err == nil || !strings.Contains(stderr, `Unsupported value: "Gt"`) {
		t.Fatalf("kubectl apply: %v\n%s%s\nwant the API server to reject operator Gt", err, stdout, stderr)
	}
}

func TestMySQLStatefulSetNeedsItsClaimTemplates(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	stdout, stderr, err := kubectlApply(t, example(t, "mysql-statefulset.yaml"), "-n", ns)
	if err != nil || !strings.Contains(stdout, "statefulset.apps/mysql created") {
		t.Fatalf("with volumeClaimTemplates: %v\n%s%s", err, stdout, stderr)
	}
	denied(t, ns, example(t, "mysql-statefulset-no-claims.yaml"),
		"[stateful-volumes/persistent-storage] StatefulSet "+ns+"/mysql-ephemeral: ")
}

func TestContainerWithoutPortGetsNoProbeAndIsToldHowToFixIt(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	stderr := denied(t, ns, example(t, "worker-no-port.yaml"), "[probes/required] Deployment "+ns+"/worker: ", `container "worker"`)
	for _, hint := range []string{"containerPort", "probes.podgate.dev/"} {
		if !strings.Contains(stderr, hint) {
			t.Errorf("the denial does not say how to fix it (%q missing):\n%s", hint, stderr)
		}
	}
}

func TestServerSideDryRunIsCheckedWithoutStoringAnything(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	denied(t, ns, example(t, "redis-pod.yaml"), "[stateful-volumes/persistent-storage]")
	stdout, stderr, err := kubectlApply(t, example(t, "nginx-deployment.yaml"), "-n", ns, "--dry-run=server", "-o", "yaml")
	if err != nil || !strings.Contains(stdout, "readinessProbe:") {
		t.Fatalf("dry-run apply: %v\n%s%s", err, stdout, stderr)
	}
	err = apiClient(t).Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "nginx-deployment"}, &appsv1.Deployment{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run stored the object: %v", err)
	}
}

func TestMetricsCountDecisionsAndViolations(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	denied(t, ns, example(t, "redis-pod.yaml"), "[stateful-volumes/persistent-storage]")
	m := metrics(t)
	for _, want := range []string{
		`podgate_violations_total{enforcement="deny",policy="stateful-volumes",rule="persistent-storage"}`,
		`podgate_admission_requests_total{decision="denied",kind="Pod",operation="CREATE",webhook="validate"}`,
		`podgate_admission_requests_total{decision="mutated",kind="Pod",operation="CREATE",webhook="mutate"}`,
		`podgate_admission_duration_seconds_bucket{webhook="validate"`,
		`podgate_policy_evaluation_duration_seconds_count{webhook="mutate"}`,
		`podgate_inventory_nodes 4`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestWebhookLogHoldsNoSecretsOrObjects(t *testing.T) {
	b := requireWebhook(t)
	ns := testNamespace(t)
	secretish := "podgate-e2e-secret-value-3f9a"
	pod := strings.Replace(example(t, "redis-pod.yaml"), "  name: redis\n", "  name: redis\n  annotations:\n    password: "+secretish+"\n", 1)
	denied(t, ns, pod, "[stateful-volumes/persistent-storage]")
	log, err := b.WebhookLog()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := os.ReadFile(b.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{secretish, "PRIVATE KEY", "BEGIN CERTIFICATE", "Bearer ", "client-key-data"} {
		if strings.Contains(log, leak) {
			t.Errorf("the webhook log contains %q", leak)
		}
	}
	for _, line := range strings.Split(string(kubeconfig), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ": "); ok && strings.HasSuffix(k, "-data") && len(v) > 40 && strings.Contains(log, v[:40]) {
			t.Errorf("the webhook log contains the kubeconfig's %s", k)
		}
	}
}
