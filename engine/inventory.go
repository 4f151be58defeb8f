package engine

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// maxClassesFloor is the number of node classes below which no label is
// left out of the classes: iterating a few dozen entries costs a Rego
// policy nothing worth saving, and keeping every label lets more pods use
// the classes (see varyingLabels).
const maxClassesFloor = 32

// inventoryData is what policies see as data.podgate.inventory:
//
//	nodes          name -> {labels, taints, unschedulable}, as specified;
//	classes        [{node, count, first}]: the nodes grouped by taints (in
//	               order), unschedulable and labels, the labels in
//	               varyingLabels left out; node holds the facts the group
//	               shares, count how many nodes it stands for, first the
//	               smallest of their names; schedulable untainted classes
//	               first (byLikelyFit);
//	varyingLabels  label keys whose values set nodes apart
//	               (kubernetes.io/hostname), left out of the classes;
//	taints         every distinct taint of the inventory;
//	nodeCount      the number of nodes the classes were computed from.
//
// A decision that depends only on taints, unschedulable and labels outside
// varyingLabels is the same for every node of a class, so a policy that
// looks at every node (is there one that would run this pod?) iterates a
// few dozen classes instead of thousands of nodes. policies/lib/scheduling
// falls back to the nodes themselves when a pod names a node or a varying
// label, and when the classes are absent (opa test) or do not match the
// nodes (a test's `with data.podgate.inventory.nodes as ...`).
func inventoryData(nodes map[string]Node) map[string]any {
	return groupNodes(nodes, maxClassesFloor)
}

// inventoryValue is inventoryData as the ast.Value the engine keeps (for
// the next policy set) and the store holds, with every string interned:
// the nodes of a large cluster repeat the same label keys and values and
// the same taints, and converting them one by one made a 5,000-Node
// inventory almost three times larger (21 MB of heap instead of 8).
func inventoryValue(nodes map[string]Node) (ast.Value, error) {
	return toAST(inventoryData(nodes), map[string]*ast.Term{})
}

func toAST(v any, strs map[string]*ast.Term) (ast.Value, error) {
	t, err := toTerm(v, strs)
	if err != nil {
		return nil, err
	}
	return t.Value, nil
}

func toTerm(v any, strs map[string]*ast.Term) (*ast.Term, error) {
	switch x := v.(type) {
	case string:
		t, ok := strs[x]
		if !ok {
			t = ast.StringTerm(x)
			strs[x] = t
		}
		return t, nil
	case bool:
		return ast.InternedTerm(x), nil
	case int64:
		return ast.InternedTerm(int(x)), nil
	case []any:
		elems := make([]*ast.Term, len(x))
		for i, e := range x {
			t, err := toTerm(e, strs)
			if err != nil {
				return nil, err
			}
			elems[i] = t
		}
		return ast.ArrayTerm(elems...), nil
	case map[string]any:
		items := make([][2]*ast.Term, 0, len(x))
		for k, e := range x {
			t, err := toTerm(e, strs)
			if err != nil {
				return nil, err
			}
			key, _ := toTerm(k, strs)
			items = append(items, [2]*ast.Term{key, t})
		}
		return ast.ObjectTerm(items...), nil
	}
	return nil, fmt.Errorf("inventory: unexpected %T", v)
}

// groupNodes is inventoryData with the floor of varyingLabels as a
// parameter, so tests can force labels out of the classes.
func groupNodes(nodes map[string]Node, floor int) map[string]any {
	names := slices.Sorted(maps.Keys(nodes))
	varying := varyingLabels(nodes, names, floor)
	byKey := map[string]int{}
	var classes []any
	counts := []int{}
	seenTaint := map[Taint]bool{}
	taints := []any{}
	for _, name := range names {
		n := nodes[name]
		key := classKey(n, varying)
		i, ok := byKey[key]
		if !ok {
			i = len(classes)
			byKey[key] = i
			classes = append(classes, map[string]any{"node": nodeData(n, varying), "first": name})
			counts = append(counts, 0)
		}
		counts[i]++
		for _, t := range n.Taints {
			if !seenTaint[t] {
				seenTaint[t] = true
				taints = append(taints, taintData(t))
			}
		}
	}
	for i, c := range classes {
		c.(map[string]any)["count"] = int64(counts[i])
	}
	if classes == nil {
		classes = []any{}
	}
	slices.SortStableFunc(classes, byLikelyFit)
	out := make(map[string]any, len(nodes))
	for name, n := range nodes {
		out[name] = nodeData(n, nil)
	}
	return map[string]any{
		"nodes":         out,
		"classes":       classes,
		"varyingLabels": stringsData(slices.Sorted(maps.Keys(varying))),
		"taints":        taints,
		"nodeCount":     int64(len(nodes)),
	}
}

