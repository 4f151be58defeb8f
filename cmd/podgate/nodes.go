package main

import (
	"encoding/json"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/inventory"
)

// readNodes reads the Node inventory of --nodes: what `kubectl get nodes
// -o yaml` (a List) or `-o json` prints, or Nodes one per YAML document,
// or any mix of these. Anything that is not a Node is refused: a Node
// missing from the inventory would change what the tolerations and
// DaemonSet rules decide without a word.
func readNodes(file string) (map[string]engine.Node, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, badInput("--nodes: %v", err)
	}
	objs, err := decodeObjects(file, raw)
	if err != nil {
		return nil, badInput("--nodes: %v", err)
	}
	if len(objs) == 0 {
		return nil, badInput("--nodes: %s holds no Node; give it what `kubectl get nodes -o yaml` prints", file)
	}
	nodes := make(map[string]engine.Node, len(objs))
	for _, o := range objs {
		where := fmt.Sprintf("%s#%d", file, o.index)
		if o.obj["apiVersion"] != "v1" || o.obj["kind"] != "Node" {
			return nil, badInput("--nodes: %s: a %v %v, not a v1 Node; give it what `kubectl get nodes -o yaml` prints", where, o.obj["apiVersion"], o.obj["kind"])
		}
		raw, err := json.Marshal(o.obj)
		if err != nil {
			return nil, badInput("--nodes: %s: %v", where, err)
		}
		var n corev1.Node
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, badInput("--nodes: %s: not a Node: %v", where, err)
		}
		if n.Name == "" {
			return nil, badInput("--nodes: %s: the Node has no metadata.name", where)
		}
		if _, dup := nodes[n.Name]; dup {
			return nil, badInput("--nodes: %s: Node %s is listed twice", where, n.Name)
		}
		nodes[n.Name] = inventory.Facts(&n)
	}
	return nodes, nil
}
