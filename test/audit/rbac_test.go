package audit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Granting an exception takes the chart's exception-manager ClusterRole:
// a user bound to the built-in edit or admin role can read exceptions but
// not create them, until exceptions.aggregateToAdmin makes admins
// managers. The clusterrole-aggregation controller of the simulated
// cluster's controller-manager does what it does in a real cluster.
func TestOnlyTheExceptionManagerRoleGrantsExceptions(t *testing.T) {
	c := requireBed(t)
	helm := filepath.Join(c.Root(), "bin", "testbin", "helm4")
	if _, err := os.Stat(helm); err != nil {
		t.Fatalf("%v: build it with test/tools/build.sh helm4 (make test does)", err)
	}
	ns := namespace(t, "team-a")
	kubectl(t, "create", "rolebinding", "alice-edit", "-n", ns, "--clusterrole=edit", "--user=alice")
	kubectl(t, "create", "rolebinding", "bob-admin", "-n", ns, "--clusterrole=admin", "--user=bob")
	roles := func(aggregate string) {
		out, err := exec.Command(helm, "template", "podgate", filepath.Join(c.Root(), "charts", "podgate"),
			"--namespace", "podgate-system", "--set", "exceptions.aggregateToAdmin="+aggregate,
			"--show-only", "templates/rbac.yaml").Output()
		if err != nil {
			t.Fatalf("helm template: %v", err)
		}
		var kept []string
		for _, doc := range strings.Split(string(out), "\n---") {
			if strings.Contains(doc, "name: podgate-exception-") {
				kept = append(kept, doc)
			}
		}
		if len(kept) != 2 {
			t.Fatalf("found %d exception roles in the chart", len(kept))
		}
		stdout, stderr, err := c.Kubectl(t.Context(), strings.NewReader(strings.Join(kept, "\n---\n")), "apply", "-f", "-")
		if err != nil {
			t.Fatalf("kubectl apply: %v\n%s%s", err, stdout, stderr)
		}
	}
	can := func(user, verb string) bool {
		stdout, _, _ := c.Kubectl(t.Context(), nil, "auth", "can-i", verb, "policyexceptions.podgate.dev", "-n", ns, "--as", user)
		return strings.TrimSpace(stdout) == "yes"
	}
	roles("false")
	waitFor(t, 30*time.Second, "the view rules aggregated into edit", func() bool { return can("alice", "list") })
	for user, verbs := range map[string][]string{"alice": {"create", "update", "delete"}, "bob": {"create", "delete"}} {
		for _, verb := range verbs {
			if can(user, verb) {
				t.Errorf("%s (bound to %s) can %s PolicyExceptions", user, map[string]string{"alice": "edit", "bob": "admin"}[user], verb)
			}
		}
	}
	roles("true")
	waitFor(t, 30*time.Second, "with aggregateToAdmin, admins grant exceptions", func() bool { return can("bob", "create") })
	if can("alice", "create") {
		t.Error("aggregateToAdmin let edit users grant exceptions")
	}
}
