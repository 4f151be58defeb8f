package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// demoNodes are the demo's four Nodes as `kubectl get nodes -o yaml` lists them.
const demoNodes = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: control-plane, labels: {kubernetes.io/hostname: control-plane, node-role.kubernetes.io/control-plane: ""}}
  spec: {taints: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]}
- apiVersion: v1
  kind: Node
  metadata: {name: worker-1, labels: {kubernetes.io/hostname: worker-1}}
- apiVersion: v1
  kind: Node
  metadata: {name: worker-2, labels: {kubernetes.io/hostname: worker-2, gpu: "true"}}
  spec: {taints: [{key: dedicated, value: gpu, effect: NoSchedule}]}
- apiVersion: v1
  kind: Node
  metadata: {name: worker-3, labels: {kubernetes.io/hostname: worker-3}}
  spec: {unschedulable: true, taints: [{key: node.kubernetes.io/unschedulable, effect: NoSchedule}]}
`

func TestExplainOfTheExamplesOnTheDemoNodes(t *testing.T) {
	nodes := write(t, t.TempDir(), "nodes.yaml", demoNodes)
	code, out, errOut := podgate(t, "", "explain", "-f", repo("examples", "nginx-deployment.yaml"), "-f", repo("examples", "pod-no-node-fits.yaml"), "--nodes", nodes)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"Deployment default/nginx-deployment (../../examples/nginx-deployment.yaml#1)\nOnly worker-1 of the 4 nodes can run its pods, so kube-scheduler puts them there.",
		"  1     worker-1       300    100 (0 PreferNoSchedule taints)  0 (weight 0)\n",
		"warn [placement/single-node] Deployment default/nginx-deployment: all 3 replicas fit only node worker-1",
		"Pod default/trainer (../../examples/pod-no-node-fits.yaml#1)\nNo node can run this pod, so it stays Pending",
		"one change would let it onto worker-1 (NodeAffinity: nodeSelector gpu=true does not match: the node has no label gpu) or worker-2 (TaintToleration: untolerated taint dedicated=gpu:NoSchedule).",
		"Not modelled: NodeResourcesFit",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

func TestExplainJSONOutput(t *testing.T) {
	nodes := write(t, t.TempDir(), "nodes.yaml", demoNodes)
	code, out, errOut := podgate(t, "", "explain", "-o", "json", "-f", repo("examples", "pod-no-node-fits.yaml"), "--nodes", nodes)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []struct {
		Object string `json:"object"`
		Answer string `json:"answer"`
		Nodes  []struct {
			Name    string   `json:"name"`
			Fits    bool     `json:"fits"`
			Reasons []string `json:"reasons"`
			Score   *int64   `json:"score"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(got) != 1 || got[0].Object != "Pod default/trainer" || len(got[0].Nodes) != 4 {
		t.Fatalf("got %+v", got)
	}
	for _, n := range got[0].Nodes {
		if n.Fits || n.Score != nil || len(n.Reasons) == 0 {
			t.Errorf("node %+v: the trainer fits no node", n)
		}
	}
}

func TestExplainConfigTurnsOnComparisonOperators(t *testing.T) {
	dir := t.TempDir()
	nodes := write(t, dir, "nodes.yaml", `apiVersion: v1
kind: Node
metadata: {name: big-1}
spec: {taints: [{key: cores, value: "64", effect: NoSchedule}]}
`)
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"render"},"spec":{"containers":[{"name":"r","image":"r:1"}],"tolerations":[{"key":"cores","operator":"Gt","value":"16"}]}}`
	_, out, _ := podgate(t, pod, "explain", "-f", "-", "--nodes", nodes)
	if !strings.Contains(out, "No node can run this pod") || !strings.Contains(out, "warn [tolerations/comparison-operator]") {
		t.Errorf("without the gate a Gt toleration tolerates nothing and is reported:\n%s", out)
	}
	config := write(t, dir, "config.yaml", "policies:\n  tolerations:\n    comparisonOperators: true\n")
	_, out, _ = podgate(t, pod, "explain", "-f", "-", "--nodes", nodes, "--config", config)
	if !strings.Contains(out, "Only big-1 of the 1 nodes can run this pod") {
		t.Errorf("with comparisonOperators Gt 16 tolerates cores=64:\n%s", out)
	}
}

func TestExplainBadInputExits2(t *testing.T) {
	nodes := write(t, t.TempDir(), "nodes.yaml", demoNodes)
	nginx := repo("examples", "nginx-deployment.yaml")
	t.Setenv("KUBECONFIG", write(t, t.TempDir(), "empty", ""))
	t.Setenv("HOME", t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"explain", "-f", nginx, "--nodes", nodes, "-o", "yaml"}, `--output "yaml": want text or json`},
		{[]string{"explain", "-f", nginx, "--nodes", nodes, "--kubeconfig", nodes}, "--nodes and --kubeconfig/--context both name the Nodes"},
		{[]string{"explain", "-f", nginx}, "explain needs the cluster's Nodes: pass --nodes FILE (kubectl get nodes -o yaml) or --kubeconfig FILE"},
		{[]string{"explain", "--nodes", nodes}, `required flag(s) "filename" not set`},
	} {
		code, _, errOut := podgate(t, "", tc.args...)
		if code != exitBadArgs || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
