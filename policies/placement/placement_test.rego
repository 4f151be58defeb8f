# METADATA
# title: Placement policy tests
# description: |
#   Pins down the messages of testdata cases (which `podgate test` judges),
#   and the kinds, the configuration and the scheduler semantics the
#   rules follow with small inline objects.
package podgate.policies.placement_test

import data.podgate.lib.testing
import data.podgate.policies.placement

# --- messages of testdata cases ----------------------------------------------

cases := data.placement.testdata

case_violations(c) := vs if {
	vs := placement.violation with input as {"request": testing.request(c)}
		with data.podgate.inventory.nodes as testing.nodes(c)
}

the_violation(name, rule) := v if {
	some v in case_violations(cases[name])
	v.rule == rule
}

test_single_node_names_the_node_and_why_the_others_are_out if {
	v := the_violation("nginx-deployment-from-the-notes-fits-one-node", "single-node")
	v.msg == concat("", [
		"all 3 replicas fit only node worker-1: of the other 3 nodes, ",
		"1 has untolerated taint node-role.kubernetes.io/control-plane:NoSchedule, 1 has untolerated taint dedicated=gpu:NoSchedule, 1 is cordoned; ",
		"one failure or drain of worker-1 takes every replica down; ",
		"tolerate a listed taint if the pods belong on those nodes, uncordon a node, or add nodes the pods fit",
	])
	v.field == "spec.template.spec.tolerations"
}

test_unsatisfiable_counts_the_pending_replicas_of_an_anti_affinity if {
	v := the_violation("anti-affinity-more-replicas-than-nodes", "unsatisfiable")
	v.msg == concat("", [
		"required pod anti-affinity on kubernetes.io/hostname against its own pods allows one pod per node, and the pods fit 2 nodes: ",
		"3 of 5 replicas stay Pending; lower replicas to 2, make the anti-affinity preferredDuringSchedulingIgnoredDuringExecution, or let the pods onto more nodes",
	])
	v.field == "spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
}

test_unsatisfiable_names_the_missing_topology_key if {
	v := the_violation("zone-spread-on-nodes-without-zones", "unsatisfiable")
	startswith(v.msg, "no node the pods fit carries every topologyKey of their DoNotSchedule topologySpreadConstraints (topology.kubernetes.io/zone)")
	contains(v.msg, ": all 2 replicas stay Pending; ")
	v.field == "spec.template.spec.topologySpreadConstraints"
}

test_unsatisfiable_explains_a_domain_the_pods_never_reach if {
	v := the_violation("hostname-spread-counting-a-tainted-node", "unsatisfiable")
	startswith(v.msg, concat("", [
		"topologySpreadConstraints[0] (topologyKey kubernetes.io/hostname, maxSkew 2, DoNotSchedule) counts 2 nodes but the pods fit only 1: ",
		"the other 1 never gets a pod, so each one the pods fit takes at most 2: 2 of 4 replicas stay Pending; ",
	]))
	v.field == "spec.template.spec.topologySpreadConstraints[0]"
}

test_spread_gives_the_lines_to_add if {
	v := the_violation("deployment-with-nothing-to-spread-it", "spread")
	contains(v.msg, "topologySpreadConstraints: [{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: api}}}]")
	v.field == "spec.template.spec.topologySpreadConstraints"
}

# --- helpers ----------------------------------------------------------------

containers := [{"name": "app", "image": "nginx:1.27.2"}]

deployment(replicas, pod_spec) := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "web", "namespace": "default"},
	"spec": {
		"replicas": replicas,
		"selector": {"matchLabels": {"app": "web"}},
		"template": {"metadata": {"labels": {"app": "web", "tier": "front"}}, "spec": object.union({"containers": containers}, pod_spec)},
	},
}

with_kind(obj, kind, api_version) := object.union(obj, {"kind": kind, "apiVersion": api_version})

violations(obj, nodes) := vs if {
	vs := placement.violation with input as {"request": testing.request({"object": obj})}
		with data.podgate.inventory.nodes as nodes
}

rules(obj, nodes) := testing.rules(violations(obj, nodes))

messages(obj, nodes) := {v.msg | some v in violations(obj, nodes)}

node(name, labels, taints) := {"labels": object.union({"kubernetes.io/hostname": name}, labels), "taints": taints, "unschedulable": false}

gpu_taint := {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}

# three plain workers in zones a, b, b and a tainted GPU node in zone c
cluster := {
	"w1": node("w1", {"topology.kubernetes.io/zone": "a"}, []),
	"w2": node("w2", {"topology.kubernetes.io/zone": "b"}, []),
	"w3": node("w3", {"topology.kubernetes.io/zone": "b"}, []),
	"gpu": node("gpu", {"topology.kubernetes.io/zone": "c"}, [gpu_taint]),
}

