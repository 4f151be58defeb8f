package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// podgate runs the CLI in-process and returns its exit code and output.
func podgate(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func repo(parts ...string) string { return filepath.Join(append([]string{"..", ".."}, parts...)...) }

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvalOnTheExamplesPrintsEachDecisionAndExits1(t *testing.T) {
	code, out, errOut := podgate(t, "", "eval", "-f", repo("examples"))
	if code != exitFailed {
		t.Fatalf("exit %d, want 1 (some examples are denied); stderr: %s", code, errOut)
	}
	for _, want := range []string{
		"Pod default/redis: denied (../../examples/redis-pod.yaml#1)",
		`deny   [stateful-volumes/persistent-storage] the workload is stateful`,
		`emptyDir volume "redis-storage"`,
		"Deployment default/nginx-deployment: admitted (../../examples/nginx-deployment.yaml#1)",
		"+        readinessProbe:",
		"+      probes: added readinessProbe (tcpSocket port 80) to container \"nginx\"",
		"Deployment default/web: denied",
		"[rollout/min-available]",
		"field: spec.strategy.rollingUpdate.maxUnavailable",
		"StatefulSet default/mysql: admitted",
		"Deployment default/worker: denied",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("eval output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

func TestEvalOfAnAdmittedObjectExits0(t *testing.T) {
	code, out, _ := podgate(t, "", "eval", "-f", repo("examples", "nginx-deployment.yaml"))
	if code != exitOK || !strings.Contains(out, "admitted") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestEvalJSONOutput(t *testing.T) {
	code, out, _ := podgate(t, "", "eval", "-o", "json", "-f", repo("examples", "redis-pod.yaml"), "-f", repo("examples", "nginx-deployment.yaml"))
	if code != exitFailed {
		t.Fatalf("exit %d", code)
	}
	var decisions []decision
	if err := json.Unmarshal([]byte(out), &decisions); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(decisions) != 2 {
		t.Fatalf("got %d decisions", len(decisions))
	}
	redis, nginx := decisions[0], decisions[1]
	if redis.Allowed || redis.Object != "Pod default/redis" || len(redis.Denials) == 0 {
		t.Errorf("redis: %+v", redis)
	}
	found := false
	for _, v := range redis.Violations {
		found = found || (v.Policy == "stateful-volumes" && v.Rule == "persistent-storage" && v.Field == "spec.volumes[0]" && v.Enforcement == "deny")
	}
	if !found {
		t.Errorf("redis violations lack stateful-volumes/persistent-storage on spec.volumes[0]: %+v", redis.Violations)
	}
	if !nginx.Allowed || len(nginx.Patch) == 0 || !strings.Contains(string(nginx.Mutated), `"readinessProbe"`) {
		t.Errorf("nginx: allowed %v, patch %v", nginx.Allowed, nginx.Patch)
	}
}

func TestEvalFromStandardInputWithNodesAndANamespace(t *testing.T) {
	nodes := write(t, t.TempDir(), "nodes.yaml", `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: gpu-1, labels: {gpu: "true"}}
  spec:
    taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
`)
	pod := `apiVersion: v1
kind: Pod
metadata: {name: trainer}
spec:
  nodeSelector: {gpu: "true"}
  containers: [{name: t, image: "trainer:1.0", ports: [{containerPort: 8080}]}]
`
	code, out, errOut := podgate(t, pod, "eval", "-f", "-", "--nodes", nodes, "--namespace", "ml")
	if code != exitOK {
		t.Fatalf("a warning admits: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "Pod ml/trainer: admitted") || !strings.Contains(out, "warn   [tolerations/schedulable] 0/1 nodes can run this pod: 1 has untolerated taint dedicated=gpu:NoSchedule") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestEvalOfAnUpdateUsesTheOldObject(t *testing.T) {
	dir := t.TempDir()
	deployment := `apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: REPLICAS
  revisionHistoryLimit: 0
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: "api:1.0", ports: [{containerPort: 80}]}]
`
	old := write(t, dir, "old.yaml", strings.Replace(deployment, "REPLICAS", "2", 1))
	cur := write(t, dir, "new.yaml", strings.Replace(deployment, "REPLICAS", "3", 1))
	if code, out, _ := podgate(t, "", "eval", "-f", cur); code != exitFailed || !strings.Contains(out, "deny   [rollout/revision-history]") {
		t.Fatalf("CREATE must deny: exit %d\n%s", code, out)
	}
	code, out, _ := podgate(t, "", "eval", "-f", cur, "--operation", "UPDATE", "--old", old)
	if code != exitOK || !strings.Contains(out, "warn   [rollout/revision-history]") || !strings.Contains(out, "already so before this update") {
		t.Fatalf("scaling an object that already broke the rule is warned: exit %d\n%s", code, out)
	}
}

func TestEvalOperationFlagIsChecked(t *testing.T) {
	f := repo("examples", "nginx-deployment.yaml")
	for name, args := range map[string][]string{
		"UPDATE without --old":            {"--operation", "UPDATE"},
		"CREATE with --old":               {"--operation", "CREATE", "--old", f},
		"an operation podgate never sees": {"--operation", "DELETE"},
		"an object missing from --old":    {"--old", repo("examples", "redis-pod.yaml")},
	} {
		t.Run(name, func(t *testing.T) {
			if code, _, errOut := podgate(t, "", append([]string{"eval", "-f", f}, args...)...); code != exitBadArgs || errOut == "" {
				t.Fatalf("exit %d %q, want 2 with a reason", code, errOut)
			}
		})
	}
}

func TestEvalBadInputExits2WithFileIndexAndReason(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ content, want string }{
		"not YAML":        {"kind: [Pod\n", "#1: not YAML or JSON"},
		"no metadata":     {"apiVersion: v1\nkind: Pod\nspec: {}\n", "#1: Pod has no metadata"},
		"second document": {"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\n", "#2: Pod has no metadata"},
		"not an object":   {"- 1\n- 2\n", "not YAML or JSON"},
		"no apiVersion":   {"kind: Pod\nmetadata: {name: a}\n", "#1: an object needs apiVersion and kind"},
		"a testdata case": {"description: d\nobject: {apiVersion: v1, kind: Pod}\nexpect: {violations: []}\n", "#1: a podgate testdata case, not a Kubernetes object: `podgate test` runs it"},
	} {
		t.Run(name, func(t *testing.T) {
			f := write(t, dir, strings.ReplaceAll(name, " ", "-")+".yaml", tc.content)
			code, _, errOut := podgate(t, "", "eval", "-f", f)
			if code != exitBadArgs || !strings.Contains(errOut, f) || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 naming %s and %q", code, errOut, f, tc.want)
			}
		})
	}
	if code, _, errOut := podgate(t, "", "eval", "-f", filepath.Join(dir, "missing.yaml")); code != exitBadArgs || !strings.Contains(errOut, "missing.yaml") {
		t.Fatalf("missing file: exit %d %q", code, errOut)
	}
	if code, _, _ := podgate(t, "", "eval", "-f", repo("examples"), "-o", "xml"); code != exitBadArgs {
		t.Fatalf("bad --output: exit %d", code)
	}
}

func TestCustomPoliciesAndConfigReachEval(t *testing.T) {
	code, out, _ := podgate(t, "", "eval", "-f", repo("examples", "nginx-deployment.yaml"), "--policy-dir", repo("examples", "policies"))
	if code != exitFailed || !strings.Contains(out, "[resources/requests]") {
		t.Fatalf("the example custom policy must deny the nginx Deployment (no resources): exit %d\n%s", code, out)
	}
	cfg := write(t, t.TempDir(), "config.yaml", "policies:\n  resources:\n    enforcement: warn\n")
	code, out, _ = podgate(t, "", "eval", "-f", repo("examples", "nginx-deployment.yaml"), "--policy-dir", repo("examples", "policies"), "--config", cfg)
	if code != exitOK || !strings.Contains(out, "warn   [resources/requests]") {
		t.Fatalf("config turns it to warn: exit %d\n%s", code, out)
	}
	bad := write(t, t.TempDir(), "config.yaml", "policies:\n  resources:\n    enforcement: loud\n")
	if code, _, errOut := podgate(t, "", "eval", "-f", repo("examples"), "--config", bad); code != exitBadArgs || !strings.Contains(errOut, "policies.resources.enforcement") {
		t.Fatalf("config error: exit %d %q", code, errOut)
	}
}

func TestTestRunsRegoTestsAndTestdataOfBuiltInAndCustomPolicies(t *testing.T) {
	code, out, errOut := podgate(t, "", "test", repo("examples", "policies"))
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"PASS: ", "testdata: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = podgate(t, "", "test", "--coverage", "-r", "resources")
	if code != exitOK || !strings.Contains(out, "coverage: ") {
		t.Fatalf("coverage: exit %d\n%s", code, out)
	}
}

const brokenTest = `# METADATA
# title: Broken
# description: a test that fails
# custom:
#   enforcement: warn
#   rules:
#     always: {enforcement: warn, summary: always}
package podgate.policies.broken

violation contains {"rule": "always", "msg": "always; nothing to fix"} if input.request.kind.kind == "Pod"
`

func TestTestFailsOnAFailingRegoTestOrTestdataCase(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "broken/broken.rego", brokenTest)
	write(t, dir, "broken/broken_test.rego", "package podgate.policies.broken_test\n\nimport data.podgate.policies.broken\n\ntest_never if count(broken.violation) == 0 with input as {\"request\": {\"kind\": {\"kind\": \"Pod\"}}}\n")
	code, out, _ := podgate(t, "", "test", dir)
	if code != exitFailed || !strings.Contains(out, "test_never: FAIL") {
		t.Fatalf("a failing Rego test: exit %d\n%s", code, out)
	}
	write(t, dir, "broken/broken_test.rego", "package podgate.policies.broken_test\n\nimport data.podgate.policies.broken\n\ntest_fires if count(broken.violation) == 1 with input as {\"request\": {\"kind\": {\"kind\": \"Pod\"}}}\n")
	write(t, dir, "broken/testdata/pod/data.yaml", "description: says nothing fires\nobject: {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: 'a:1', ports: [{containerPort: 80}]}]}}\nexpect: {violations: []}\n")
	code, out, _ = podgate(t, "", "test", dir)
	if code != exitFailed || !strings.Contains(out, "FAIL ") || !strings.Contains(out, "violations of broken: expected [], got [always]") {
		t.Fatalf("a failing testdata case: exit %d\n%s", code, out)
	}
}

func TestCheckReportsFileLineAndColumn(t *testing.T) {
	if code, out, _ := podgate(t, "", "check", repo("examples", "policies")); code != exitOK || !strings.Contains(out, "ok: 6 policies compile") {
		t.Fatalf("good policies: exit %d %q", code, out)
	}
	dir := t.TempDir()
	bad := write(t, dir, "bad.rego", "package podgate.policies.bad\n\nviolation contains v if {\n\tv := x\n}\n")
	code, _, errOut := podgate(t, "", "check", dir)
	if code != exitFailed || !strings.Contains(errOut, bad+":4:2: rego_unsafe_var_error: var x is unsafe") {
		t.Fatalf("broken policy: exit %d %q", code, errOut)
	}
}

func TestFmtListsRewritesAndFails(t *testing.T) {
	dir := t.TempDir()
	f := write(t, dir, "p.rego", "package podgate.policies.p\nx:=1\n")
	if code, out, _ := podgate(t, "", "fmt", "--fail", dir); code != exitFailed || !strings.Contains(out, f) {
		t.Fatalf("unformatted: exit %d %q", code, out)
	}
	if code, _, _ := podgate(t, "", "fmt", "-w", dir); code != exitOK {
		t.Fatalf("fmt -w: exit %d", code)
	}
	if code, out, _ := podgate(t, "", "fmt", "--fail", dir); code != exitOK || out != "" {
		t.Fatalf("formatted: exit %d %q", code, out)
	}
	if code, out, _ := podgate(t, "", "fmt", "--fail", repo("policies"), repo("examples", "policies")); code != exitOK {
		t.Fatalf("the shipped policies must be formatted: %s", out)
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	if code, out, _ := podgate(t, "", "version"); code != exitOK || !strings.HasPrefix(out, "podgate ") || !strings.Contains(out, "OPA 1.") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, _ := podgate(t, "", "nosuch"); code != exitBadArgs {
		t.Fatalf("unknown command: exit %d", code)
	}
}

func TestEvalProfileNamesTheCustomPolicysLinesAndLeavesTheOutputAlone(t *testing.T) {
	args := []string{"eval", "-o", "json", "-f", repo("examples", "nginx-deployment.yaml"), "--policy-dir", repo("examples", "policies")}
	_, plain, _ := podgate(t, "", args...)
	code, out, errOut := podgate(t, "", append(args, "--profile", "--profile-limit", "0")...)
	if code != exitFailed || out != plain {
		t.Fatalf("--profile changed the decision or its output: exit %d\n%s", code, out)
	}
	file := filepath.Join(repo("examples", "policies"), "resources", "resources.rego")
	for _, want := range []string{
		"profile: 1 object, 2 policy evaluations, ",
		"time  evaluations  where",
		file + ":31  not c.container.resources.requests[resource]",
		"policies/probes/probes.rego:",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("profile lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(errOut)
	}

	// What config turns off is not evaluated, so it is not in the profile.
	cfg := write(t, t.TempDir(), "config.yaml", "policies:\n  resources:\n    enforcement: \"off\"\n")
	_, _, errOut = podgate(t, "", append(args, "--config", cfg, "--profile", "--profile-limit", "0")...)
	if !strings.Contains(errOut, "policies/probes/probes.rego:") || strings.Contains(errOut, file) {
		t.Errorf("with the resources policy off, the profile still names it (or names nothing):\n%s", errOut)
	}
}
