# Node matching as the scheduler does it: which nodes of the inventory would
# run a pod spec, and why the others would not. Pure functions of (spec,
# tolerations, node) so the rollout policy can count the nodes a DaemonSet
# runs on with exactly the same semantics (both import this package).
#
# Sources mirrored here:
# - k8s.io/api core/v1 Toleration.ToleratesTaint (toleration matching);
# - scheduler filter plugins, in their default order: NodeUnschedulable,
#   NodeName, TaintToleration (NoSchedule and NoExecute only), NodeAffinity
#   (nodeSelector, then required nodeAffinity). The first failing filter is
#   the node's one reason, as in the scheduler's FitError;
# - the API server's DefaultTolerationSeconds admission plugin and the
#   DaemonSet controller's AddOrUpdateDaemonPodTolerations (tolerations pods
#   get that their template does not show);
# - the kubelet's admission of a pod whose nodeName is already set.
# METADATA
# title: Scheduling library
# description: |
#   Node matching as kube-scheduler does it, shared by the tolerations policy
#   (schedulable, unused) and the rollout policy (the nodes a DaemonSet runs on).
package podgate.lib.scheduling

import data.podgate.lib.text

# Taints that Kubernetes itself puts on nodes.
taint_not_ready := "node.kubernetes.io/not-ready"

taint_unreachable := "node.kubernetes.io/unreachable"

taint_unschedulable := "node.kubernetes.io/unschedulable"

