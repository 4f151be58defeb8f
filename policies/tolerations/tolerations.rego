# METADATA
# title: Tolerations
# description: |
#   Which pods may tolerate the control-plane taint or every taint, whether
#   any node of the cluster would actually run the pods, and tolerations that
#   match no taint at all (a typo?). Toleration matching follows the
#   scheduler exactly (see policies/lib/scheduling.rego).
# custom:
#   enforcement: deny
#   rules:
#     control-plane:
#       enforcement: deny
#       summary: only allowedNamespaces tolerate the control-plane taint
#     wildcard:
#       enforcement: deny
#       summary: only allowedNamespaces tolerate every taint (empty key, operator Exists)
#     schedulable:
#       enforcement: warn
#       summary: at least one node of the inventory would run the pods
#     unused:
#       enforcement: warn
#       summary: every toleration matches a taint of some node
#     comparison-operator:
#       enforcement: warn
#       summary: Gt and Lt tolerations only where the cluster compares them (config comparisonOperators)
package podgate.policies.tolerations

# Decisions where the spec is silent:
# - control-plane: a toleration is reported when its key is one of
#   controlPlaneTaintKeys, whatever its operator, value and effect: it shows
#   the intent to run on control-plane nodes (distributions differ in the
#   value and effect of that taint).
# - wildcard: a toleration with empty key and operator Exists also tolerates
#   the control-plane taint; it is reported once, as wildcard, since removing
#   the wildcard is the fix (the control-plane rule needs a key).
# - schedulable and unused decide nothing on an empty or absent inventory.
#   With nodeName set the scheduler is bypassed, so only that node is a
#   candidate and only what the kubelet enforces is checked: nodeSelector,
#   required node affinity and NoExecute taints (NoSchedule taints and
#   cordoning do not stop a pod bound by nodeName). A nodeName the inventory
#   does not know is reported (PodGC deletes pods bound to missing nodes).
# - unused ignores tolerations of taints Kubernetes sets on nodes for a
#   while (not-ready, unreachable, the pressure and network-unavailable
#   conditions, unschedulable, out-of-service, cloud provider
#   uninitialized/shutdown): they are tolerated on purpose even when no node
#   has them right now. It also ignores wildcard and control-plane
#   tolerations, which are deliberate (and reported by their own rules
#   outside allowedNamespaces).
# - comparison-operator: Gt and Lt tolerations (KEP-5471) need the
#   TaintTolerationComparisonOperators feature gate on kube-apiserver and
#   kube-scheduler (alpha since 1.35, off by default). config
#   comparisonOperators says whether the cluster has it: on, they match as
#   the scheduler matches them (in every rule and policy, see
#   scheduling.tolerates) and only a value that is not a decimal integer is
#   reported (the API server rejects it); off, they match nothing, as in a
#   scheduler without the gate, and each one is reported: the API server
#   rejects new pods with them, a scheduler without the gate ignores them.
#   unused leaves the tolerations this rule reports to it.

import data.podgate.lib.scheduling
import data.podgate.lib.text
import data.podgate.lib.workload

config := data.podgate.config.policies.tolerations

# The node inventory; empty when the webhook has none (decides nothing).
inventory := scheduling.nodes

spec := workload.pod_spec

# Taint keys Kubernetes puts on nodes by itself for a while.
transient_taint_keys := {
	scheduling.taint_not_ready,
	scheduling.taint_unreachable,
	scheduling.taint_unschedulable,
	"node.kubernetes.io/memory-pressure",
	"node.kubernetes.io/disk-pressure",
	"node.kubernetes.io/pid-pressure",
	"node.kubernetes.io/network-unavailable",
	"node.kubernetes.io/out-of-service",
	"node.cloudprovider.kubernetes.io/uninitialized",
	"node.cloudprovider.kubernetes.io/shutdown",
}

allowed_namespace if workload.namespace in config.allowedNamespaces

allowed_text := concat(", ", sort(config.allowedNamespaces))

wildcard(toleration) if {
	object.get(toleration, "key", "") == ""
	object.get(toleration, "operator", "") == "Exists"
}

control_plane(toleration) if object.get(toleration, "key", "") in config.controlPlaneTaintKeys

toleration_field(i) := workload.field(workload.spec_field_path(["tolerations", i]))

# toleration_text: a toleration as kubectl describe pod prints it,
# e.g. "dedicated=gpu:NoSchedule" or "node-role.kubernetes.io/control-plane:NoSchedule op=Exists",
# with " op=Gt" or " op=Lt" added (kubectl leaves them out).
toleration_text(t) := trim_space(concat("", [
	object.get(t, "key", ""),
	prefixed("=", object.get(t, "value", "")),
	prefixed(":", object.get(t, "effect", "")),
	prefixed(" op=", shown_operator(t)),
]))

prefixed(_, "") := ""

prefixed(prefix, s) := concat("", [prefix, s]) if s != ""

shown_operator(t) := object.get(t, "operator", "") if object.get(t, "operator", "") in {"Exists", "Gt", "Lt"}

shown_operator(t) := "" if not object.get(t, "operator", "") in {"Exists", "Gt", "Lt"}

