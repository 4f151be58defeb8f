package schedcheck

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The pools layouts and pods draw from: few enough values that pods and
// nodes often match, and sometimes narrowly miss.
var (
	taintKeys   = []string{"dedicated", "team", "spot", "node-role.kubernetes.io/control-plane"}
	taintValues = []string{"", "gpu", "infra"}
	effects     = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute, corev1.TaintEffectPreferNoSchedule}
	labelValues = map[string][]string{"zone": {"a", "b", "c"}, "disktype": {"ssd", "hdd"}, "cores": {"2", "8", "32"}, "gpu": {"true"}}
	labelKeys   = []string{"zone", "disktype", "cores", "gpu"}
	// levelKey is a taint with numeric values, for Gt and Lt tolerations
	// (the cluster runs TaintTolerationComparisonOperators).
	levelKey         = "level"
	levelValues      = []string{"0", "3", "10", "25"} // a taint value cannot start with a minus
	levelTolerations = []string{"-1", "2", "3", "9", "11"}
)

// node is a Node of a layout: name, labels, taints, cordoned.
func node(name string, labels map[string]string, cordoned bool, taints ...corev1.Taint) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}}}
	for k, v := range labels {
		n.Labels[k] = v
	}
	n.Spec.Taints, n.Spec.Unschedulable = taints, cordoned
	return n
}

func taint(key, value string, effect corev1.TaintEffect) corev1.Taint {
	return corev1.Taint{Key: key, Value: value, Effect: effect}
}

// randomLayout is 5 Nodes with 0 to 2 taints each, some labels, and one
// in five cordoned.
func randomLayout(r *rand.Rand, prefix string) []*corev1.Node {
	var nodes []*corev1.Node
	for i := range 5 {
		nodes = append(nodes, randomNode(r, fmt.Sprintf("%sn%d", prefix, i), 3, 5, func() corev1.Taint { return randomTaint(r, effects) }))
	}
	return nodes
}

// randomNode is a Node with some labels of the pools, 0 to maxTaints-1
// taints from newTaint (of distinct key and effect, as the API server
// requires), cordoned one time in cordonOneIn.
func randomNode(r *rand.Rand, name string, maxTaints, cordonOneIn int, newTaint func() corev1.Taint) *corev1.Node {
	labels := map[string]string{}
	for _, k := range labelKeys {
		if vs := labelValues[k]; r.IntN(3) > 0 {
			labels[k] = vs[r.IntN(len(vs))]
		}
	}
	var taints []corev1.Taint
	seen := map[string]bool{}
	for range r.IntN(maxTaints) {
		t := newTaint()
		if id := t.Key + ":" + string(t.Effect); !seen[id] {
			seen[id] = true
			taints = append(taints, t)
		}
	}
	return node(name, labels, r.IntN(cordonOneIn) == 0, taints...)
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// randomTaint is one taint of the pools, one in four a numeric level.
func randomTaint(r *rand.Rand, effects []corev1.TaintEffect) corev1.Taint {
	if r.IntN(4) == 0 {
		return taint(levelKey, pick(r, levelValues), pick(r, effects))
	}
	return taint(pick(r, taintKeys), pick(r, taintValues), pick(r, effects))
}

// randomPodSpec is a pod spec with 0 to 3 tolerations, 0 to 2 nodeSelector
// entries and, one time in two, 1 or 2 required node affinity terms, over
// the pools and the layout's node names.
func randomPodSpec(r *rand.Rand, nodeNames []string) corev1.PodSpec {
	var spec corev1.PodSpec
	for range r.IntN(4) {
		spec.Tolerations = append(spec.Tolerations, randomToleration(r))
	}
	if n := r.IntN(4) - 1; n > 0 {
		spec.NodeSelector = map[string]string{}
		for range n {
			k := pick(r, labelKeys)
			spec.NodeSelector[k] = pick(r, labelValues[k])
		}
	}
	if r.IntN(2) == 0 {
		var terms []corev1.NodeSelectorTerm
		for range 1 + r.IntN(2) {
			terms = append(terms, randomTerm(r, nodeNames))
		}
		spec.Affinity = requiredAffinity(terms...)
	}
	return spec
}

// randomToleration keeps to what the API server accepts: an empty key
// needs Exists, Exists takes no value, Gt and Lt a decimal integer. One in
// five compares the numeric level.
func randomToleration(r *rand.Rand) corev1.Toleration {
	if r.IntN(5) == 0 {
		t := corev1.Toleration{Key: levelKey, Operator: pick(r, []corev1.TolerationOperator{corev1.TolerationOpGt, corev1.TolerationOpLt}), Value: pick(r, levelTolerations)}
		if r.IntN(3) > 0 {
			t.Effect = pick(r, effects)
		}
		return t
	}
	t := corev1.Toleration{Operator: pick(r, []corev1.TolerationOperator{"", corev1.TolerationOpEqual, corev1.TolerationOpExists})}
	if r.IntN(8) > 0 {
		t.Key = pick(r, append(taintKeys, "other"))
	}
	if t.Key == "" {
		t.Operator = corev1.TolerationOpExists
	}
	if t.Operator != corev1.TolerationOpExists {
		t.Value = pick(r, append(taintValues, "x"))
	}
	if r.IntN(3) > 0 {
		t.Effect = pick(r, effects)
	}
	return t
}

func randomTerm(r *rand.Rand, nodeNames []string) corev1.NodeSelectorTerm {
	var term corev1.NodeSelectorTerm
	if r.IntN(6) == 0 {
		op := pick(r, []corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn})
		term.MatchFields = []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: op, Values: []string{pick(r, nodeNames)}}}
	}
	for range 1 + r.IntN(2) {
		term.MatchExpressions = append(term.MatchExpressions, randomRequirement(r))
	}
	return term
}

func randomRequirement(r *rand.Rand) corev1.NodeSelectorRequirement {
	ops := []corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists,
		corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt}
	req := corev1.NodeSelectorRequirement{Key: pick(r, labelKeys), Operator: pick(r, ops)}
	switch req.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		vs := labelValues[req.Key]
		req.Values = []string{pick(r, vs)}
		if r.IntN(2) == 0 {
			req.Values = append(req.Values, pick(r, vs))
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		req.Key = "cores"
		req.Values = []string{strconv.Itoa(pick(r, []int{1, 2, 4, 8, 16, 32, 64}))}
	}
	return req
}

func requiredAffinity(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
	}}
}
