package schedcheck

import (
	corev1 "k8s.io/api/core/v1"
)

const (
	noSchedule = corev1.TaintEffectNoSchedule
	noExecute  = corev1.TaintEffectNoExecute
	prefer     = corev1.TaintEffectPreferNoSchedule
	controlKey = "node-role.kubernetes.io/control-plane"
)

// notesLayout is the source notes' cluster: a tainted control plane, a
// plain worker, a GPU worker tainted dedicated=gpu:NoSchedule, a cordoned
// worker.
func notesLayout(p string) []*corev1.Node {
	return []*corev1.Node{
		node(p+"control-plane", map[string]string{controlKey: "", "zone": "a"}, false, taint(controlKey, "", noSchedule)),
		node(p+"worker-1", map[string]string{"zone": "a", "disktype": "hdd", "cores": "8"}, false),
		node(p+"worker-2", map[string]string{"zone": "b", "gpu": "true", "cores": "32"}, false, taint("dedicated", "gpu", noSchedule)),
		node(p+"worker-3", map[string]string{"zone": "c", "disktype": "ssd", "cores": "2"}, true),
	}
}

// taintedLayout has no node that takes a pod without tolerations: every
// effect, taints with and without values, a numeric one for Gt and Lt, a
// cordoned node with a taint.
func taintedLayout(p string) []*corev1.Node {
	return []*corev1.Node{
		node(p+"gpu", map[string]string{"zone": "a", "gpu": "true", "cores": "32"}, false, taint("dedicated", "gpu", noSchedule)),
		node(p+"infra", map[string]string{"zone": "b", "cores": "8"}, false, taint("dedicated", "infra", noExecute)),
		node(p+"team", map[string]string{"zone": "c", "disktype": "ssd"}, false,
			taint("team", "", noSchedule), taint("spot", "gpu", prefer)),
		node(p+"cordoned", map[string]string{"zone": "a", "disktype": "hdd", "cores": "2"}, true, taint("dedicated", "gpu", noSchedule)),
		node(p+"spot", map[string]string{"zone": "b", "cores": "16"}, false,
			taint("spot", "", noExecute), taint("spot", "", noSchedule)),
		node(p+"level", map[string]string{"zone": "c", "cores": "8"}, false, taint(levelKey, "10", noSchedule)),
	}
}

// tableCase is a hand-written pod spec, run on every layout.
type tableCase struct {
	name string
	spec func(nodeNames []string) corev1.PodSpec
}

func tolerations(ts ...corev1.Toleration) func([]string) corev1.PodSpec {
	return func([]string) corev1.PodSpec { return corev1.PodSpec{Tolerations: ts} }
}

func tol(key string, op corev1.TolerationOperator, value string, effect corev1.TaintEffect) corev1.Toleration {
	return corev1.Toleration{Key: key, Operator: op, Value: value, Effect: effect}
}

func expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func affinity(exprs ...corev1.NodeSelectorRequirement) func([]string) corev1.PodSpec {
	return func([]string) corev1.PodSpec {
		return corev1.PodSpec{Affinity: requiredAffinity(corev1.NodeSelectorTerm{MatchExpressions: exprs})}
	}
}

func selector(kv ...string) func([]string) corev1.PodSpec {
	return func([]string) corev1.PodSpec {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return corev1.PodSpec{NodeSelector: m}
	}
}

const (
	exists = corev1.TolerationOpExists
	equal  = corev1.TolerationOpEqual
)

