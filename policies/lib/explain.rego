# METADATA
# title: Explain library
# description: |
#   What `podgate explain` shows for one object (input.request): for every
#   node of the inventory whether the object's pods fit and, when not, which
#   of kube-scheduler's filters reject it and why; for the nodes that fit,
#   the scores of the default profile's TaintToleration and NodeAffinity
#   plugins, normalized and weighted as kube-scheduler does, and their rank.
#   The engine evaluates `result` (engine.Explain).
package podgate.lib.explain

# Sources mirrored here (k8s.io/kubernetes pkg/scheduler):
# - the filters of the default profile, in its order, with the node fit of
#   tolerations/schedulable (scheduling.rejection and its parts):
#   NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, and
#   PodTopologySpread's missing topology key (topology.missing_keys);
# - TaintToleration.Score: the node's PreferNoSchedule taints that no
#   toleration with effect PreferNoSchedule or none tolerates; normalized by
#   helper.DefaultNormalizeScore(100, reverse=true): 100 - 100*n/max, all 100
#   when no node has one;
# - NodeAffinity.Score: the sum of the weights of the preferred terms the
#   node matches (weight 0 and empty terms skipped); normalized by
#   DefaultNormalizeScore(100, reverse=false): 100*n/max, all 0 when max is 0;
# - the default profile's weights (apis/config/v1/default_plugins.go):
#   TaintToleration 3, NodeAffinity 2. Both normalize over the nodes that
#   fit, with integer division.

import data.podgate.lib.scheduling
import data.podgate.lib.text
import data.podgate.lib.topology
import data.podgate.lib.workload

max_node_score := 100

taint_toleration_weight := 3

node_affinity_weight := 2

spec := workload.pod_spec

kind := workload.kind

tolerations := scheduling.effective_tolerations(kind, spec)

nodes := scheduling.nodes

result := {
	"kind": kind,
	"replicas": object.get(workload.obj, ["spec", "replicas"], 1),
	"nodeName": object.get(spec, "nodeName", ""),
	"nodes": [node_result(name) | some name in sort(object.keys(nodes))],
}

node_result(name) := {"name": name, "fits": false, "reasons": failures[name]} if {
	not name in fitting
} else := {
	"name": name, "fits": true, "reasons": [],
	"scores": [
		{"plugin": "TaintToleration", "raw": raw_taints[name], "normalized": taint_scores[name], "weight": taint_toleration_weight},
		{"plugin": "NodeAffinity", "raw": raw_affinity[name], "normalized": affinity_scores[name], "weight": node_affinity_weight},
	],
	"score": total[name],
	"rank": 1 + count({other | some other in fitting; total[other] > total[name]}),
}

# --- filters ------------------------------------------------------------------

# failures[name]: why the pods do not fit node name, one line per failing
# filter in the scheduler's order (the first is the one kube-scheduler
# reports); empty when they fit.
failures[name] := node_failures(name, node) if some name, node in nodes

# fitting: the nodes the pods fit, by scheduling.rejection, the fit of
# the policies (and PodTopologySpread's topology keys); failures only say
# why the others do not.
fitting := {name |
	some name, node in scheduling.candidates(spec, nodes)
	not scheduling.rejection(spec, tolerations, name, node)
	carries_spread_keys(scheduling.node_labels(node))
}

carries_spread_keys(_) if scheduling.bound(spec)

carries_spread_keys(labels) if topology.carries_hard_keys(spec, labels)

node_failures(name, node) := [sprintf("NodeName: the pod names node %s", [spec.nodeName])] if {
	scheduling.bound(spec)
	spec.nodeName != name
} else := [line |
	labels := scheduling.node_labels(node)
	some part in [
		unschedulable_failure(node),
		taint_failure(node),
		selector_failure(labels),
		affinity_failure(name, labels),
		spread_failure(labels),
	]
	some line in part
]

unschedulable_failure(node) := ["NodeUnschedulable: the node is cordoned and the pods do not tolerate node.kubernetes.io/unschedulable:NoSchedule"] if {
	not scheduling.bound(spec)
	object.get(node, "unschedulable", false) == true
	not scheduling.tolerated(tolerations, {"key": scheduling.taint_unschedulable, "effect": "NoSchedule"})
} else := []