violation contains v if {
	not allowed_namespace
	some i, t in scheduling.spec_tolerations(spec)
	control_plane(t)
	v := {
		"rule": "control-plane",
		"msg": sprintf(
			"toleration %q lets the pods run on control-plane nodes, which only namespaces %s may do; remove the toleration, or run the workload in one of those namespaces",
			[toleration_text(t), allowed_text],
		),
		"field": toleration_field(i),
	}
}

violation contains v if {
	not allowed_namespace
	some i, t in scheduling.spec_tolerations(spec)
	wildcard(t)
	v := {
		"rule": "wildcard",
		"msg": sprintf(
			"toleration %q has no key, so it tolerates every %s and lets the pods onto control-plane, dedicated and failing nodes, which only namespaces %s may do; give it the key of the taint it is meant for",
			[toleration_text(t), wildcard_scope(t), allowed_text],
		),
		"field": toleration_field(i),
	}
}

wildcard_scope(t) := sprintf("%s taint", [t.effect]) if object.get(t, "effect", "") != ""

wildcard_scope(t) := "taint" if object.get(t, "effect", "") == ""

violation contains v if {
	count(inventory) > 0
	some i, t in scheduling.spec_tolerations(spec)
	not wildcard(t)
	not control_plane(t)
	not object.get(t, "key", "") in transient_taint_keys
	not comparison_problem(t)
	not matches_some_node(t)
	v := {
		"rule": "unused",
		"msg": sprintf(
			"toleration %q matches no taint on any of the %d nodes (a typo?); compare it with the taints of `kubectl describe nodes | grep -i taints`, or remove it",
			[toleration_text(t), count(inventory)],
		),
		"field": toleration_field(i),
	}
}

matches_some_node(toleration) if {
	some taint in scheduling.inventory_taints(data.podgate.inventory)
	scheduling.tolerates(toleration, taint)
}

violation contains v if {
	some i, t in scheduling.spec_tolerations(spec)
	problem := comparison_problem(t)
	v := {
		"rule": "comparison-operator",
		"msg": sprintf("toleration %q %s", [toleration_text(t), problem]),
		"field": toleration_field(i),
	}
}

# comparison_problem(t): what is wrong with a Gt or Lt toleration on this
# cluster; undefined when nothing is.
comparison_problem(t) := sprintf(
	concat("", [
		"uses operator %s, which needs the feature gate TaintTolerationComparisonOperators (alpha since Kubernetes 1.35, off by default): ",
		"without it the API server rejects the pod (Unsupported value: %q) and a kube-scheduler without it ignores the toleration; ",
		"use operator Equal or Exists, or, if kube-apiserver and kube-scheduler run with the gate, ",
		"set policies.tolerations.comparisonOperators: true in podgate's config",
	]),
	[t.operator, t.operator],
) if {
	scheduling.comparison_operator(t)
	not scheduling.comparison_operators
} else := sprintf(
	concat("", [
		"compares taint values with its value %q, which is not a decimal integer (digits with an optional leading minus, no leading zeros, 64 bits), ",
		"so the API server rejects the pod; write the bound as an integer, e.g. \"4\"",
	]),
	[object.get(t, "value", "")],
) if {
	scheduling.comparison_operator(t)
	not scheduling.decimal_integer(object.get(t, "value", ""))
}

violation contains v if {
	count(inventory) > 0
	scheduling.bound(spec)
	not inventory[spec.nodeName]
	v := {
		"rule": "schedulable",
		"msg": sprintf(
			"nodeName %q is none of the %d nodes of the cluster, so the pod can never run; set nodeName to an existing node, or remove it and let the scheduler choose",
			[spec.nodeName, count(inventory)],
		),
		"field": workload.field(workload.spec_field_path(["nodeName"])),
	}
}

# The candidate nodes go by class (scheduling.node_groups): a pod that fits
# somewhere is found at the first class that accepts it, and the message
# counts each class's nodes.
violation contains v if {
	count(inventory) > 0
	nodes := scheduling.node_groups(spec, data.podgate.inventory)
	count(nodes) > 0
	tolerations := scheduling.effective_tolerations(workload.kind, spec)
	not scheduling.accepts_some(spec, tolerations, nodes)
	rejections := [{"rejection": r, "count": g.count, "first": g.first} |
		some g in nodes
		r := scheduling.rejection(spec, tolerations, g.first, g.node)
	]
	groups := scheduling.reason_groups(rejections)
	v := {
		"rule": "schedulable",
		"msg": sprintf("0/%d nodes can run %s: %s; %s", [
			sum([g.count | some g in nodes]), subject,
			concat(", ", [g.text | some g in groups]),
			fix_text({g.reason | some g in groups}),
		]),
		"field": workload.field(workload.spec_field_path(scheduling.fix_field({g.reason | some g in groups}))),
	}
}

subject := "this pod" if workload.kind == "Pod"

subject := "its pods" if workload.kind != "Pod"

# fix_text(reasons): the fixes for the reasons present; warn by default
# because an autoscaler may still add a node that fits.
fix_text(reasons) := sprintf("%s (or make sure an autoscaler adds a node that fits)", [text.or_list(scheduling.fixes(reasons))])
