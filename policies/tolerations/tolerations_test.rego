# METADATA
# title: Tolerations policy tests
# description: |
#   Pins down the messages of testdata cases (which `podgate test` judges),
#   then the scheduler semantics (toleration matching, node affinity, cordoning,
#   nodeName, DaemonSet tolerations) with small inline objects.
package podgate.policies.tolerations_test

import data.podgate.lib.testing
import data.podgate.policies.tolerations

taint_cp := {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}

# --- messages of testdata cases ----------------------------------------------

cases := data.tolerations.testdata

case_violations(c) := vs if {
	vs := tolerations.violation with input as {"request": testing.request(c)}
		with data.podgate.inventory.nodes as testing.nodes(c)
}

test_pod_no_node_accepts_gets_a_scheduler_style_message if {
	[v] := [v | some v in case_violations(cases["pod-no-node-accepts"])]
	v.rule == "schedulable"
	v.msg == concat("", [
		"0/3 nodes can run this pod: 1 has untolerated taint node-role.kubernetes.io/control-plane:NoSchedule, ",
		"1 has untolerated taint dedicated=gpu:NoSchedule, 1 is cordoned; ",
		"tolerate a listed taint if the pods belong on those nodes or uncordon a node ",
		"(or make sure an autoscaler adds a node that fits)",
	])
	v.field == "spec.tolerations"
}

test_control_plane_message_names_the_toleration_and_the_fix if {
	[v] := [v | some v in case_violations(cases["control-plane-toleration-outside-kube-system"])]
	v.msg == concat("", [
		"toleration \"node-role.kubernetes.io/control-plane:NoSchedule op=Exists\" lets the pods run on control-plane nodes, ",
		"which only namespaces kube-system may do; remove the toleration, or run the workload in one of those namespaces",
	])
	v.field == "spec.tolerations[0]"
}

# --- helpers ----------------------------------------------------------------

request(obj) := testing.request({"object": obj})

