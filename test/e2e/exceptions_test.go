package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podgate/podgate/test/cluster"
)

// exceptionYAML is a PolicyException in ns for rules, matching the names,
// expiring at expires.
func exceptionYAML(ns, name string, rules []string, names []string, expires time.Time) string {
	return fmt.Sprintf(`apiVersion: podgate.dev/v1alpha1
kind: PolicyException
metadata: {name: %s, namespace: %s}
spec:
  rules: [%s]
  match: {names: [%s]}
  expires: %q
  reason: "OPS-42: the platform team approved it"
`, name, ns, strings.Join(rules, ", "), strings.Join(names, ", "), expires.UTC().Format(time.RFC3339))
}

// verdict is what the webhook or podgate eval says of an object.
type verdict struct {
	admitted bool
	warnings []string // podgate's, as kubectl prints them after "Warning: "
}

// webhookVerdict dry-runs the apply of manifest in ns.
func webhookVerdict(t *testing.T, ns, manifest string) verdict {
	t.Helper()
	stdout, stderr, err := kubectlApply(t, manifest, "-n", ns, "--dry-run=server")
	v := verdict{admitted: err == nil}
	if err != nil && !strings.Contains(stderr, `denied the request`) {
		t.Fatalf("kubectl apply failed, not by a denial: %v\n%s%s", err, stdout, stderr)
	}
	for _, line := range strings.Split(stderr, "\n") {
		if w, ok := strings.CutPrefix(line, "Warning: "); ok && strings.HasPrefix(w, "[") {
			v.warnings = append(v.warnings, w)
		}
	}
	return v
}

var (
	podgateCLI     string
	podgateCLIOnce sync.Once
	lastEvalStderr string // what the last evalVerdict's podgate eval printed on stderr
)

// evalVerdict is what `podgate eval --exceptions` says of manifest in ns,
// with the exceptions in exceptionsDir.
func evalVerdict(t *testing.T, ns, manifest, exceptionsDir string) verdict {
	t.Helper()
	podgateCLIOnce.Do(func() {
		podgateCLI = filepath.Join(os.TempDir(), fmt.Sprintf("podgate-e2e-%d", os.Getpid()))
		build := exec.Command("go", "build", "-o", podgateCLI, "./cmd/podgate")
		build.Dir = requireBed(t).root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/podgate: %v\n%s", err, out)
		}
	})
	file := filepath.Join(t.TempDir(), "object.yaml")
	if err := os.WriteFile(file, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(podgateCLI, "eval", "-o", "json", "--namespace", ns, "-f", file, "--exceptions", exceptionsDir)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	lastEvalStderr = errOut.String()
	var decisions []struct {
		Allowed  bool     `json:"allowed"`
		Warnings []string `json:"warnings"`
	}
	if jsonErr := json.Unmarshal(out, &decisions); jsonErr != nil || len(decisions) != 1 {
		t.Fatalf("podgate eval: %v, %v\n%s", err, jsonErr, out)
	}
	return verdict{admitted: decisions[0].Allowed, warnings: decisions[0].Warnings}
}

// agree checks that the webhook and podgate eval say the same, and that
// it is want.
func agree(t *testing.T, what, ns, manifest, exceptionsDir string, want bool) verdict {
	t.Helper()
	w := webhookVerdict(t, ns, manifest)
	e := evalVerdict(t, ns, manifest, exceptionsDir)
	if w.admitted != want {
		t.Errorf("%s: the webhook admitted %v, want %v (warnings %q)", what, w.admitted, want, w.warnings)
	}
	if e.admitted != w.admitted || strings.Join(e.warnings, "\n") != strings.Join(w.warnings, "\n") {
		t.Errorf("%s: podgate eval --exceptions disagrees with the webhook:\neval    %v %q\nwebhook %v %q", what, e.admitted, e.warnings, w.admitted, w.warnings)
	}
	return w
}

// waitVerdict dry-runs the apply until the webhook admits (or denies) it:
// the webhook learns of a PolicyException through its informer.
func waitVerdict(t *testing.T, ns, manifest string, admitted bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); webhookVerdict(t, ns, manifest).admitted != admitted; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the webhook never came to admitted=%v", admitted)
		}
	}
}

