package engine_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/internal/testenv"
	"github.com/podgate/podgate/policies"
	"github.com/podgate/podgate/review"
)

// inventories the Node changes of the differential test go through: the
// cases' own nodes, then each of these in turn.
var inventories = map[string]map[string]engine.Node{
	"none":           {},
	"one plain node": {"w": {Labels: map[string]string{"kubernetes.io/hostname": "w"}}},
	"everything tainted": {
		"a": {Labels: map[string]string{"kubernetes.io/hostname": "a", "gpu": "true", "topology.kubernetes.io/zone": "z1"},
			Taints: []engine.Taint{{Key: "maintenance", Value: "planned", Effect: "NoSchedule"}}},
		"b": {Labels: map[string]string{"kubernetes.io/hostname": "b"}, Unschedulable: true,
			Taints: []engine.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}}},
	},
}

// After a Node change, Revalidate gives the decision Decide gives, for
// every testdata case, from the case's own nodes to each inventory above.
func TestRevalidateAfterANodeChangeDecidesAsDecide(t *testing.T) {
	ctx := t.Context()
	cases, err := policies.LoadCases(policies.FS, "policies")
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New()
	if err := eng.Load(ctx, engine.Sources{Builtin: policies.FS}); err != nil {
		t.Fatal(err)
	}
	compared := 0
	for _, c := range cases {
		if c.Operation != engine.OperationCreate {
			continue
		}
		req := review.EngineRequest(testenv.Request(t, c.Operation, c.Namespace, c.Object, nil))
		if err := eng.SetNodes(ctx, testenv.Nodes(t, c)); err != nil {
			t.Fatal(err)
		}
		prev, err := eng.Decide(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(prev.Violations) == 0 && len(prev.Mutations) == 0 {
			prev = nil // the audit keeps nothing of a clean object
		}
		for name, nodes := range inventories {
			if err := eng.SetNodes(ctx, nodes); err != nil {
				t.Fatal(err)
			}
			got, ok, err := eng.Revalidate(ctx, req, prev)
			if err != nil || !ok {
				t.Fatalf("%s, %s: Revalidate: ok %v, %v", c.File, name, ok, err)
			}
			want, err := eng.Decide(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if !sameDecision(got, want) {
				t.Errorf("%s, after the change to %q:\nRevalidate %+v\nDecide     %+v", c.File, name, got, want)
			}
			compared++
		}
	}
	if compared < 100 {
		t.Fatalf("only %d comparisons", compared)
	}
}

// A decision made under another policy set is not reused.
func TestRevalidateRefusesADecisionOfAnotherPolicySet(t *testing.T) {
	ctx := t.Context()
	eng := engine.New()
	if err := eng.Load(ctx, engine.Sources{Builtin: policies.FS}); err != nil {
		t.Fatal(err)
	}
	prev, err := eng.Decide(ctx, deployment)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, dir, "team.rego", customPolicy)
	if err := eng.Load(ctx, engine.Sources{Builtin: policies.FS, PolicyDir: dir}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := eng.Revalidate(ctx, deployment, prev); ok || err != nil {
		t.Fatalf("ok %v, err %v: a decision of the previous policy set was reused", ok, err)
	}
}

// The policies that read the Node inventory are found from their rules,
// through the library functions they call; a ref that may reach it
// through a variable counts.
func TestPoliciesThatReadTheInventoryAreFound(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	write(t, dir, "dynamic.rego", `# METADATA
# title: Dynamic
# description: Reads data through a variable.
# custom: {enforcement: warn, rules: {r: {enforcement: warn, summary: s}}}
package podgate.policies.dynamic

violation contains {"rule": "r", "msg": k} if {
	some k in ["config", "inventory"]
	data.podgate[k].nodes.x
}
`)
	write(t, dir, "team.rego", customPolicy)
	eng := engine.New()
	if err := eng.Load(ctx, engine.Sources{Builtin: policies.FS, PolicyDir: dir}); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, p := range eng.Policies() {
		got[p.Name] = p.ReadsNodes
	}
	want := map[string]bool{"probes": false, "stateful-volumes": false, "team-label": false, "tolerations": true, "rollout": true, "dynamic": true}
	for name, reads := range want {
		if got[name] != reads {
			t.Errorf("%s reads the inventory: got %v, want %v", name, got[name], reads)
		}
	}
}

func sameDecision(a, b *engine.Decision) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var x, y any
	_ = json.Unmarshal(ja, &x)
	_ = json.Unmarshal(jb, &y)
	return reflect.DeepEqual(x, y)
}
