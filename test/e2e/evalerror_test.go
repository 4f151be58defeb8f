package e2e

import (
	"strings"
	"testing"
)

// conflictingPolicy cannot be evaluated for a Pod labelled boom: its
// complete rule label has two values there.
const conflictingPolicy = `# METADATA
# title: Conflicting
# description: Fails to evaluate on Pods labelled boom.
# custom:
#   enforcement: warn
#   rules:
#     seen: {enforcement: warn, summary: names the pod}
package podgate.policies.conflicting

label := "one" if input.request.object.metadata.labels.boom

label := "two" if input.request.object.metadata.labels.boom

violation contains {"rule": "seen", "msg": concat(" ", ["seen", label])} if input.request.kind.kind == "Pod"
`

// What kubectl prints when podgate cannot evaluate its policies, as
// docs/operations.md quotes it: the webhook answered (a 500 inside a
// denial), so the request is refused whatever the failurePolicy.
func TestAnEvaluationErrorIsARefusalKubectlPrintsWithItsReason(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	setPolicy(t, "conflicting.rego", conflictingPolicy)
	t.Cleanup(func() { setPolicy(t, "conflicting.rego", "") })
	pod := `apiVersion: v1
kind: Pod
metadata: {name: boom, labels: {boom: "yes"}}
spec: {containers: [{name: c, image: "registry.k8s.io/pause:3.10", ports: [{containerPort: 80}]}]}
`
	stdout, stderr, err := kubectlApply(t, pod, "-n", ns)
	if err == nil {
		t.Fatalf("kubectl apply succeeded:\n%s", stdout)
	}
	want := `Error from server: error when creating "STDIN": admission webhook "validate.podgate.dev" denied the request: podgate could not evaluate its policies: evaluate policies: `
	if !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "eval_conflict_error") {
		t.Fatalf("kubectl printed\n%s\nwant it to start with %q and name the conflict", stderr, want)
	}
}