hostname_spread(policy) := {"topologySpreadConstraints": [object.union(
	{
		"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
		"labelSelector": {"matchLabels": {"app": "web"}},
	},
	policy,
)]}

anti_affinity(key, selector) := {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": key, "labelSelector": selector}]}}}

own := {"matchLabels": {"app": "web"}}

# --- single-node --------------------------------------------------------------

test_single_node_needs_two_replicas_and_two_nodes if {
	one_fits := {"w1": cluster.w1, "gpu": cluster.gpu}
	rules(deployment(2, {}), one_fits) == {"single-node"}
	rules(deployment(1, {}), one_fits) == set()
	rules(deployment(2, {}), {"w1": cluster.w1}) == set() # a one-node cluster has nothing to fix
	rules(deployment(2, {}), {}) == set()
}

test_single_node_covers_statefulsets_and_replicasets_not_daemonsets if {
	one_fits := {"w1": cluster.w1, "gpu": cluster.gpu}
	rules(with_kind(deployment(2, {}), "StatefulSet", "apps/v1"), one_fits) == {"single-node"}
	rules(with_kind(deployment(2, {}), "ReplicaSet", "apps/v1"), one_fits) == {"single-node"}
	rules(with_kind(deployment(2, {}), "DaemonSet", "apps/v1"), one_fits) == set()
}

test_node_name_in_the_template_pins_every_replica if {
	vs := violations(deployment(3, {"nodeName": "w2"}), cluster)
	[v] := [v | some v in vs]
	v.rule == "single-node"
	v.field == "spec.template.spec.nodeName"
	startswith(v.msg, "nodeName pins all 3 replicas to node w2")
}

test_a_node_selector_that_picks_one_node_points_at_the_selector if {
	vs := violations(deployment(2, {"nodeSelector": {"topology.kubernetes.io/zone": "a"}}), cluster)
	[v] := [v | some v in vs]
	v.field == "spec.template.spec.nodeSelector"
	contains(v.msg, "of the other 3 nodes, 2 do not match the nodeSelector, 1 has untolerated taint dedicated=gpu:NoSchedule")
}

# --- spread -------------------------------------------------------------------

test_spread_threshold_comes_from_config if {
	rules(deployment(3, {}), cluster) == {"spread"}
	rules(deployment(2, {}), cluster) == set()
	rules(deployment(2, {}), cluster) == {"spread"} with data.podgate.config.policies.placement.minReplicasToSpread as 2
}

test_spread_is_satisfied_by_a_constraint_or_anti_affinity_over_its_own_pods if {
	soft := {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": own}]}
	rules(deployment(3, soft), cluster) == set()
	preferred := {"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}}}]}}}
	rules(deployment(3, preferred), cluster) == set()
	rules(deployment(3, anti_affinity("kubernetes.io/hostname", own)), cluster) == set()
}

test_spread_is_not_satisfied_by_terms_over_other_pods_or_keys if {
	other := {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "db"}}}]}
	rules(deployment(3, other), cluster) == {"spread"}
	rules(deployment(3, anti_affinity("kubernetes.io/os", own)), cluster) == {"spread"}
	elsewhere := {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname", "labelSelector": own, "namespaces": ["other"]}]}}}
	rules(deployment(3, elsewhere), cluster) == {"spread"}
	mismatch := {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname", "labelSelector": own, "mismatchLabelKeys": ["tier"]}]}}}
	rules(deployment(3, mismatch), cluster) == {"spread"}
	no_selector := {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"}]}
	rules(deployment(3, no_selector), cluster) == {"spread"}
}

test_spread_gives_way_to_single_node if {
	rules(deployment(3, {}), {"w1": cluster.w1, "gpu": cluster.gpu}) == {"single-node"}
}

test_spread_quotes_selector_values_yaml_would_misread if {
	obj := json.patch(deployment(3, {}), [{"op": "replace", "path": "/spec/selector/matchLabels", "value": {"app": "web", "canary": "true", "v": "1.2"}}])
	some msg in messages(obj, cluster)
	contains(msg, `labelSelector: {matchLabels: {app: web, canary: "true", v: "1.2"}}`)
}

# --- unsatisfiable --------------------------------------------------------------

test_anti_affinity_allows_one_pod_per_domain if {
	rules(deployment(3, anti_affinity("kubernetes.io/hostname", own)), cluster) == set()
	some msg in messages(deployment(4, anti_affinity("kubernetes.io/hostname", own)), cluster)
	contains(msg, "allows one pod per node, and the pods fit 3 nodes: 1 of 4 replicas stay Pending; lower replicas to 3")
	some zone_msg in messages(deployment(3, anti_affinity("topology.kubernetes.io/zone", own)), cluster)
	contains(zone_msg, "allows one pod per zone, and the pods fit 2 zones: 1 of 3 replicas stay Pending")
}

test_anti_affinity_on_a_key_some_fitting_node_lacks_does_not_limit if {
	unlabelled := object.union(cluster, {"w4": {"labels": {}, "taints": [], "unschedulable": false}})
	not "unsatisfiable" in rules(deployment(6, anti_affinity("topology.kubernetes.io/zone", own)), unlabelled)
}

test_anti_affinity_against_other_pods_does_not_limit if {
	not "unsatisfiable" in rules(deployment(5, anti_affinity("kubernetes.io/hostname", {"matchLabels": {"app": "db"}})), cluster)
	selected := {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname", "labelSelector": own, "namespaceSelector": {"matchLabels": {"team": "x"}}}]}}}
	not "unsatisfiable" in rules(deployment(5, selected), cluster)
	everywhere := {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname", "labelSelector": own, "namespaceSelector": {}}]}}}
	"unsatisfiable" in rules(deployment(5, everywhere), cluster)
}

test_spread_constraint_counts_nodes_the_pods_never_reach if {
	# gpu is tainted: nodeTaintsPolicy Ignore (the default) still counts it,
	# so the minimum stays 0 and each of w1..w3 takes maxSkew pods.
	some msg in messages(deployment(4, hostname_spread({})), cluster)
	contains(msg, "counts 4 nodes but the pods fit only 3: the other 1 never gets a pod, so each one the pods fit takes at most 1: 1 of 4 replicas stay Pending")
	rules(deployment(3, hostname_spread({})), cluster) == set()
	rules(deployment(4, hostname_spread({"nodeTaintsPolicy": "Honor"})), cluster) == set()
}

test_spread_constraint_honours_node_affinity_policy if {
	zone_b := {"nodeSelector": {"topology.kubernetes.io/zone": "b"}}
	rules(deployment(5, object.union(zone_b, hostname_spread({}))), cluster) == set()
	some msg in messages(deployment(5, object.union(zone_b, hostname_spread({"nodeAffinityPolicy": "Ignore"}))), cluster)
	contains(msg, "counts 4 nodes but the pods fit only 2: the other 2 never get a pod, so each one the pods fit takes at most 1: 3 of 5 replicas stay Pending")
}

test_min_domains_beyond_the_domains_caps_each_at_max_skew if {
	zones := {"topologySpreadConstraints": [{
		"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
		"minDomains": 4, "labelSelector": own, "nodeTaintsPolicy": "Honor",
	}]}
	some msg in messages(deployment(6, zones), cluster)
	contains(msg, "asks for minDomains 4 but there are 2 zones, so the scheduler takes the global minimum as 0 pods and each of the 2 zones the pods fit takes at most 2: 2 of 6 replicas stay Pending")
	rules(deployment(4, zones), cluster) == set()
}

test_schedule_anyway_never_leaves_pods_pending if {
	soft := {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "no/such-key", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": own}]}
	rules(deployment(4, soft), cluster) == set()
}

test_two_limits_at_once_say_at_least if {
	both := object.union(anti_affinity("topology.kubernetes.io/zone", own), hostname_spread({}))
	some msg in messages(deployment(5, both), cluster)
	contains(msg, "at least 3 of 5 replicas stay Pending")
}

test_a_bare_pod_whose_spread_key_no_node_carries_stays_pending if {
	pod := {
		"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
		"spec": {"containers": containers, "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "rack", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": own}]},
	}
	some msg in messages(pod, cluster)
	contains(msg, "(rack), and PodTopologySpread rejects a node without one (missing required label): the pod stays Pending")
}

test_statefulset_message_says_it_waits_for_the_first_pending_pod if {
	obj := with_kind(deployment(5, anti_affinity("kubernetes.io/hostname", own)), "StatefulSet", "apps/v1")
	some msg in messages(obj, cluster)
	contains(msg, "2 of 5 replicas stay Pending (the StatefulSet creates the first of them and waits for it, OrderedReady)")
}

test_no_node_fitting_is_left_to_schedulable if {
	rules(deployment(3, object.union({"nodeSelector": {"gpu": "yes"}}, anti_affinity("kubernetes.io/hostname", own))), cluster) == set()
}

test_gt_tolerations_count_only_with_the_feature_gate if {
	big := {"big": node("big", {}, [{"key": "cores", "value": "64", "effect": "NoSchedule"}]), "w1": cluster.w1}
	gt := {"tolerations": [{"key": "cores", "operator": "Gt", "value": "16", "effect": "NoSchedule"}]}
	rules(deployment(2, gt), big) == {"single-node"}
	gated := rules(deployment(2, gt), big) with data.podgate.config.policies.tolerations.comparisonOperators as true
	gated == set()
}