// byLikelyFit orders the classes as policies best search them for a node
// that fits a pod: the schedulable untainted ones first, which nearly every
// pod fits, the largest first; then the others, by their number of taints.
// A question like "does some node run this pod?" then stops at the first
// class for most pods. The order decides nothing else: policies count and
// name nodes by class.
func byLikelyFit(a, b any) int {
	x, y := a.(map[string]any), b.(map[string]any)
	return cmp.Or(cmp.Compare(blockers(x), blockers(y)), cmp.Compare(y["count"].(int64), x["count"].(int64)))
}

// blockers is how many taints a class's nodes have, counting cordoned as one.
func blockers(class map[string]any) int {
	node := class["node"].(map[string]any)
	n := len(node["taints"].([]any))
	if node["unschedulable"] == true {
		n++
	}
	return n
}

// varyingLabels picks the label keys to leave out of the classes: while
// there are more classes than max(floor, nodes/20), the key with
// the most distinct values goes. In a real cluster that is
// kubernetes.io/hostname (one value per node) and the classes drop from one
// per node to one per pool and zone. Which keys go only decides how fast a
// decision is, never what it is: a pod whose nodeSelector or node affinity
// names a varying key is matched against every node.
func varyingLabels(nodes map[string]Node, names []string, floor int) map[string]bool {
	values := map[string]map[string]bool{}
	for _, n := range nodes {
		for k, v := range n.Labels {
			if values[k] == nil {
				values[k] = map[string]bool{}
			}
			values[k][v] = true
		}
	}
	keys := slices.SortedFunc(maps.Keys(values), func(a, b string) int {
		return cmp.Or(cmp.Compare(len(values[b]), len(values[a])), cmp.Compare(a, b))
	})
	limit := max(floor, len(nodes)/20)
	varying := map[string]bool{}
	for _, k := range keys {
		if countClasses(nodes, names, varying) <= limit || len(values[k]) < 2 {
			break
		}
		varying[k] = true
	}
	return varying
}

func countClasses(nodes map[string]Node, names []string, varying map[string]bool) int {
	seen := make(map[string]bool)
	for _, name := range names {
		seen[classKey(nodes[name], varying)] = true
	}
	return len(seen)
}

// classKey identifies a node's class: its labels outside varying (sorted),
// its taints in order and unschedulable, each part quoted so that no two
// classes share a key.
func classKey(n Node, varying map[string]bool) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
		if !varying[k] {
			b.WriteString(strconv.Quote(k))
			b.WriteByte('=')
			b.WriteString(strconv.Quote(n.Labels[k]))
		}
	}
	b.WriteByte('|')
	for _, t := range n.Taints {
		b.WriteString(strconv.Quote(t.Key))
		b.WriteString(strconv.Quote(t.Value))
		b.WriteString(strconv.Quote(t.Effect))
	}
	b.WriteByte('|')
	b.WriteString(strconv.FormatBool(n.Unschedulable))
	return b.String()
}

// nodeData is a node's facts as Rego data, without the labels in leave.
func nodeData(n Node, leave map[string]bool) map[string]any {
	labels := make(map[string]any, len(n.Labels))
	for k, v := range n.Labels {
		if !leave[k] {
			labels[k] = v
		}
	}
	taints := make([]any, len(n.Taints))
	for i, t := range n.Taints {
		taints[i] = taintData(t)
	}
	return map[string]any{"labels": labels, "taints": taints, "unschedulable": n.Unschedulable}
}

func taintData(t Taint) map[string]any {
	return map[string]any{"key": t.Key, "value": t.Value, "effect": t.Effect}
}

func stringsData(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