# The API server's DefaultTolerationSeconds plugin gives every Pod these two
# (with tolerationSeconds 300) unless it already tolerates them. They are
# NoExecute only: a node that is not ready also carries not-ready:NoSchedule,
# which still keeps new pods off it, exactly as in the scheduler.
api_server_tolerations := [
	{"key": taint_not_ready, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
	{"key": taint_unreachable, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]

# The DaemonSet controller adds these to every pod it creates
# (pkg/controller/daemon/util AddOrUpdateDaemonPodTolerations).
daemonset_tolerations := [
	{"key": taint_not_ready, "operator": "Exists", "effect": "NoExecute"},
	{"key": taint_unreachable, "operator": "Exists", "effect": "NoExecute"},
	{"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
	{"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
	{"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
	{"key": taint_unschedulable, "operator": "Exists", "effect": "NoSchedule"},
]

# network-unavailable is added only to hostNetwork DaemonSets, as Kubernetes
# does: a pod on the pod network cannot work on a node without one, so
# letting it land there would only hide the problem.
daemonset_host_network_tolerations := [{"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}]

# tolerates(toleration, taint): core/v1 Toleration.ToleratesTaint. An empty
# effect matches every effect, an empty key matches every key, operator
# Exists matches any value, Equal (or no operator) needs the same value; Gt
# and Lt compare integers when comparison_operators is on; any other
# operator matches nothing.
tolerates(toleration, taint) if {
	effect_matches(object.get(toleration, "effect", ""), object.get(taint, "effect", ""))
	key_matches(object.get(toleration, "key", ""), object.get(taint, "key", ""))
	value_matches(object.get(toleration, "operator", ""), object.get(toleration, "value", ""), object.get(taint, "value", ""))
}

effect_matches("", _)

effect_matches(effect, effect) if effect != ""

key_matches("", _)

key_matches(key, key) if key != ""

value_matches("Exists", _, _)

value_matches(operator, value, value) if operator in {"", "Equal"}

# Gt and Lt (KEP-5471): the taint's value compared with the toleration's,
# both decimal integers, only where the cluster runs with the
# TaintTolerationComparisonOperators feature gate (alpha since Kubernetes
# 1.35, off by default). Without it the scheduler matches them with nothing
# and the API server rejects new pods that use them.
value_matches("Gt", value, taint_value) if {
	comparison_operators
	decimal_integer(taint_value) > decimal_integer(value)
}

value_matches("Lt", value, taint_value) if {
	comparison_operators
	decimal_integer(taint_value) < decimal_integer(value)
}

# comparison_operators: config policies.tolerations.comparisonOperators says
# the cluster's kube-apiserver and kube-scheduler run with the gate on. It
# describes the cluster, so every policy (and podgate explain) follows it.
comparison_operators if data.podgate.config.policies.tolerations.comparisonOperators == true

comparison_operator(toleration) if object.get(toleration, "operator", "") in {"Gt", "Lt"}

# decimal_integer(s): what the scheduler's compareNumericValues accepts:
# content.IsDecimalInteger (an optional minus, no plus, no leading zeros)
# and strconv.ParseInt(s, 10, 64) (within int64). Stricter than integer(),
# the ParseInt of node affinity's Gt and Lt.
decimal_integer(s) := n if {
	is_string(s)
	regex.match(`^(0|-?[1-9][0-9]{0,18})$`, s)
	n := to_number(s)
	n >= -9223372036854775808
	n <= 9223372036854775807
}

# tolerated(tolerations, taint): some toleration of the list tolerates taint.
tolerated(tolerations, taint) if {
	some toleration in tolerations
	tolerates(toleration, taint)
}

# spec_tolerations(spec): the tolerations written in a pod spec (an absent
# or null list is empty).
spec_tolerations(spec) := ts if {
	ts := object.get(spec, "tolerations", [])
	is_array(ts)
} else := []

# effective_tolerations(kind, spec): what the pods will actually carry once
# admitted (and, for DaemonSets, created by the controller).
effective_tolerations(kind, spec) := array.concat(
	array.concat(spec_tolerations(spec), api_server_tolerations),
	controller_tolerations(kind, spec),
)

controller_tolerations("DaemonSet", spec) := array.concat(daemonset_tolerations, daemonset_host_network_tolerations) if {
	object.get(spec, "hostNetwork", false) == true
} else := daemonset_tolerations

controller_tolerations(kind, _) := [] if kind != "DaemonSet"

# bound(spec): the pod names its node. The scheduler is bypassed and the
# kubelet admits the pod: it checks nodeSelector and node affinity and
# rejects untolerated NoExecute taints, but NoSchedule taints and cordoning
# do not apply (they only steer the scheduler).
bound(spec) if object.get(spec, "nodeName", "") != ""

blocking_effects(spec) := {"NoExecute"} if bound(spec)

blocking_effects(spec) := {"NoSchedule", "NoExecute"} if not bound(spec)

# candidates(spec, nodes): the nodes a pod may go to: the named one when
# nodeName is set (empty when the inventory does not have it), else all.
candidates(spec, nodes) := {spec.nodeName: nodes[spec.nodeName]} if {
	bound(spec)
	nodes[spec.nodeName]
} else := {} if {
	bound(spec)
} else := nodes

node_taints(node) := ts if {
	ts := object.get(node, "taints", [])
	is_array(ts)
} else := []

node_labels(node) := ls if {
	ls := object.get(node, "labels", {})
	is_object(ls)
} else := {}

# rejection(spec, tolerations, name, node): why the node would not run the
# pod, from the first filter that fails; undefined when it would run it.
# Each filter first asks whether it has anything to check (a cordoned node,
# taints, a nodeSelector, required terms), so a pod and a node with none of
# these cost a few lookups.
rejection(spec, tolerations, name, node) := {"reason": "cordoned"} if {
	# NodeUnschedulable: a cordoned node takes only pods that tolerate
	# node.kubernetes.io/unschedulable:NoSchedule (DaemonSet pods do).
	node.unschedulable == true
	not bound(spec)
	not tolerated(tolerations, unschedulable_taint)
} else := {"reason": "taint", "taint": taint_text(taint)} if {
	taint := first_untolerated(spec, tolerations, node)
} else := {"reason": "nodeSelector"} if {
	selector := spec.nodeSelector
	not selector_matches(selector, node_labels(node))
} else := {"reason": "affinity"} if {
	terms := required_terms(spec)
	not some_term_matches(terms, name, node_labels(node))
}

unschedulable_taint := {"key": taint_unschedulable, "effect": "NoSchedule"}

# first_untolerated: the first blocking taint of the node (in the node's
# order, as the scheduler reports it) that no toleration tolerates.
# PreferNoSchedule never blocks.
first_untolerated(spec, tolerations, node) := blocked[0] if {
	taints := node_taints(node)
	count(taints) > 0
	effects := blocking_effects(spec)
	blocked := [taint |
		some taint in taints
		object.get(taint, "effect", "") in effects
		not tolerated(tolerations, taint)
	]
	count(blocked) > 0
}

# taint_text(taint): key=value:Effect, or key:Effect when it has no value
# (the form of kubectl describe node).
taint_text(taint) := sprintf("%s=%s:%s", [taint.key, taint.value, object.get(taint, "effect", "")]) if {
	object.get(taint, "value", "") != ""
} else := sprintf("%s:%s", [object.get(taint, "key", ""), object.get(taint, "effect", "")])

# selector_matches(selector, labels): every nodeSelector entry is a label of
# the node with the same value.
selector_matches(selector, _) if not is_object(selector)

selector_matches(selector, labels) if {
	is_object(selector)
	every key, value in selector {
		labels[key] == value
	}
}

# required_terms(spec): the required nodeAffinity terms, undefined when the
# pod has none.
required_terms(spec) := terms if {
	terms := spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms
	is_array(terms)
}

# affinity_matches: terms are ORed; within a term, matchExpressions and
# matchFields are ANDed; a term with neither matches no node.
affinity_matches(spec, _, _) if not required_terms(spec)

affinity_matches(spec, name, labels) if some_term_matches(required_terms(spec), name, labels)

some_term_matches(terms, name, labels) if {
	some term in terms
	term_matches(term, name, labels)
}

term_matches(term, name, labels) if {
	expressions := list(object.get(term, "matchExpressions", []))
	fields := list(object.get(term, "matchFields", []))
	count(expressions) + count(fields) > 0
	every e in expressions {
		expression_matches(e, labels)
	}
	every f in fields {
		field_matches(f, name)
	}
}

list(x) := x if is_array(x)

list(x) := [] if not is_array(x)

# expression_matches: labels.Requirement semantics. NotIn matches a node
# without the label; Gt and Lt need the label and a single value, both
# parsed as integers (a value that does not parse matches nothing).
expression_matches(e, labels) if {
	e.operator == "In"
	labels[e.key] in list(object.get(e, "values", []))
}

expression_matches(e, labels) if {
	e.operator == "NotIn"
	not labels[e.key]
}

expression_matches(e, labels) if {
	e.operator == "NotIn"
	not labels[e.key] in list(object.get(e, "values", []))
}

expression_matches(e, labels) if {
	e.operator == "Exists"
	labels[e.key]
}

expression_matches(e, labels) if {
	e.operator == "DoesNotExist"
	not labels[e.key]
}

expression_matches(e, labels) if {
	e.operator == "Gt"
	[bound_value] := e.values
	integer(labels[e.key]) > integer(bound_value)
}

expression_matches(e, labels) if {
	e.operator == "Lt"
	[bound_value] := e.values
	integer(labels[e.key]) < integer(bound_value)
}

# field_matches: matchFields supports only metadata.name, with In or NotIn.
field_matches(f, name) if {
	f.key == "metadata.name"
	f.operator == "In"
	name in list(object.get(f, "values", []))
}

field_matches(f, name) if {
	f.key == "metadata.name"
	f.operator == "NotIn"
	not name in list(object.get(f, "values", []))
}

# integer(s): strconv.ParseInt(s, 10, 64) for the values Gt and Lt compare.
# Leading zeros and a sign are stripped by hand: to_number rejects "007"
# and "+5" with an evaluation error instead of parsing them.
integer(s) := sign(s) * magnitude(digits) if {
	is_string(s)
	regex.match(`^[+-]?[0-9]+$`, s)
	digits := trim_left(trim_left(s, "+-"), "0")
}

sign(s) := -1 if startswith(s, "-")

sign(s) := 1 if not startswith(s, "-")

magnitude("") := 0

magnitude(digits) := to_number(digits) if digits != ""

# accepting_nodes(kind, spec, nodes): names of the inventory nodes that
# would run the pods of a workload of this kind.
accepting_nodes(kind, spec, nodes) := {name |
	tolerations := effective_tolerations(kind, spec)
	some name, node in candidates(spec, nodes)
	not rejection(spec, tolerations, name, node)
}

# --- node classes -------------------------------------------------------------
#
# A question about every node of the inventory (would any node run this pod?)
# costs O(nodes) per request, and a 5,000-node cluster has a few dozen kinds
# of node. The webhook (engine.SetNodes) therefore puts, next to
# data.podgate.inventory.nodes:
#   classes: [{"node": facts, "count": n, "first": smallest name}], the nodes
#     grouped by taints (in order), unschedulable and labels, the labels in
#     varyingLabels left out;
#   varyingLabels: label keys whose values set nodes apart
#     (kubernetes.io/hostname), left out of the classes;
#   taints: every distinct taint of the inventory;
#   nodeCount: how many nodes the classes were computed from.
# rejection() is the same for every node of a class unless the pod names its
# node (nodeName, matchFields) or a varying label; then, and when the
# classes are absent (opa test) or were not computed from these nodes (a
# test's `with data.podgate.inventory.nodes as ...`), each node is a group of
# its own, so every decision is the same with or without classes.

# node_groups(spec, inventory): the candidate nodes of spec as groups that
# every filter treats alike: [{"node": facts, "count": n, "first": name}].
node_groups(spec, inventory) := inventory.classes if {
	classes_current(inventory)
	not depends_on_node(spec, {key | some key in inventory.varyingLabels})
} else := [{"node": node, "count": 1, "first": name} |
	some name, node in candidates(spec, inventory_nodes(inventory))
]

# inventory_taints(inventory): every taint of some node (repeats allowed).
inventory_taints(inventory) := inventory.taints if {
	classes_current(inventory)
} else := [taint |
	some node in inventory_nodes(inventory)
	some taint in node_taints(node)
]

inventory_nodes(inventory) := nodes if {
	nodes := inventory.nodes
	is_object(nodes)
} else := {}

# nodes: the Node inventory, name -> {labels, taints, unschedulable}; {}
# when there is none (podgate eval without --nodes, opa test), which
# decides nothing.
nodes := n if {
	n := data.podgate.inventory.nodes
	is_object(n)
} else := {}

# classes_current(inventory): the classes were computed from these nodes
# (the same count, and the first class's first node is one of them). A
# test that replaces the nodes with `with` while classes from elsewhere
# remain gets the nodes themselves.
classes_current(inventory) if {
	is_array(inventory.classes)
	is_array(inventory.varyingLabels)
	is_array(inventory.taints)
	nodes := inventory_nodes(inventory)
	inventory.nodeCount == count(nodes)
	first_class_known(inventory.classes, nodes)
}

first_class_known([], _)

first_class_known(classes, nodes) if nodes[classes[0].first]

# depends_on_node(spec, varying): the pod's placement depends on which node
# it is, not only on the node's class.
depends_on_node(spec, _) if bound(spec)

depends_on_node(spec, _) if {
	some term in required_terms(spec)
	count(list(object.get(term, "matchFields", []))) > 0
}

depends_on_node(spec, varying) if {
	selector := object.get(spec, "nodeSelector", {})
	is_object(selector)
	some key, _ in selector
	key in varying
}

depends_on_node(spec, varying) if {
	some term in required_terms(spec)
	some e in list(object.get(term, "matchExpressions", []))
	e.key in varying
}

# accepts_some(spec, tolerations, groups): some group's nodes would run the
# pod (evaluation stops at the first).
accepts_some(spec, tolerations, groups) if {
	some g in groups
	not rejection(spec, tolerations, g.first, g.node)
}

# accepting_count(kind, spec, inventory): how many inventory nodes would run
# the pods of a workload of this kind; count(accepting_nodes(...)) by class.
accepting_count(kind, spec, inventory) := sum([g.count |
	tolerations := effective_tolerations(kind, spec)
	some g in node_groups(spec, inventory)
	not rejection(spec, tolerations, g.first, g.node)
])

# --- why nodes are out, in words ----------------------------------------------
#
# The messages of tolerations/schedulable and placement/single-node: the
# rejections of many nodes told as the scheduler's FitError tells them,
# identical reasons grouped with their node count.

# reason_groups(rejections): identical reasons grouped with their node
# count, most frequent first, then in the order of the first node (by
# name) that gives the reason, so the message follows kubectl get nodes.
# Each rejection {"rejection": r, "count": n, "first": name} stands for n
# nodes, the first of them named first.
reason_groups(rejections) := [{"reason": p[3].reason, "text": p[2]} | some p in sorted] if {
	sorted := sort([[0 - n, first, reason_text(r, n), r] |
		some r in {x.rejection | some x in rejections}
		n := sum([x.count | some x in rejections; x.rejection == r])
		first := min({x.first | some x in rejections; x.rejection == r})
	])
}

reason_text(r, n) := sprintf("%d %s cordoned", [n, text.plural(n, "is", "are")]) if r.reason == "cordoned"

reason_text(r, n) := sprintf("%d %s untolerated taint %s", [n, text.plural(n, "has", "have"), r.taint]) if r.reason == "taint"

reason_text(r, n) := sprintf("%d %s not match the nodeSelector", [n, text.plural(n, "does", "do")]) if r.reason == "nodeSelector"

reason_text(r, n) := sprintf("%d %s not match the required node affinity", [n, text.plural(n, "does", "do")]) if r.reason == "affinity"

# fix_field(reasons): the field a user edits. A nodeSelector or node
# affinity that rules out the untainted nodes is the pod's own choice and
# comes first; taints and cordoned nodes are fixed with tolerations.
fix_field(reasons) := ["nodeSelector"] if {
	"nodeSelector" in reasons
} else := ["affinity", "nodeAffinity"] if {
	"affinity" in reasons
} else := ["tolerations"]

# Fixes in the order they are offered.
fix_hints := [
	["nodeSelector", "fix the nodeSelector (or label a node to match it)"],
	["affinity", "relax the required node affinity (or label a node to match it)"],
	["taint", "tolerate a listed taint if the pods belong on those nodes"],
	["cordoned", "uncordon a node"],
]

# fixes(reasons): the fixes for the reasons present, in fix_hints order.
fixes(reasons) := [hint | some [reason, hint] in fix_hints; reason in reasons]
