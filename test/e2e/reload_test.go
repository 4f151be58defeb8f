package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// metricValue reads one sample of the webhook's metrics, 0 when absent. It
// works in t.Cleanup too, where t.Context is already cancelled.
func metricValue(t *testing.T, name string) float64 {
	t.Helper()
	text, err := requireWebhook(t).Metrics(context.WithoutCancel(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+]+)$`).FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 30s waiting until %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setPolicy writes (or with content "" removes) a custom policy file in the
// webhook's policy directory and waits until the webhook has reloaded.
func setPolicy(t *testing.T, name, content string) {
	t.Helper()
	b := requireWebhook(t)
	before := metricValue(t, "podgate_policy_reloads_total")
	path := filepath.Join(b.policyDir, name)
	var err error
	if content == "" {
		if err = os.Remove(path); os.IsNotExist(err) {
			return // already gone: nothing to reload
		}
	} else {
		err = os.WriteFile(path, []byte(content), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the webhook reloads "+name, func() bool { return metricValue(t, "podgate_policy_reloads_total") > before })
}

func resourcesPolicy(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(requireBed(t).root, "examples", "policies", "resources", "resources.rego"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestCustomPolicyIsEnforcedWithoutRestartAndABrokenOneKeepsTheLastGoodSet(t *testing.T) {
	b := requireWebhook(t)
	ns := testNamespace(t)
	nginx := example(t, "nginx-deployment.yaml")

	setPolicy(t, "resources.rego", resourcesPolicy(t))
	t.Cleanup(func() { setPolicy(t, "resources.rego", "") })
	denied(t, ns, nginx, "[resources/requests] Deployment "+ns+"/nginx-deployment: ", `container "nginx" requests no cpu`)

	errorsBefore := metricValue(t, "podgate_policy_reload_errors_total")
	broken := strings.Replace(resourcesPolicy(t), "violation contains v if {", "violation contains v if {{", 1)
	if err := os.WriteFile(filepath.Join(b.policyDir, "resources.rego"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the broken policy is rejected", func() bool {
		return metricValue(t, "podgate_policy_reload_errors_total") > errorsBefore
	})
	code, readyz, err := b.Readyz(t.Context())
	if err != nil || code != 200 || !strings.Contains(readyz, "[!]policy-reload: policy change rejected") || !strings.Contains(readyz, "resources.rego:") {
		t.Fatalf("/readyz must stay 200 and say the change was rejected, got %d %v:\n%s", code, err, readyz)
	}
	denied(t, ns, nginx, "[resources/requests]") // the last good set still answers

	setPolicy(t, "resources.rego", "")
	stdout, stderr, err := kubectlApply(t, nginx, "-n", ns)
	if err != nil || !strings.Contains(stdout, "created") {
		t.Fatalf("without the custom policy nginx is admitted again: %v\n%s%s", err, stdout, stderr)
	}
	if _, readyz, _ := b.Readyz(t.Context()); strings.Contains(readyz, "[!]policy-reload") {
		t.Fatalf("a good set clears the condition:\n%s", readyz)
	}
}

func TestConfigChangeTakesEffectWithoutRestart(t *testing.T) {
	b := requireWebhook(t)
	ns := testNamespace(t)
	before := metricValue(t, "podgate_policy_reloads_total")
	cfg := "policies:\n  rollout:\n    rules:\n      revision-history: warn\n"
	if err := os.WriteFile(b.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		before := metricValue(t, "podgate_policy_reloads_total")
		if err := os.WriteFile(b.config, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the config is restored", func() bool { return metricValue(t, "podgate_policy_reloads_total") > before })
	})
	waitFor(t, "the config is reloaded", func() bool { return metricValue(t, "podgate_policy_reloads_total") > before })
	stdout, stderr, err := kubectlApply(t, example(t, "deployment-no-history.yaml"), "-n", ns)
	if err != nil || !strings.Contains(stdout, "deployment.apps/api created") || !strings.Contains(stderr, "Warning: [rollout/revision-history]") {
		t.Fatalf("revision-history turned to warn: %v\n%s%s", err, stdout, stderr)
	}
}

// compliantPod passes every policy, custom resources policy included.
func compliantPod(ns string, i int) *corev1.Pod {
	port := corev1.ContainerPort{ContainerPort: 80}
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")},
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "load-" + strconv.Itoa(i)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "nginx:1.27.3", Ports: []corev1.ContainerPort{port}, Resources: res,
		}}},
	}
}

func TestNoRequestFailsWhilePoliciesReloadUnderLoad(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	c := apiClient(t)
	ctx, stop := context.WithCancel(t.Context())
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				sent.Add(1)
				err := c.Create(t.Context(), compliantPod(ns, w*100000+i), client.DryRunAll)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	policy := resourcesPolicy(t)
	for i := range 5 {
		setPolicy(t, "resources.rego", policy+strings.Repeat("\n", i+1))
	}
	setPolicy(t, "resources.rego", "")
	stop()
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d dry-run creates failed during 6 reloads; first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
	if sent.Load() < 20 {
		t.Fatalf("only %d requests were sent: the load did not overlap the reloads", sent.Load())
	}
	t.Logf("%d dry-run creates through both webhooks during 6 reloads, none failed", sent.Load())
}