// A Pod tolerating the control-plane taint outside kube-system: denied; an
// exception for probes/*, or one in another namespace, does not help; a
// matching exception for tolerations/control-plane admits it with a
// warning naming the exception; podgate eval --exceptions says the same
// at every step.
func TestAnExceptionLetsOneWorkloadBreakOneRule(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	other := ns + "-other"
	if _, stderr, err := kubectl(t, "create", "namespace", other); err != nil {
		t.Fatalf("create namespace: %v\n%s", err, stderr)
	}
	b := requireBed(t)
	// t.Context() is cancelled when cleanups run: its values without its end.
	t.Cleanup(func() {
		_, _, _ = b.Kubectl(context.WithoutCancel(t.Context()), nil, "delete", "namespace", other, "--wait=false")
	})
	pod := example(t, "pod-control-plane-toleration.yaml")
	dir := t.TempDir()
	expires := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)

	agree(t, "no exception", ns, pod, dir, false)
	useless := exceptionYAML(ns, "probes-only", []string{"probes/*"}, []string{"sneaky"}, expires) + "---\n" +
		exceptionYAML(other, "elsewhere", []string{"tolerations/control-plane"}, []string{"sneaky"}, expires)
	good := exceptionYAML(ns, "sneaky-cp", []string{"tolerations/control-plane"}, []string{"sneaky"}, expires)
	for _, m := range []string{useless, good} {
		if stdout, stderr, err := kubectlApply(t, m); err != nil {
			t.Fatalf("create exceptions: %v\n%s%s", err, stdout, stderr)
		}
	}
	writeFile(t, dir, "exceptions.yaml", useless+"---\n"+good)
	waitVerdict(t, ns, pod, true)
	v := agree(t, "a matching exception", ns, pod, dir, true)
	want := "[tolerations/control-plane] Pod " + ns + "/sneaky: "
	suffix := fmt.Sprintf("(excepted by PolicyException %s/sneaky-cp until %s: OPS-42: the platform team approved it)", ns, expires.UTC().Format(time.DateOnly))
	if len(v.warnings) == 0 || !strings.HasPrefix(v.warnings[0], want) || !strings.HasSuffix(v.warnings[0], suffix) {
		t.Errorf("kubectl's warnings %q, want one starting %q and ending %q", v.warnings, want, suffix)
	}
	excepted, found, err := cluster.MetricValue(metrics(t), "podgate_excepted_violations_total", map[string]string{"policy": "tolerations", "rule": "control-plane"})
	if err != nil || !found || excepted < 1 {
		t.Errorf("podgate_excepted_violations_total{tolerations/control-plane} = %v (found %v, %v), want the admissions counted", excepted, found, err)
	}

	if _, stderr, err := kubectl(t, "delete", "policyexception", "-n", ns, "sneaky-cp"); err != nil {
		t.Fatalf("delete: %v\n%s", err, stderr)
	}
	writeFile(t, dir, "exceptions.yaml", useless)
	waitVerdict(t, ns, pod, false)
	agree(t, "only an exception for probes/* and one in another namespace", ns, pod, dir, false)
}

// An exception that expires a few seconds later admits the Pod until then,
// and counts nowhere from then on.
func TestAnExpiredExceptionCountsNowhere(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	pod := example(t, "pod-control-plane-toleration.yaml")
	dir := t.TempDir()
	expires := time.Now().Add(8 * time.Second).Truncate(time.Second)
	ex := exceptionYAML(ns, "brief", []string{"tolerations/control-plane"}, []string{"sneaky"}, expires)
	if stdout, stderr, err := kubectlApply(t, ex); err != nil {
		t.Fatalf("create exception: %v\n%s%s", err, stdout, stderr)
	}
	writeFile(t, dir, "exceptions.yaml", ex)
	waitVerdict(t, ns, pod, true)
	agree(t, "before it expires", ns, pod, dir, true)
	time.Sleep(time.Until(expires) + 500*time.Millisecond)
	agree(t, "after it expired", ns, pod, dir, false)
}

// PolicyExceptions that would not work, or would grant too much, are
// refused with the reason: by the CRD's schema what it can see, by the
// webhook what needs the loaded policies and config.
func TestABadPolicyExceptionIsDeniedWithTheReason(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	later := time.Now().Add(24 * time.Hour)
	for name, c := range map[string]struct {
		manifest string
		want     string
		podgate  bool // refused by podgate's webhook, not by the CRD's schema
	}{
		"an unknown rule": {exceptionYAML(ns, "typo", []string{"tolerations/controlplane"}, []string{"x"}, later),
			"rule tolerations/controlplane: policy tolerations has no rule controlplane; its rules: ", true},
		"an unknown policy": {exceptionYAML(ns, "nopolicy", []string{"toleration/control-plane"}, []string{"x"}, later),
			"rule toleration/control-plane: no policy toleration is loaded", true},
		"an expiry in the past":   {exceptionYAML(ns, "past", []string{"probes/*"}, []string{"x"}, time.Now().Add(-time.Hour)), "is already past", true},
		"an expiry too far ahead": {exceptionYAML(ns, "forever", []string{"probes/*"}, []string{"x"}, time.Now().Add(400*24*time.Hour)), "is more than 90 days from now (exceptions.maxDuration)", true},
		"a malformed rule":        {strings.Replace(exceptionYAML(ns, "bad", []string{"probes/*"}, []string{"x"}, later), "[probes/*]", "[probes]", 1), "each rule is policy/rule or policy/*", false},
		"a blank reason":          {strings.Replace(exceptionYAML(ns, "why", []string{"probes/*"}, []string{"x"}, later), `"OPS-42: the platform team approved it"`, `"  "`, 1), "reason must say why", false},
		"a match of nothing":      {strings.Replace(exceptionYAML(ns, "all", []string{"probes/*"}, []string{"x"}, later), "match: {names: [x]}", "match: {kinds: [Pod]}", 1), "match needs names or a selector", false},
	} {
		stdout, stderr, err := kubectlApply(t, c.manifest)
		if err == nil || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: kubectl apply %v\n%s%s\nwant it refused saying %q", name, err, stdout, stderr, c.want)
		}
		if c.podgate && !strings.Contains(stderr, "[podgate/exception] PolicyException "+ns+"/") {
			t.Errorf("%s: not refused by podgate's webhook:\n%s", name, stderr)
		}
		if !c.podgate {
			continue
		}
		// podgate eval --exceptions says in the same words what the webhook
		// would refuse.
		dir := t.TempDir()
		writeFile(t, dir, "exception.yaml", c.manifest)
		evalVerdict(t, ns, example(t, "pod-control-plane-toleration.yaml"), dir)
		if !strings.Contains(lastEvalStderr, c.want) {
			t.Errorf("%s: podgate eval --exceptions does not say %q:\n%s", name, c.want, lastEvalStderr)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
