# METADATA
# title: Explain library tests
# description: |
#   The filters' reasons, and the TaintToleration and NodeAffinity scores
#   normalized and weighted as kube-scheduler's default profile does.
package podgate.lib.explain_test

import data.podgate.lib.explain
import data.podgate.lib.testing

pod(spec) := {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": object.union({"containers": [{"name": "c", "image": "nginx:1.27.2"}]}, spec)}

result(obj, nodes) := r if {
	r := explain.result with input as {"request": testing.request({"object": obj})}
		with data.podgate.inventory.nodes as nodes
}

by_name(obj, nodes) := {n.name: n | some n in result(obj, nodes).nodes}

node(labels, taints) := {"labels": labels, "taints": taints, "unschedulable": false}

soft(key) := {"key": key, "effect": "PreferNoSchedule"}

scored := {
	"n1": node({"zone": "a"}, [soft("a")]),
	"n2": node({"disk": "ssd"}, [soft("a"), soft("b")]),
	"n3": node({"zone": "a", "disk": "ssd"}, []),
}

preferred := {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
	{"weight": 30, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
	{"weight": 70, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}},
]}}}

scores(n) := {s.plugin: [s.raw, s.normalized, s.weight] | some s in n.scores}

test_scores_are_normalized_weighted_and_ranked_as_the_default_profile if {
	got := by_name(pod(preferred), scored)
	scores(got.n1) == {"TaintToleration": [1, 50, 3], "NodeAffinity": [30, 30, 2]}
	scores(got.n2) == {"TaintToleration": [2, 0, 3], "NodeAffinity": [70, 70, 2]}
	scores(got.n3) == {"TaintToleration": [0, 100, 3], "NodeAffinity": [100, 100, 2]}
	[got.n1.score, got.n2.score, got.n3.score] == [210, 140, 500]
	[got.n1.rank, got.n2.rank, got.n3.rank] == [2, 3, 1]
}

test_normalization_divides_as_integers if {
	three := {"m": node({}, [soft("a"), soft("b"), soft("c")]), "o": node({}, [soft("a")]), "z": node({}, [])}
	got := by_name(pod({}), three)
	[got.m.score, got.o.score, got.z.score] == [0, 3 * 67, 300] # 100 - 100*1/3 = 67
	weights := {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
		{"weight": 1, "preference": {"matchExpressions": [{"key": "k", "operator": "Exists"}]}},
		{"weight": 2, "preference": {"matchExpressions": [{"key": "j", "operator": "Exists"}]}},
	]}}}
	split := {"k": node({"k": "1"}, []), "j": node({"j": "1"}, []), "kj": node({"k": "1", "j": "1"}, [])}
	by := by_name(pod(weights), split)
	[by.k.score, by.j.score, by.kj.score] == [300 + (2 * 33), 300 + (2 * 66), 300 + (2 * 100)]
}

test_no_soft_taints_and_no_preferred_terms_tie_every_node if {
	got := by_name(pod({}), {"a": node({}, []), "b": node({"x": "y"}, [])})
	got.a.score == 300
	got.b.score == 300
	got.a.rank == 1
	got.b.rank == 1
}

test_only_tolerations_for_prefer_no_schedule_or_every_effect_lower_the_count if {
	nodes := {"t": node({}, [soft("spot")]), "u": node({}, [])}
	no_schedule_only := by_name(pod({"tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]}), nodes)
	no_schedule_only.t.score == 0
	every_effect := by_name(pod({"tolerations": [{"key": "spot", "operator": "Exists"}]}), nodes)
	every_effect.t.score == 300
}

test_nodes_that_do_not_fit_are_not_scored_and_do_not_normalize if {
	nodes := {
		"tainted": node({}, [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, soft("a"), soft("b")]),
		"one": node({}, [soft("a")]),
		"none": node({}, []),
	}
	got := by_name(pod({}), nodes)
	got.tainted.fits == false
	not got.tainted.score
	got.one.score == 0 # max over the fitting nodes is 1
	got.none.score == 300
}

test_reasons_name_each_failing_filter_in_the_scheduler_order if {
	cordoned := {"labels": {"zone": "a"}, "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}, {"key": "dedicated", "value": "gpu", "effect": "NoExecute"}], "unschedulable": true}
	spec := {
		"nodeSelector": {"gpu": "true", "zone": "a"},
		"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
			{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b", "c"]}]},
			{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["other"]}]},
			{},
		]}}},
		"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}],
	}
	got := by_name(pod(spec), {"old": cordoned})
	got.old.reasons == [
		"NodeUnschedulable: the node is cordoned and the pods do not tolerate node.kubernetes.io/unschedulable:NoSchedule",
		"TaintToleration: untolerated taints node.kubernetes.io/unschedulable:NoSchedule, dedicated=gpu:NoExecute",
		"NodeAffinity: nodeSelector gpu=true, zone=a does not match: the node has no label gpu",
		"NodeAffinity: no term of the required node affinity matches: term 0: zone In [b, c] (the node has zone=a); term 1: metadata.name In [other] (the node is old); term 2 is empty and matches no node",
		"PodTopologySpread: the node has no label topology.kubernetes.io/zone, the topologyKey of a DoNotSchedule topologySpreadConstraint (missing required label)",
	]
}

test_a_pod_naming_its_node_is_checked_there_only if {
	nodes := {"a": node({}, [{"key": "k", "effect": "NoSchedule"}]), "b": node({}, [])}
	got := by_name(pod({"nodeName": "a"}), nodes)
	got.a.fits == true
	got.b.reasons == ["NodeName: the pod names node a"]
	result(pod({"nodeName": "a"}), nodes).nodeName == "a"
}

test_gt_tolerations_fit_and_score_only_with_the_feature_gate if {
	nodes := {"big": node({}, [{"key": "cores", "value": "64", "effect": "NoSchedule"}, {"key": "cores", "value": "64", "effect": "PreferNoSchedule"}])}
	obj := pod({"tolerations": [{"key": "cores", "operator": "Gt", "value": "16"}]})
	by_name(obj, nodes).big.fits == false
	gated := by_name(obj, nodes) with data.podgate.config.policies.tolerations.comparisonOperators as true
	gated.big.fits == true
	gated.big.scores[0].raw == 0
}

test_a_term_missing_several_requirements_names_the_first if {
	spec := {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
		{"key": "cores", "operator": "Exists"},
		{"key": "gpu", "operator": "DoesNotExist"},
	]}]}}}}
	got := by_name(pod(spec), {"n": node({"gpu": "true"}, [])})
	got.n.reasons == ["NodeAffinity: no term of the required node affinity matches: term 0: cores Exists (the node has no label cores)"]
}

# Every testdata case of the tolerations and placement policies: a node
# fits exactly when explain finds no reason against it.
test_a_node_fits_exactly_when_no_filter_fails_it if {
	every policy in ["tolerations", "placement"] {
		every c in data[policy].testdata {
			r := explain.result with input as {"request": testing.request(c)}
				with data.podgate.inventory.nodes as testing.nodes(c)
			every n in r.nodes {
				consistent(n)
			}
		}
	}
}

consistent(n) if {
	n.fits
	count(n.reasons) == 0
}

consistent(n) if {
	not n.fits
	count(n.reasons) > 0
}
