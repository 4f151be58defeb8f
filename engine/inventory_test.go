package engine

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/podgate/podgate/policies"
)

// testNodes returns n Nodes of a cloud cluster: unique hostnames, three
// zones, racks of ten, a numeric label, tainted control-plane, GPU and
// spot pools, and cordoned nodes.
func testNodes(n int) map[string]Node {
	nodes := map[string]Node{}
	for i := range n {
		name := fmt.Sprintf("node-%04d", i)
		labels := map[string]string{
			"kubernetes.io/hostname":      name,
			"topology.kubernetes.io/zone": []string{"a", "b", "c"}[i%3],
			"rack":                        fmt.Sprintf("r%d", i/10),
			"cpus":                        fmt.Sprint(4 << (i % 3)),
		}
		var taints []Taint
		unschedulable := false
		switch {
		case i == 0:
			labels["node-role.kubernetes.io/control-plane"] = ""
			taints = []Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}}
		case i%7 == 3:
			labels["gpu"] = "true"
			taints = []Taint{{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}, {Key: "nvidia.com/gpu", Effect: "NoExecute"}}
		case i%11 == 5:
			unschedulable = true
		case i%5 == 1:
			labels["spot"] = "true"
			taints = []Taint{{Key: "spot", Value: "true", Effect: "NoSchedule"}, {Key: "soft", Effect: "PreferNoSchedule"}}
		}
		nodes[name] = Node{Labels: labels, Taints: taints, Unschedulable: unschedulable}
	}
	return nodes
}

func TestInventoryDataGroupsNodesThatDifferOnlyInHostname(t *testing.T) {
	nodes := testNodes(2000)
	inv := inventoryData(nodes)
	if got := inv["varyingLabels"]; !reflect.DeepEqual(got, []any{"kubernetes.io/hostname", "rack"}) {
		t.Errorf("varyingLabels = %v, want hostname and rack (200 values) out", got)
	}
	classes := inv["classes"].([]any)
	if len(classes) > 100 {
		t.Errorf("%d classes for 2000 nodes, want at most 100", len(classes))
	}
	total := int64(0)
	for _, c := range classes {
		c := c.(map[string]any)
		total += c["count"].(int64)
		if _, ok := nodes[c["first"].(string)]; !ok {
			t.Errorf("class first %v is no node", c["first"])
		}
		if _, ok := c["node"].(map[string]any)["labels"].(map[string]any)["kubernetes.io/hostname"]; ok {
			t.Errorf("class %v keeps the hostname label", c["first"])
		}
	}
	if total != 2000 || inv["nodeCount"] != int64(2000) {
		t.Errorf("classes count %d nodes, nodeCount %v; want 2000", total, inv["nodeCount"])
	}
	if got := len(inv["taints"].([]any)); got != 5 {
		t.Errorf("%d distinct taints, want 5", got)
	}
	if got := len(inv["nodes"].(map[string]any)); got != 2000 {
		t.Errorf("nodes has %d entries, want 2000", got)
	}
}

func TestSmallInventoriesKeepEveryLabelInTheirClasses(t *testing.T) {
	inv := inventoryData(testNodes(20))
	if got := inv["varyingLabels"].([]any); len(got) != 0 {
		t.Errorf("varyingLabels = %v, want none under %d classes", got, maxClassesFloor)
	}
	if got := len(inv["classes"].([]any)); got != 20 {
		t.Errorf("%d classes, want one per node (hostnames differ)", got)
	}
	if got := inventoryData(nil); len(got["classes"].([]any)) != 0 || got["nodeCount"] != int64(0) {
		t.Errorf("empty inventory: %v", got)
	}
}

// Pod specs whose scheduling decisions the class shortcut must not change:
// a nodeSelector or affinity on class labels (classes used) and on varying
// labels, matchFields and nodeName (each node on its own), and pods that no
// node runs (the message counts nodes per reason).
var schedulingSpecs = map[string]string{
	"no constraints":               `{}`,
	"gpu selector, no toleration":  `{"nodeSelector": {"gpu": "true"}}`,
	"gpu selector and tolerations": `{"nodeSelector": {"gpu": "true"}, "tolerations": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, {"key": "nvidia.com/gpu", "operator": "Exists"}]}`,
	"selector matching nothing":    `{"nodeSelector": {"pool": "none"}}`,
	"zone affinity and spot":       `{"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["b"]}, {"key": "spot", "operator": "Exists"}]}]}}}, "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]}`,
	"not in and does not exist":    `{"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": ["a", "b", "c"]}]}, {"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}, {"key": "cpus", "operator": "Gt", "values": ["9"]}]}]}}}}`,
	"hostname selector":            `{"nodeSelector": {"kubernetes.io/hostname": "node-0003"}}`,
	"hostname affinity":            `{"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-0001", "node-0005"]}]}]}}}}`,
	"rack affinity":                `{"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "rack", "operator": "In", "values": ["r0"]}, {"key": "spot", "operator": "Exists"}]}]}}}}`,
	"match fields":                 `{"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-0000", "node-0003"]}]}]}}}}`,
	"node name":                    `{"nodeName": "node-0003"}`,
	"unknown node name":            `{"nodeName": "gone"}`,
	"typo toleration":              `{"tolerations": [{"key": "dedicatd", "value": "gpu", "effect": "NoSchedule"}, {"key": "spot", "operator": "Equal", "value": "true"}]}`,
	"host network":                 `{"hostNetwork": true, "nodeSelector": {"spot": "true"}}`,
}

