package explain_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/explain"
	"github.com/podgate/podgate/policies"
)

func demoNodes() map[string]engine.Node {
	host := func(name string, extra ...string) map[string]string {
		l := map[string]string{"kubernetes.io/hostname": name}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	return map[string]engine.Node{
		"control-plane": {Labels: host("control-plane"), Taints: []engine.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}}},
		"worker-1":      {Labels: host("worker-1", "disktype", "ssd")},
		"worker-2":      {Labels: host("worker-2", "gpu", "true"), Taints: []engine.Taint{{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}}},
		"worker-3":      {Labels: host("worker-3"), Taints: []engine.Taint{{Key: "node.kubernetes.io/unschedulable", Effect: "NoSchedule"}}, Unschedulable: true},
	}
}

func explainOf(t *testing.T, nodes map[string]engine.Node, kind, object string) *explain.Explanation {
	t.Helper()
	e := engine.New()
	if err := e.Load(t.Context(), engine.Sources{Builtin: policies.FS}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetNodes(t.Context(), nodes); err != nil {
		t.Fatal(err)
	}
	group, version := "apps", "v1"
	if kind == "Pod" {
		group = ""
	}
	req := &engine.Request{Operation: "CREATE", Namespace: "default", Kind: engine.GroupVersionKind{Group: group, Version: version, Kind: kind}, Object: []byte(object)}
	x, err := explain.Explain(t.Context(), e, req)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func pod(spec string) string {
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx:1.27.2"}]` + spec + `}}`
}

const nginx = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx-deployment"},"spec":{"replicas":3,
"selector":{"matchLabels":{"app":"nginx"}},"template":{"metadata":{"labels":{"app":"nginx"}},
"spec":{"containers":[{"name":"nginx","image":"nginx:1.14.2","ports":[{"containerPort":80}]}]}}}}`

func TestTheNotesNginxDeploymentFitsOnlyWorker1(t *testing.T) {
	x := explainOf(t, demoNodes(), "Deployment", nginx)
	if want := "Only worker-1 of the 4 nodes can run its pods, so kube-scheduler puts them there."; x.Answer != want {
		t.Errorf("answer %q, want %q", x.Answer, want)
	}
	var order []string
	for _, n := range x.Nodes {
		order = append(order, n.Name)
	}
	if got := strings.Join(order, " "); got != "worker-1 control-plane worker-2 worker-3" {
		t.Errorf("nodes in order %s, want the fitting one first, then the others by name", got)
	}
	if len(x.Findings) != 1 || !strings.HasPrefix(x.Findings[0], "warn [placement/single-node] Deployment default/nginx-deployment: all 3 replicas fit only node worker-1") {
		t.Errorf("findings %q", x.Findings)
	}
	if top := x.TopRanked(); len(top) != 1 || top[0] != "worker-1" {
		t.Errorf("top ranked %v", top)
	}
}

func TestAPodNoNodeTakesNamesTheNodesOneChangeAway(t *testing.T) {
	x := explainOf(t, demoNodes(), "Pod", pod(`,"nodeSelector":{"gpu":"true"}`))
	want := "No node can run this pod, so it stays Pending (kube-scheduler: 0/4 nodes are available: " +
		"1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were unschedulable, 2 node(s) had untolerated taint(s)); " +
		"one change would let it onto worker-1 (NodeAffinity: nodeSelector gpu=true does not match: the node has no label gpu) " +
		"or worker-2 (TaintToleration: untolerated taint dedicated=gpu:NoSchedule)."
	if x.Answer != want {
		t.Errorf("answer\n %s\nwant\n %s", x.Answer, want)
	}
	if x.Fits() {
		t.Error("Fits() = true")
	}
}

func TestAnswersForEachKindOfPlacement(t *testing.T) {
	two := map[string]engine.Node{
		"a": {Labels: map[string]string{"disk": "hdd"}, Taints: []engine.Taint{{Key: "spot", Effect: "PreferNoSchedule"}}},
		"b": {Labels: map[string]string{"disk": "ssd"}},
	}
	preferSSD := `,"affinity":{"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":10,"preference":{"matchExpressions":[{"key":"disk","operator":"In","values":["ssd"]}]}}]}}`
	tests := []struct {
		name, kind, object string
		nodes              map[string]engine.Node
		want               string
	}{
		{"a unique best node", "Pod", pod(preferSSD), two,
			"Of the 2 of 2 nodes that can run this pod, kube-scheduler prefers b on taints and node affinity (500 against 0 for a); the scores this does not model (resources, images, running pods) can still change its choice."},
		{"a tie", "Pod", pod(`,"tolerations":[{"key":"spot","operator":"Exists"}]`), two,
			"Of the 2 of 2 nodes that can run this pod, a and b tie on taints and node affinity (300); kube-scheduler picks among them on the scores this does not model (resources, images, running pods), else at random."},
		{"nodeName of a node that takes the pod", "Pod", pod(`,"nodeName":"control-plane"`), demoNodes(),
			"The pod spec names node control-plane (nodeName): kube-scheduler is bypassed and the kubelet on control-plane runs it."},
		{"nodeName of a node that rejects the pod", "Pod", pod(`,"nodeName":"worker-1","nodeSelector":{"gpu":"true"}`), demoNodes(),
			"The pod spec names node worker-1 (nodeName): kube-scheduler is bypassed, and the kubelet on worker-1 rejects it (NodeAffinity: nodeSelector gpu=true does not match: the node has no label gpu)."},
		{"nodeName of a missing node", "Pod", pod(`,"nodeName":"worker-9"`), demoNodes(),
			"The pod spec names node worker-9 (nodeName), which is none of the 4 nodes, so this pod never run."},
		{"a DaemonSet", "DaemonSet", `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent"},"spec":{"template":{"spec":{"containers":[{"name":"a","image":"agent:1.0"}]}}}}`, demoNodes(),
			"The DaemonSet runs one pod on each of the 2 of 4 nodes its pods fit: worker-1 and worker-3."},
		{"nodes failing two filters each", "Pod", pod(`,"nodeSelector":{"gpu":"true"},"tolerations":[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists"}]`),
			map[string]engine.Node{"x": {Unschedulable: true}, "y": {Taints: []engine.Taint{{Key: "k", Effect: "NoExecute"}}}},
			"No node can run this pod, so it stays Pending (kube-scheduler: 0/2 nodes are available: 1 node(s) had untolerated taint(s), 1 node(s) were unschedulable); " +
				"the nearest, each failing 2 filters: x (NodeUnschedulable: the node is cordoned and the pods do not tolerate node.kubernetes.io/unschedulable:NoSchedule; NodeAffinity: nodeSelector gpu=true does not match: the node has no label gpu) " +
				"or y (TaintToleration: untolerated taint k:NoExecute; NodeAffinity: nodeSelector gpu=true does not match: the node has no label gpu)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := explainOf(t, tt.nodes, tt.kind, tt.object).Answer; got != tt.want {
				t.Errorf("answer\n %s\nwant\n %s", got, tt.want)
			}
		})
	}
}