taint_failure(node) := [sprintf("TaintToleration: untolerated %s %s", [text.plural(count(texts), "taint", "taints"), concat(", ", texts)])] if {
	effects := scheduling.blocking_effects(spec)
	texts := [scheduling.taint_text(t) |
		some t in scheduling.node_taints(node)
		object.get(t, "effect", "") in effects
		not scheduling.tolerated(tolerations, t)
	]
	count(texts) > 0
} else := []

selector_failure(labels) := [sprintf("NodeAffinity: nodeSelector %s does not match: %s", [
	concat(", ", [sprintf("%s=%s", [k, v]) | some k, v in selector]),
	concat(", ", [has_text(k, labels) | some k, v in selector; not labels[k] == v]),
])] if {
	selector := object.get(spec, "nodeSelector", {})
	not scheduling.selector_matches(selector, labels)
} else := []

affinity_failure(name, labels) := [sprintf("NodeAffinity: no term of the required node affinity matches: %s", [
	concat("; ", [term_miss(i, term, name, labels) | some i, term in scheduling.required_terms(spec)]),
])] if {
	not scheduling.affinity_matches(spec, name, labels)
} else := []

spread_failure(labels) := [sprintf("PodTopologySpread: the node has no label %s, the topologyKey of a DoNotSchedule topologySpreadConstraint (missing required label)", [
	concat(", ", missing),
])] if {
	not scheduling.bound(spec)
	missing := topology.missing_keys(spec, labels)
	count(missing) > 0
} else := []

# term_miss: why required term i does not match, at its first unmet
# requirement.
term_miss(i, term, name, labels) := sprintf("term %d is empty and matches no node", [i]) if {
	count(scheduling.list(object.get(term, "matchExpressions", []))) + count(scheduling.list(object.get(term, "matchFields", []))) == 0
} else := sprintf("term %d: %s (%s)", [i, requirement_text(misses[0]), has_text(misses[0].key, labels)]) if {
	misses := [e | some e in scheduling.list(object.get(term, "matchExpressions", [])); not scheduling.expression_matches(e, labels)]
	count(misses) > 0
} else := sprintf("term %d: %s (the node is %s)", [i, requirement_text(misses[0]), name]) if {
	misses := [f | some f in scheduling.list(object.get(term, "matchFields", [])); not scheduling.field_matches(f, name)]
	count(misses) > 0
}

requirement_text(e) := sprintf("%s %s [%s]", [e.key, e.operator, concat(", ", [sprintf("%v", [v]) | some v in scheduling.list(object.get(e, "values", []))])]) if {
	count(scheduling.list(object.get(e, "values", []))) > 0
} else := sprintf("%s %s", [e.key, e.operator])

has_text(key, labels) := sprintf("the node has %s=%s", [key, labels[key]]) if {
	topology.has_label(labels, key)
} else := sprintf("the node has no label %s", [key])

# --- scores -------------------------------------------------------------------

# prefer_tolerations: the tolerations TaintToleration.PreScore keeps.
prefer_tolerations := [t | some t in tolerations; object.get(t, "effect", "") in {"", "PreferNoSchedule"}]

raw_taints[name] := count([t |
	some t in scheduling.node_taints(nodes[name])
	object.get(t, "effect", "") == "PreferNoSchedule"
	not scheduling.tolerated(prefer_tolerations, t)
]) if {
	some name in fitting
}

preferred_terms := scheduling.list(object.get(spec, ["affinity", "nodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution"], []))

raw_affinity[name] := sum([w |
	some term in preferred_terms
	w := object.get(term, "weight", 0)
	w != 0
	scheduling.term_matches(object.get(term, "preference", {}), name, scheduling.node_labels(nodes[name]))
]) if {
	some name in fitting
}

max_raw(raws) := max([n | some n in raws]) if count(raws) > 0

max_raw(raws) := 0 if count(raws) == 0

# quotient: integer division of non-negative integers, as Go's int64 does.
quotient(a, b) := (a - (a % b)) / b

taint_scores[name] := max_node_score if {
	some name in fitting
	max_raw(raw_taints) == 0
}

taint_scores[name] := max_node_score - quotient(max_node_score * raw, top) if {
	top := max_raw(raw_taints)
	top > 0
	some name, raw in raw_taints
}

affinity_scores[name] := 0 if {
	some name in fitting
	max_raw(raw_affinity) == 0
}

affinity_scores[name] := quotient(max_node_score * raw, top) if {
	top := max_raw(raw_affinity)
	top > 0
	some name, raw in raw_affinity
}

total[name] := (taint_toleration_weight * taint_scores[name]) + (node_affinity_weight * affinity_scores[name]) if some name in fitting
