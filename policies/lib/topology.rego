# METADATA
# title: Topology library
# description: |
#   Pod anti-affinity and topology spread constraints as kube-scheduler's
#   InterPodAffinity and PodTopologySpread filters read them: which terms
#   count a workload's own pods, the topology keys a node must carry, and
#   the domains (values of a topology key) of the nodes. Used by the
#   placement policy and by podgate explain.
package podgate.lib.topology

# Sources mirrored here:
# - metav1.LabelSelectorAsSelector: a null selector selects nothing, an
#   empty one everything; matchLabels and matchExpressions are ANDed;
# - the API server's merge of matchLabelKeys (key In the pod's value: the
#   workload's own pods still match) and mismatchLabelKeys (key NotIn the
#   pod's value: its own pods do not) into a term's labelSelector;
# - PodAffinityTerm namespaces: none and no namespaceSelector means the
#   pod's own namespace, an empty namespaceSelector every namespace;
# - podtopologyspread: only DoNotSchedule constraints filter; a node
#   without every one of their topology keys is rejected ("missing required
#   label") and not counted; a domain is counted when its node passes the
#   constraint's nodeAffinityPolicy (default Honor: nodeSelector and
#   required node affinity) and nodeTaintsPolicy (default Ignore).

import data.podgate.lib.scheduling
import data.podgate.lib.text

hostname_key := "kubernetes.io/hostname"

zone_key := "topology.kubernetes.io/zone"

mapping(x) := x if is_object(x)

mapping(x) := {} if not is_object(x)

# selects(selector, labels): the metav1.LabelSelector selects a pod with
# these labels.
selects(selector, labels) if {
	is_object(selector)
	every key, value in mapping(object.get(selector, "matchLabels", {})) {
		labels[key] == value
	}
	every e in scheduling.list(object.get(selector, "matchExpressions", [])) {
		scheduling.expression_matches(e, labels)
	}
}

# --- pod anti-affinity ----------------------------------------------------------

required_anti_affinity(spec) := scheduling.list(object.get(spec, ["affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution"], []))

preferred_anti_affinity(spec) := [object.get(w, "podAffinityTerm", {}) |
	some w in scheduling.list(object.get(spec, ["affinity", "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution"], []))
]

# own_term(term, labels, namespace): the PodAffinityTerm certainly counts
# the pods of a workload with these pod labels in this namespace.
own_term(term, labels, namespace) if {
	selects_own(term, labels)
	covers_namespace(term, namespace)
}

# may_be_own_term: own_term, or it might be: a namespaceSelector with
# labels may select the workload's namespace, whose labels podgate does
# not know.
may_be_own_term(term, labels, namespace) if own_term(term, labels, namespace)

may_be_own_term(term, labels, _) if {
	selects_own(term, labels)
	count(mapping(object.get(term, "namespaceSelector", {}))) > 0
}

selects_own(term, labels) if {
	selects(object.get(term, "labelSelector", null), labels)
	not excludes_own(term, labels)
}

excludes_own(term, labels) if {
	some key in scheduling.list(object.get(term, "mismatchLabelKeys", []))
	labels[key]
}

covers_namespace(term, _) if {
	count(scheduling.list(object.get(term, "namespaces", []))) == 0
	object.get(term, "namespaceSelector", null) == null
}

covers_namespace(term, namespace) if namespace in scheduling.list(object.get(term, "namespaces", []))

covers_namespace(term, _) if object.get(term, "namespaceSelector", null) == {}

# --- topology spread constraints ------------------------------------------------

spread_constraints(spec) := scheduling.list(object.get(spec, "topologySpreadConstraints", []))

hard(c) if c.whenUnsatisfiable == "DoNotSchedule"

# hard_keys(spec): the topology keys of the DoNotSchedule constraints, in
# their order, each once.
hard_keys(spec) := [key |
	some i, c in spread_constraints(spec)
	hard(c)
	key := c.topologyKey
	not key in {d.topologyKey | some j, d in spread_constraints(spec); j < i; hard(d)}
]

# missing_keys(spec, labels): the keys of hard_keys a node with these
# labels lacks; PodTopologySpread rejects it when there is one.
missing_keys(spec, labels) := [key | some key in hard_keys(spec); not has_label(labels, key)]

has_label(labels, key) if _ = labels[key]

carries_hard_keys(spec, labels) if count(missing_keys(spec, labels)) == 0

# fit_labels(kind, spec, nodes): name -> labels of the nodes the scheduler's
# filters leave for a pod of spec: those scheduling.rejection accepts (the
# fit of tolerations/schedulable) that carry every DoNotSchedule key.
fit_labels(kind, spec, nodes) := {name: labels |
	tolerations := scheduling.effective_tolerations(kind, spec)
	some name, node in scheduling.candidates(spec, nodes)
	not scheduling.rejection(spec, tolerations, name, node)
	labels := scheduling.node_labels(node)
	carries_hard_keys(spec, labels)
}

# eligible_domains(kind, spec, c, nodes): the values of c's topology key
# that PodTopologySpread counts for constraint c, whether or not a pod of
# spec fits there.
eligible_domains(kind, spec, c, nodes) := {labels[c.topologyKey] |
	tolerations := scheduling.effective_tolerations(kind, spec)
	some name, node in nodes
	labels := scheduling.node_labels(node)
	carries_hard_keys(spec, labels)
	affinity_policy_includes(spec, c, name, labels)
	taints_policy_includes(spec, tolerations, c, node)
}

affinity_policy_includes(_, c, _, _) if object.get(c, "nodeAffinityPolicy", "Honor") == "Ignore"

affinity_policy_includes(spec, c, name, labels) if {
	object.get(c, "nodeAffinityPolicy", "Honor") != "Ignore"
	scheduling.selector_matches(object.get(spec, "nodeSelector", {}), labels)
	scheduling.affinity_matches(spec, name, labels)
}

taints_policy_includes(_, _, c, _) if object.get(c, "nodeTaintsPolicy", "Ignore") != "Honor"

taints_policy_includes(spec, tolerations, c, node) if {
	object.get(c, "nodeTaintsPolicy", "Ignore") == "Honor"
	not scheduling.first_untolerated(spec, tolerations, node)
}

# domain_noun(key, n): how a message counts n domains of key.
domain_noun(key, n) := sprintf("%d %s", [n, text.plural(n, "node", "nodes")]) if key == hostname_key

domain_noun(key, n) := sprintf("%d %s", [n, text.plural(n, "zone", "zones")]) if key == zone_key

domain_noun(key, n) := sprintf("%d %s %s", [n, key, text.plural(n, "value", "values")]) if {
	not key in {hostname_key, zone_key}
}