pod(spec) := {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": spec}

workload(kind, namespace, pod_spec) := {
	"apiVersion": "apps/v1",
	"kind": kind,
	"metadata": {"name": "w", "namespace": namespace},
	"spec": {"template": {"metadata": {"labels": {"app": "w"}}, "spec": pod_spec}},
}

containers := [{"name": "app", "image": "nginx:1.27.2"}]

violations(obj, nodes) := vs if {
	vs := tolerations.violation with input as {"request": request(obj)}
		with data.podgate.inventory.nodes as nodes
}

rules(obj, nodes) := testing.rules(violations(obj, nodes))

messages(obj, nodes) := {v.msg | some v in violations(obj, nodes)}

node(labels, taints) := {"labels": labels, "taints": taints, "unschedulable": false}

plain := node({"kubernetes.io/hostname": "plain"}, [])

gpu := node({"gpu": "true"}, [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])

cordoned := {"labels": {}, "taints": [], "unschedulable": true}

# --- control-plane and wildcard ---------------------------------------------

test_control_plane_toleration_outside_allowed_namespaces_is_denied if {
	obj := workload("Deployment", "web", {"containers": containers, "tolerations": [taint_cp]})
	rules(obj, {}) == {"control-plane"}
}

test_control_plane_toleration_with_any_value_or_effect_is_denied if {
	obj := pod({"containers": containers, "tolerations": [{"key": "node-role.kubernetes.io/master", "value": "true"}]})
	rules(obj, {}) == {"control-plane"}
}

test_control_plane_toleration_in_configured_namespace_is_allowed if {
	obj := workload("DaemonSet", "monitoring", {"containers": containers, "tolerations": [taint_cp]})
	rules(obj, {}) == set() with data.podgate.config.policies.tolerations.allowedNamespaces as ["kube-system", "monitoring"]
}

test_control_plane_keys_come_from_config if {
	obj := pod({"containers": containers, "tolerations": [{"key": "node-role.example.com/infra", "operator": "Exists"}]})
	rules(obj, {}) == {"control-plane"} with data.podgate.config.policies.tolerations.controlPlaneTaintKeys as ["node-role.example.com/infra"]
	rules(obj, {}) == set()
}

test_wildcard_is_reported_once_not_also_as_control_plane if {
	obj := pod({"containers": containers, "tolerations": [{"operator": "Exists"}]})
	vs := violations(obj, {"cp": node({}, [taint_cp])})
	[v] := [v | some v in vs]
	v.rule == "wildcard"
	v.field == "spec.tolerations[0]"
	contains(v.msg, "tolerates every taint")
}

test_wildcard_limited_to_one_effect_is_still_a_wildcard if {
	obj := pod({"containers": containers, "tolerations": [{"operator": "Exists", "effect": "NoExecute"}]})
	some msg in messages(obj, {})
	contains(msg, "tolerates every NoExecute taint")
}

test_keyed_exists_toleration_is_not_a_wildcard if {
	obj := pod({"containers": containers, "tolerations": [{"key": "dedicated", "operator": "Exists"}]})
	rules(obj, {}) == set()
}

test_wildcard_in_kube_system_is_allowed if {
	obj := workload("DaemonSet", "kube-system", {"containers": containers, "tolerations": [{"operator": "Exists"}]})
	rules(obj, {"gpu": gpu}) == set()
}

test_objects_without_a_pod_spec_are_ignored if {
	obj := {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"}, "spec": {"tolerations": [{"operator": "Exists"}]}}
	rules(obj, {"gpu": gpu}) == set()
}

# --- schedulable ----------------------------------------------------------------

test_identical_reasons_are_grouped_with_counts if {
	obj := workload("Deployment", "default", {"containers": containers})
	msgs := messages(obj, {"gpu-1": gpu, "gpu-2": gpu, "old": cordoned})
	some msg in msgs
	startswith(msg, "0/3 nodes can run its pods: 2 have untolerated taint dedicated=gpu:NoSchedule, 1 is cordoned; ")
}

test_prefer_no_schedule_taints_do_not_block if {
	soft := node({}, [{"key": "spot", "value": "true", "effect": "PreferNoSchedule"}])
	rules(pod({"containers": containers}), {"spot-1": soft}) == set()
}

test_no_execute_taints_block if {
	hard := node({}, [{"key": "spot", "value": "true", "effect": "NoExecute"}])
	msgs := messages(pod({"containers": containers}), {"spot-1": hard})
	msgs == {concat("", [
		"0/1 nodes can run this pod: 1 has untolerated taint spot=true:NoExecute; ",
		"tolerate a listed taint if the pods belong on those nodes (or make sure an autoscaler adds a node that fits)",
	])}
}

test_a_tolerated_taint_lets_the_pod_run if {
	obj := pod({"containers": containers, "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]})
	rules(obj, {"gpu-1": gpu}) == set()
}

test_cordoned_node_runs_pods_that_tolerate_unschedulable if {
	tolerant := pod({"containers": containers, "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]})
	rules(tolerant, {"old": cordoned}) == set()
	rules(pod({"containers": containers}), {"old": cordoned}) == {"schedulable"}
}

test_api_server_tolerations_let_pods_onto_nodes_with_only_not_ready_no_execute if {
	flaky := node({}, [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}])
	rules(pod({"containers": containers}), {"flaky": flaky}) == set()
}

test_daemonsets_get_the_controller_tolerations if {
	pressured := node({}, [
		{"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"},
		{"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"},
		{"key": "node.kubernetes.io/pid-pressure", "effect": "NoSchedule"},
		{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
	])
	nodes := {"pressured": pressured, "old": cordoned}
	rules(workload("DaemonSet", "default", {"containers": containers}), nodes) == set()
	rules(workload("Deployment", "default", {"containers": containers}), nodes) == {"schedulable"}
}

test_network_unavailable_is_tolerated_only_by_host_network_daemonsets if {
	no_network := node({}, [{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}])
	rules(workload("DaemonSet", "default", {"containers": containers, "hostNetwork": true}), {"n": no_network}) == set()
	rules(workload("DaemonSet", "default", {"containers": containers}), {"n": no_network}) == {"schedulable"}
}

test_node_name_ignores_no_schedule_and_cordon_but_not_no_execute if {
	nodes := {"cp": node({}, [taint_cp]), "old": cordoned, "evicting": node({}, [{"key": "k", "effect": "NoExecute"}])}
	rules(pod({"containers": containers, "nodeName": "cp"}), nodes) == set()
	rules(pod({"containers": containers, "nodeName": "old"}), nodes) == set()
	messages(pod({"containers": containers, "nodeName": "evicting"}), nodes) == {concat("", [
		"0/1 nodes can run this pod: 1 has untolerated taint k:NoExecute; ",
		"tolerate a listed taint if the pods belong on those nodes (or make sure an autoscaler adds a node that fits)",
	])}
}

test_node_name_still_needs_matching_selector if {
	obj := pod({"containers": containers, "nodeName": "plain", "nodeSelector": {"disktype": "ssd"}})
	vs := violations(obj, {"plain": plain})
	[v] := [v | some v in vs]
	startswith(v.msg, "0/1 nodes can run this pod: 1 does not match the nodeSelector; fix the nodeSelector")
	v.field == "spec.nodeSelector"
}

test_node_name_of_a_missing_node_is_reported if {
	vs := violations(pod({"containers": containers, "nodeName": "worker-9"}), {"plain": plain})
	[v] := [v | some v in vs]
	v.rule == "schedulable"
	v.field == "spec.nodeName"
	startswith(v.msg, "nodeName \"worker-9\" is none of the 1 nodes of the cluster")
}

test_empty_or_absent_inventory_decides_nothing if {
	obj := pod({"containers": containers, "nodeName": "x", "nodeSelector": {"a": "b"}, "tolerations": [{"key": "typo", "operator": "Exists"}]})
	rules(obj, {}) == set()
	testing.rules(tolerations.violation) == set() with input as {"request": request(obj)}
}

test_null_taints_and_labels_in_the_inventory_are_empty if {
	rules(pod({"containers": containers}), {"n": {"labels": null, "taints": null}}) == set()
}

test_affinity_field_points_at_node_affinity if {
	affinity := {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}]}}}
	vs := violations(workload("StatefulSet", "db", {"containers": containers, "affinity": affinity}), {"plain": plain})
	[v] := [v | some v in vs]
	v.field == "spec.template.spec.affinity.nodeAffinity"
	contains(v.msg, "1 does not match the required node affinity; relax the required node affinity")
}

# --- unused -------------------------------------------------------------------

test_toleration_matching_no_taint_is_unused if {
	obj := pod({"containers": containers, "tolerations": [{"key": "dedicated", "value": "gpus", "effect": "NoSchedule"}]})
	vs := violations(obj, {"gpu-1": gpu, "plain": plain})
	[v] := [v | some v in vs]
	v.rule == "unused"
	v.field == "spec.tolerations[0]"
	startswith(v.msg, "toleration \"dedicated=gpus:NoSchedule\" matches no taint on any of the 2 nodes (a typo?); ")
}

test_toleration_matching_a_prefer_no_schedule_taint_is_used if {
	soft := node({}, [{"key": "spot", "value": "true", "effect": "PreferNoSchedule"}])
	obj := pod({"containers": containers, "tolerations": [{"key": "spot", "operator": "Exists"}]})
	rules(obj, {"spot-1": soft}) == set()
}

test_unused_ignores_transient_control_plane_and_wildcard_tolerations if {
	obj := workload("DaemonSet", "kube-system", {"containers": containers, "tolerations": [
		{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
		{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
		{"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
		{"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"},
		{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
		{"operator": "Exists"},
	]})
	rules(obj, {"plain": plain}) == set()
}

test_unused_names_each_unused_toleration if {
	obj := workload("Deployment", "default", {"containers": containers, "tolerations": [
		{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
		{"key": "CriticalAddonsOnly", "operator": "Exists"},
		{"key": "team", "value": "search"},
	]})
	fields := {v.field | some v in violations(obj, {"gpu-1": gpu, "plain": plain})}
	fields == {"spec.template.spec.tolerations[1]", "spec.template.spec.tolerations[2]"}
}

test_node_selector_case_points_at_the_node_selector_and_lists_every_fix if {
	[v] := [v | some v in case_violations(cases["node-selector-matches-no-node"])]
	v.field == "spec.template.spec.nodeSelector"
	endswith(v.msg, concat("", [
		"1 does not match the nodeSelector; fix the nodeSelector (or label a node to match it), ",
		"tolerate a listed taint if the pods belong on those nodes, or uncordon a node ",
		"(or make sure an autoscaler adds a node that fits)",
	]))
}

# --- comparison-operator and Gt/Lt matching ------------------------------------

cores(n) := node({"kubernetes.io/hostname": sprintf("cores-%s", [n])}, [{"key": "cores", "value": n, "effect": "NoSchedule"}])

gt_four := {"key": "cores", "operator": "Gt", "value": "4", "effect": "NoSchedule"}

test_gt_toleration_without_the_gate_is_reported_and_matches_nothing if {
	obj := pod({"containers": containers, "tolerations": [gt_four]})
	vs := violations(obj, {"big": cores("8")})
	rules(obj, {"big": cores("8")}) == {"comparison-operator", "schedulable"}
	some v in vs
	v.rule == "comparison-operator"
	v.field == "spec.tolerations[0]"
	startswith(v.msg, "toleration \"cores=4:NoSchedule op=Gt\" uses operator Gt, which needs the feature gate TaintTolerationComparisonOperators")
	contains(v.msg, "the API server rejects the pod (Unsupported value: \"Gt\")")
	contains(v.msg, "set policies.tolerations.comparisonOperators: true")
}

test_gt_toleration_with_the_gate_lets_the_pod_onto_larger_nodes if {
	obj := pod({"containers": containers, "tolerations": [gt_four]})
	rs := rules(obj, {"big": cores("8")}) with data.podgate.config.policies.tolerations.comparisonOperators as true
	rs == set()
	small := rules(obj, {"small": cores("2")}) with data.podgate.config.policies.tolerations.comparisonOperators as true
	small == {"schedulable", "unused"}
}

test_lt_toleration_with_a_value_that_is_no_decimal_integer_is_reported if {
	obj := pod({"containers": containers, "tolerations": [{"key": "cores", "operator": "Lt", "value": "08"}]})
	vs := violations(obj, {"big": cores("8")}) with data.podgate.config.policies.tolerations.comparisonOperators as true
	[v] := [v | some v in vs; v.rule != "schedulable"]
	v.rule == "comparison-operator"
	contains(v.msg, "its value \"08\", which is not a decimal integer")
}

test_comparison_tolerations_are_never_also_unused if {
	obj := pod({"containers": containers, "tolerations": [gt_four, {"key": "plain", "operator": "Exists"}]})
	fields := {v.field | some v in violations(obj, {"plain": plain}); v.rule == "unused"}
	fields == {"spec.tolerations[1]"}
}