func workloadObject(kind, spec string) []byte {
	pod := `{"containers": [{"name": "app", "image": "app:1", "ports": [{"containerPort": 80}],
		"readinessProbe": {"tcpSocket": {"port": 80}}, "livenessProbe": {"tcpSocket": {"port": 80}}}]}`
	var merged map[string]any
	_ = json.Unmarshal([]byte(pod), &merged)
	var extra map[string]any
	if err := json.Unmarshal([]byte(spec), &extra); err != nil {
		panic(err)
	}
	for k, v := range extra {
		merged[k] = v
	}
	if kind == "Pod" {
		obj, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p"}, "spec": merged})
		return obj
	}
	obj, _ := json.Marshal(map[string]any{"apiVersion": "apps/v1", "kind": kind, "metadata": map[string]any{"name": "w"},
		"spec": map[string]any{
			"revisionHistoryLimit": 3,
			"updateStrategy":       map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": "10%"}},
			"template":             map[string]any{"spec": merged},
		}})
	return obj
}

// TestNodeClassesDecideAsEveryNodeDoes evaluates every spec as a Pod and a
// DaemonSet (whose rollout counts the nodes it runs on) against
// inventories of several sizes, with the classes of SetNodes, with
// classes forced to leave out more labels, and with no classes at all
// (each node its own class, as in opa test): the violations must be
// identical.
func TestNodeClassesDecideAsEveryNodeDoes(t *testing.T) {
	ctx := t.Context()
	e := New()
	if err := e.Load(ctx, Sources{Builtin: policies.FS}); err != nil {
		t.Fatal(err)
	}
	store := e.current.Load().store
	setInventory := func(t *testing.T, value map[string]any) {
		t.Helper()
		if err := storage.WriteOne(ctx, store, storage.AddOp, storage.MustParsePath("/podgate/inventory"), value); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{1, 12, 150, 700} {
		nodes := testNodes(n)
		withoutClasses := map[string]any{"nodes": inventoryData(nodes)["nodes"]}
		variants := map[string]map[string]any{
			"classes":             inventoryData(nodes),
			"fewest classes":      groupNodes(nodes, 1),
			"stale classes":       staleClasses(nodes),
			"classes, no varying": groupNodes(nodes, 1<<30),
		}
		for name, spec := range schedulingSpecs {
			for _, kind := range []string{"Pod", "DaemonSet"} {
				req := &Request{UID: "1", Operation: "CREATE", Namespace: "team", Name: "w",
					Kind:   GroupVersionKind{Group: map[string]string{"Pod": "", "DaemonSet": "apps"}[kind], Version: "v1", Kind: kind},
					Object: workloadObject(kind, spec)}
				setInventory(t, withoutClasses)
				want, err := e.Violations(ctx, req)
				if err != nil {
					t.Fatalf("%d nodes, %s %s: %v", n, kind, name, err)
				}
				for variant, inv := range variants {
					setInventory(t, inv)
					got, err := e.Violations(ctx, req)
					if err != nil {
						t.Fatalf("%d nodes, %s %s, %s: %v", n, kind, name, variant, err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%d nodes, %s %q, %s:\n got  %s\n want %s", n, kind, name, variant, show(got), show(want))
					}
				}
			}
		}
	}
}

// staleClasses are the classes of another inventory, as a test's `with
// data.podgate.inventory.nodes as ...` leaves them: they must be ignored.
func staleClasses(nodes map[string]Node) map[string]any {
	other := map[string]Node{"x": {Labels: map[string]string{"gpu": "true"}}}
	inv := groupNodes(other, 1)
	inv["nodes"] = inventoryData(nodes)["nodes"]
	return inv
}

func show(vs []Violation) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "\n   [%s/%s] %s", v.Policy, v.Rule, v.Message)
	}
	return b.String()
}