// table is the hand-written cases: each toleration form against each taint
// form, selectors and affinities that pick one node, and their mixes.
var table = []tableCase{
	{"no constraints", func([]string) corev1.PodSpec { return corev1.PodSpec{} }},
	{"tolerates dedicated=gpu:NoSchedule", tolerations(tol("dedicated", equal, "gpu", noSchedule))},
	{"tolerates dedicated=gpu with no operator", tolerations(tol("dedicated", "", "gpu", noSchedule))},
	{"tolerates dedicated=gpu for every effect", tolerations(tol("dedicated", equal, "gpu", ""))},
	{"tolerates dedicated with the wrong value", tolerations(tol("dedicated", equal, "gpus", noSchedule))},
	{"tolerates dedicated Exists", tolerations(tol("dedicated", exists, "", ""))},
	{"tolerates dedicated for NoExecute only", tolerations(tol("dedicated", exists, "", noExecute))},
	{"tolerates the control plane", tolerations(tol(controlKey, exists, "", noSchedule))},
	{"tolerates everything", tolerations(tol("", exists, "", ""))},
	{"tolerates every NoSchedule taint", tolerations(tol("", exists, "", noSchedule))},
	{"tolerates unschedulable", tolerations(tol(corev1.TaintNodeUnschedulable, exists, "", noSchedule))},
	{"tolerates unschedulable and dedicated=gpu", tolerations(tol(corev1.TaintNodeUnschedulable, exists, "", noSchedule), tol("dedicated", equal, "gpu", noSchedule))},
	{"tolerates team and spot", tolerations(tol("team", exists, "", ""), tol("spot", exists, "", ""))},
	{"tolerates spot NoSchedule but not NoExecute", tolerations(tol("spot", exists, "", noSchedule))},
	{"tolerates a PreferNoSchedule taint only", tolerations(tol("spot", exists, "", prefer))},
	{"tolerates a typo", tolerations(tol("dedicatd", equal, "gpu", noSchedule))},
	{"tolerates level Gt 3", tolerations(tol(levelKey, corev1.TolerationOpGt, "3", noSchedule))},
	{"tolerates level Gt 10: equal is not greater", tolerations(tol(levelKey, corev1.TolerationOpGt, "10", ""))},
	{"tolerates level Lt 11 for every effect", tolerations(tol(levelKey, corev1.TolerationOpLt, "11", ""))},
	{"tolerates level Lt 3", tolerations(tol(levelKey, corev1.TolerationOpLt, "3", noSchedule))},
	{"selects gpu=true", selector("gpu", "true")},
	{"selects gpu=true and tolerates it", func([]string) corev1.PodSpec {
		return corev1.PodSpec{NodeSelector: map[string]string{"gpu": "true"}, Tolerations: []corev1.Toleration{tol("dedicated", equal, "gpu", noSchedule)}}
	}},
	{"selects disktype=ssd", selector("disktype", "ssd")},
	{"selects a label no node has", selector("disktype", "nvme")},
	{"affinity zone In b, c", affinity(expr("zone", corev1.NodeSelectorOpIn, "b", "c"))},
	{"affinity zone NotIn a", affinity(expr("zone", corev1.NodeSelectorOpNotIn, "a"))},
	{"affinity disktype DoesNotExist", affinity(expr("disktype", corev1.NodeSelectorOpDoesNotExist))},
	{"affinity gpu Exists", affinity(expr("gpu", corev1.NodeSelectorOpExists))},
	{"affinity cores Gt 8", affinity(expr("cores", corev1.NodeSelectorOpGt, "8"))},
	{"affinity cores Lt 8", affinity(expr("cores", corev1.NodeSelectorOpLt, "8"))},
	{"affinity cores Gt 008", affinity(expr("cores", corev1.NodeSelectorOpGt, "008"))},
	{"affinity matchFields the first node", func(names []string) corev1.PodSpec {
		return corev1.PodSpec{Affinity: requiredAffinity(corev1.NodeSelectorTerm{
			MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, names[0])}})}
	}},
	{"affinity matchFields not the second node, tolerating everything", func(names []string) corev1.PodSpec {
		return corev1.PodSpec{Tolerations: []corev1.Toleration{tol("", exists, "", "")}, Affinity: requiredAffinity(corev1.NodeSelectorTerm{
			MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpNotIn, names[1])}})}
	}},
	{"affinity of two terms, either zone c or gpu", func([]string) corev1.PodSpec {
		return corev1.PodSpec{Affinity: requiredAffinity(
			corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", corev1.NodeSelectorOpIn, "c")}},
			corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("gpu", corev1.NodeSelectorOpExists)}})}
	}},
}
