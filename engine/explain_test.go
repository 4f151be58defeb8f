package engine_test

import (
	"errors"
	"testing"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// demoNodes are the demo's four Nodes: a tainted control plane, a plain
// worker, a GPU worker tainted dedicated=gpu:NoSchedule, a cordoned one.
func demoNodes() map[string]engine.Node {
	host := func(name string) map[string]string { return map[string]string{"kubernetes.io/hostname": name} }
	gpu := host("worker-2")
	gpu["gpu"] = "true"
	return map[string]engine.Node{
		"control-plane": {Labels: host("control-plane"), Taints: []engine.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}}},
		"worker-1":      {Labels: host("worker-1")},
		"worker-2":      {Labels: gpu, Taints: []engine.Taint{{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}}},
		"worker-3":      {Labels: host("worker-3"), Taints: []engine.Taint{{Key: "node.kubernetes.io/unschedulable", Effect: "NoSchedule"}}, Unschedulable: true},
	}
}

func explainOn(t *testing.T, nodes map[string]engine.Node, config string, req *engine.Request) *engine.Placement {
	t.Helper()
	e := engine.New()
	src := engine.Sources{Builtin: policies.FS}
	if config != "" {
		src.ConfigFile = write(t, t.TempDir(), "config.yaml", config)
	}
	if err := e.Load(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	if err := e.SetNodes(t.Context(), nodes); err != nil {
		t.Fatal(err)
	}
	p, err := e.Explain(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func podRequest(spec string) *engine.Request {
	return &engine.Request{
		Operation: "CREATE", Namespace: "default", Name: "p",
		Kind:   engine.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Object: []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":` + spec + `}`),
	}
}

func TestExplainGivesEveryNodeItsFitReasonsAndScore(t *testing.T) {
	p := explainOn(t, demoNodes(), "", podRequest(`{"containers":[{"name":"c","image":"nginx:1.27.2"}]}`))
	if p.Kind != "Pod" || p.Replicas != 1 || len(p.Nodes) != 4 {
		t.Fatalf("placement %+v", p)
	}
	byName := map[string]engine.NodeFit{}
	for _, n := range p.Nodes {
		byName[n.Name] = n
	}
	w1 := byName["worker-1"]
	if !w1.Fits || w1.Rank != 1 || w1.Score != 300 || len(w1.Scores) != 2 ||
		w1.Scores[0] != (engine.PluginScore{Plugin: "TaintToleration", Raw: 0, Normalized: 100, Weight: 3}) ||
		w1.Scores[1] != (engine.PluginScore{Plugin: "NodeAffinity", Raw: 0, Normalized: 0, Weight: 2}) {
		t.Errorf("worker-1: %+v", w1)
	}
	if w2 := byName["worker-2"]; w2.Fits || len(w2.Reasons) != 1 || w2.Reasons[0] != "TaintToleration: untolerated taint dedicated=gpu:NoSchedule" {
		t.Errorf("worker-2: %+v", w2)
	}
	if w3 := byName["worker-3"]; w3.Fits || len(w3.Reasons) != 2 || w3.Rank != 0 {
		t.Errorf("worker-3 (cordoned, with the unschedulable taint): %+v", w3)
	}
}

func TestExplainFollowsTheComparisonOperatorsConfig(t *testing.T) {
	nodes := map[string]engine.Node{"big": {Taints: []engine.Taint{{Key: "cores", Value: "64", Effect: "NoSchedule"}}}}
	req := podRequest(`{"containers":[{"name":"c","image":"nginx:1.27.2"}],"tolerations":[{"key":"cores","operator":"Gt","value":"16"}]}`)
	if p := explainOn(t, nodes, "", req); p.Nodes[0].Fits {
		t.Errorf("without the gate a Gt toleration tolerates nothing: %+v", p.Nodes[0])
	}
	if p := explainOn(t, nodes, "policies: {tolerations: {comparisonOperators: true}}\n", req); !p.Nodes[0].Fits {
		t.Errorf("with the gate Gt 16 tolerates cores=64: %+v", p.Nodes[0])
	}
}

func TestExplainOfAnObjectWithoutPodSpecIsAnError(t *testing.T) {
	e := engine.New()
	if err := e.Load(t.Context(), engine.Sources{Builtin: policies.FS}); err != nil {
		t.Fatal(err)
	}
	req := &engine.Request{Operation: "CREATE", Kind: engine.GroupVersionKind{Version: "v1", Kind: "Service"}, Object: []byte(`{"kind":"Service","metadata":{"name":"s"}}`)}
	if _, err := e.Explain(t.Context(), req); !errors.Is(err, engine.ErrNoPodSpec) {
		t.Fatalf("Explain = %v, want ErrNoPodSpec", err)
	}
	if _, err := engine.New().Explain(t.Context(), req); !errors.Is(err, engine.ErrNotLoaded) {
		t.Fatalf("Explain before Load = %v, want ErrNotLoaded", err)
	}
}