func TestTextShowsTheTableTheFindingsAndWhatIsNotModelled(t *testing.T) {
	x := explainOf(t, demoNodes(), "Deployment", nginx)
	x.Source = "examples/nginx-deployment.yaml"
	var out bytes.Buffer
	if err := explain.WriteText(&out, []*explain.Explanation{x}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Deployment default/nginx-deployment (examples/nginx-deployment.yaml#0)\nOnly worker-1",
		"RANK  NODE           SCORE  TaintToleration x3               NodeAffinity x2  WHY NOT",
		"  1     worker-1       300    100 (0 PreferNoSchedule taints)  0 (weight 0)\n",
		"  -     worker-2       -      -                                -                TaintToleration: untolerated taint dedicated=gpu:NoSchedule\n",
		"podgate says:\n  warn [placement/single-node]",
		"Not modelled: NodeResourcesFit (filter and score: requests against free capacity)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out.String())
	}
}

func TestJSONHasNameFitsReasonsAndScorePerNode(t *testing.T) {
	raw, err := json.Marshal(explainOf(t, demoNodes(), "Deployment", nginx))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Nodes []map[string]any `json:"nodes"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	w1, cp := got.Nodes[0], got.Nodes[1]
	if w1["name"] != "worker-1" || w1["fits"] != true || w1["score"] != float64(300) || len(w1["reasons"].([]any)) != 0 {
		t.Errorf("worker-1: %v", w1)
	}
	if cp["name"] != "control-plane" || cp["fits"] != false || cp["score"] != nil || len(cp["reasons"].([]any)) != 1 {
		t.Errorf("control-plane: %v", cp)
	}
}

func TestAnEmptyInventoryIsAnError(t *testing.T) {
	e := engine.New()
	if err := e.Load(t.Context(), engine.Sources{Builtin: policies.FS}); err != nil {
		t.Fatal(err)
	}
	req := &engine.Request{Operation: "CREATE", Namespace: "default", Kind: engine.GroupVersionKind{Version: "v1", Kind: "Pod"}, Object: []byte(pod(""))}
	if _, err := explain.Explain(t.Context(), e, req); err == nil || !strings.Contains(err.Error(), "inventory is empty") {
		t.Fatalf("Explain = %v, want an error about the empty inventory", err)
	}
}
