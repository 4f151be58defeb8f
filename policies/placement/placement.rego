# METADATA
# title: Placement
# description: |
#   Where the replicas of a workload can run: replicas that fit a single
#   node, so one node failure takes them all down; replicas that nothing
#   spreads over nodes or zones; replicas that pod anti-affinity or a
#   topology spread constraint leaves Pending for good. Judged against the
#   Node inventory with the node fit of tolerations/schedulable (see
#   policies/lib/scheduling.rego and policies/lib/topology.rego).
# custom:
#   enforcement: deny
#   kinds: [Pod, Deployment, StatefulSet, ReplicaSet]
#   rules:
#     single-node:
#       enforcement: warn
#       kinds: [Deployment, StatefulSet, ReplicaSet]
#       summary: the replicas of a workload fit more than one node
#     spread:
#       enforcement: warn
#       kinds: [Deployment, StatefulSet, ReplicaSet]
#       summary: minReplicasToSpread or more replicas are spread over nodes or zones
#     unsatisfiable:
#       enforcement: warn
#       summary: pod anti-affinity and topology spread constraints let every replica be scheduled
package podgate.policies.placement

# Decisions where the spec is silent:
# - Replicas are spec.replicas (default 1) of Deployments, StatefulSets and
#   ReplicaSets; unsatisfiable also covers a bare Pod (one replica). Jobs,
#   CronJobs and DaemonSets are left alone: a Job's pods finish and free
#   their node, a DaemonSet's pods are one per node by construction.
# - The node fit is scheduling.rejection, the fit of tolerations/schedulable
#   (cordoning, nodeName, taints, nodeSelector, required node affinity),
#   counted by node class. With an empty inventory, or with one node, the
#   rules that need the inventory decide nothing (on a one-node cluster
#   every workload fits one node and there is nothing to fix but adding
#   nodes); with no node fitting at all, tolerations/schedulable speaks.
# - single-node: a nodeName in the pod template pins every replica to that
#   node and is reported as such.
# - spread: a topologySpreadConstraint (either whenUnsatisfiable) whose
#   labelSelector selects the workload's own pods spreads them, on any
#   topology key; pod anti-affinity (required or preferred) does on
#   kubernetes.io/hostname or topology.kubernetes.io/zone. A term with a
#   namespaceSelector podgate cannot resolve counts as spreading (warn only
#   when sure). Not reported when at most one node fits: single-node (or
#   tolerations/schedulable) says what matters, and spreading cannot help.
# - unsatisfiable follows kube-scheduler's filters for a workload whose own
#   pods are the only ones its terms select:
#   * required pod anti-affinity on key K against its own pods allows one
#     pod per value of K among the nodes the pods fit (no limit when one of
#     those nodes lacks K: the term does not apply there);
#   * DoNotSchedule constraints reject nodes without their topology keys: no
#     fitting node carrying them leaves every replica Pending;
#   * a DoNotSchedule constraint counts the domains of every node its
#     nodeAffinityPolicy and nodeTaintsPolicy let in (taints are ignored by
#     default). When some of them can never get a pod (tainted, cordoned),
#     or there are fewer than minDomains, the smallest count stays 0 and
#     each domain the pods fit takes at most maxSkew pods.
#   The message counts the replicas that stay Pending; with two limits at
#   once it says "at least", as their combination may leave more.

import data.podgate.lib.scheduling
import data.podgate.lib.text
import data.podgate.lib.topology
import data.podgate.lib.workload

config := data.podgate.config.policies.placement

replicated_kinds := {"Deployment", "StatefulSet", "ReplicaSet"}

kind := workload.kind

spec := workload.pod_spec

replicas := workload.replicas

namespace := workload.namespace

# own_labels: the labels of the workload's pods.
own_labels := topology.mapping(object.get(workload.template_metadata, "labels", {}))

# The node inventory; empty when the webhook has none (decides nothing).
inventory := scheduling.nodes

tolerations := scheduling.effective_tolerations(kind, spec)

groups := scheduling.node_groups(spec, data.podgate.inventory)

# The node groups (classes) are asked only what each rule needs, each
# question stopping at its first answer, in the order the engine gives
# them (the classes most pods fit first): on a large cluster most
# workloads fit many nodes, and the first class of several nodes settles
# them at once. fits(i) asks group i, by its index.

fits(i) if not scheduling.rejection(spec, tolerations, groups[i].first, groups[i].node)

# single_node: the one node the pods fit, when there is exactly one.
single_node := g.first if {
	some i, g in groups
	g.count == 1
	fits(i)
	not fits_elsewhere(i)
}

fits_elsewhere(i) if {
	some j, _ in groups
	j != i
	fits(j)
}

fits_two_nodes if {
	some i, g in groups
	g.count > 1
	fits(i)
}

fits_two_nodes if {
	some i, _ in groups
	fits(i)
	fits_elsewhere(i)
}

# --- single-node --------------------------------------------------------------

violation contains v if {
	kind in replicated_kinds
	replicas >= 2
	count(inventory) >= 2
	not scheduling.bound(spec)
	not fits_two_nodes
	node := single_node
	others := [{"rejection": r, "count": g.count, "first": g.first} |
		some g in groups
		r := scheduling.rejection(spec, tolerations, g.first, g.node)
	]
	reasons := scheduling.reason_groups(others)
	causes := {g.reason | some g in reasons}
	v := {
		"rule": "single-node",
		"msg": sprintf("all %v replicas fit only node %s: of the other %d nodes, %s; one failure or drain of %s takes every replica down; %s", [
			replicas, node, count(inventory) - 1,
			concat(", ", [g.text | some g in reasons]), node,
			text.or_list(array.concat(scheduling.fixes(causes), ["add nodes the pods fit"])),
		]),
		"field": workload.field(workload.spec_field_path(scheduling.fix_field(causes))),
	}
}

violation contains v if {
	kind in replicated_kinds
	replicas >= 2
	count(inventory) >= 2
	scheduling.bound(spec)
	inventory[spec.nodeName]
	v := {
		"rule": "single-node",
		"msg": sprintf("nodeName pins all %v replicas to node %s, so one failure or drain of it takes every replica down; remove nodeName and let the scheduler place them (a nodeSelector or node affinity picks a kind of node)", [
			replicas, spec.nodeName,
		]),
		"field": workload.field(workload.spec_field_path(["nodeName"])),
	}
}

# --- spread -------------------------------------------------------------------

violation contains v if {
	kind in replicated_kinds
	replicas >= config.minReplicasToSpread
	not spreads
	not fits_at_most_one_node
	v := {
		"rule": "spread",
		"msg": sprintf(
			concat("", [
				"nothing spreads its %v replicas: no topologySpreadConstraints and no pod anti-affinity on %s or %s select its own pods, ",
				"and the scheduler's own spreading is only a preference that taint, affinity and resource scores outweigh, ",
				"so they may all land on one node and go down with it; add to the pod template ",
				"topologySpreadConstraints: [{maxSkew: 1, topologyKey: %s, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: %s}}] ",
				"(DoNotSchedule makes it a hard rule; a second entry with topologyKey %s spreads them over zones)",
			]),
			[replicas, topology.hostname_key, topology.zone_key, topology.hostname_key, flow_mapping(pod_selector), topology.zone_key],
		),
		"field": workload.field(workload.spec_field_path(["topologySpreadConstraints"])),
	}
}

spreads if {
	some c in topology.spread_constraints(spec)
	topology.selects(object.get(c, "labelSelector", null), own_labels)
}

spreads if {
	some term in array.concat(topology.required_anti_affinity(spec), topology.preferred_anti_affinity(spec))
	object.get(term, "topologyKey", "") in {topology.hostname_key, topology.zone_key}
	topology.may_be_own_term(term, own_labels, namespace)
}

fits_at_most_one_node if {
	count(inventory) > 0
	not fits_two_nodes
}

# pod_selector: the labels that pick out the workload's pods: its
# selector's matchLabels, else its pod labels.
pod_selector := s if {
	s := topology.mapping(object.get(workload.obj, ["spec", "selector", "matchLabels"], {}))
	count(s) > 0
} else := own_labels

# flow_mapping(m): m as a YAML flow mapping, keys sorted, values quoted
# where YAML would read them as something else than a string.
flow_mapping(m) := sprintf("{%s}", [concat(", ", [sprintf("%s: %s", [k, yaml_string(m[k])]) | some k in sort(object.keys(m))])])

yaml_string(s) := s if {
	regex.match(`^[A-Za-z][-A-Za-z0-9_./]*$`, s)
	not lower(s) in {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}
} else := sprintf("%q", [s])

# --- unsatisfiable ------------------------------------------------------------

violation contains v if {
	kind in (replicated_kinds | {"Pod"})
	replicas > 0
	count(inventory) > 0
	not scheduling.bound(spec)
	limited
	scheduling.accepts_some(spec, tolerations, groups)
	low := min({l.capacity | some l in limits})
	low < replicas
	worst := sort([[l.field, l] | some l in limits; l.capacity == low])[0][1]
	v := {
		"rule": "unsatisfiable",
		"msg": sprintf("%s: %s; %s", [worst.why, pending_text(replicas - low), worst.fix]),
		"field": workload.field(workload.spec_field_path(worst.path)),
	}
}

pending_text(_) := "the pod stays Pending" if kind == "Pod"

pending_text(n) := sprintf("%sall %v replicas stay Pending", [at_least, replicas]) if {
	kind != "Pod"
	n == replicas
}

pending_text(n) := sprintf("%s%v of %v replicas stay Pending%s", [at_least, n, replicas, ordered_note]) if {
	kind != "Pod"
	n < replicas
}

# at_least: with two constraints limiting at once, their combination may
# leave more pods Pending than the tighter one alone.
at_least := "at least " if {
	count([l | some l in limits; l.capacity < replicas]) > 1
} else := ""

ordered_note := " (the StatefulSet creates the first of them and waits for it, OrderedReady)" if {
	kind == "StatefulSet"
	object.get(workload.obj, ["spec", "podManagementPolicy"], "OrderedReady") == "OrderedReady"
} else := ""

# limited: the pod spec has what can limit how many of its pods schedule.
limited if count(topology.required_anti_affinity(spec)) > 0

limited if count(topology.hard_keys(spec)) > 0

# fit: name -> labels of the nodes the scheduler's filters leave (O(nodes),
# only computed for a workload with anti-affinity or hard spread constraints).
fit := topology.fit_labels(kind, spec, inventory)

# limits: how many of the workload's pods each constraint lets be scheduled.
limits contains l if {
	count(topology.hard_keys(spec)) > 0
	count(fit) == 0
	l := {
		"capacity": 0, "field": "0", "path": ["topologySpreadConstraints"],
		"why": sprintf("no node the pods fit carries every topologyKey of their DoNotSchedule topologySpreadConstraints (%s), and PodTopologySpread rejects a node without one (missing required label)", [
			concat(", ", topology.hard_keys(spec)),
		]),
		"fix": "label the nodes, use a topologyKey they carry, or make the constraint whenUnsatisfiable: ScheduleAnyway",
	}
}

limits contains l if {
	some i, term in topology.required_anti_affinity(spec)
	topology.own_term(term, own_labels, namespace)
	count(fit) > 0
	key := term.topologyKey
	every labels in fit {
		topology.has_label(labels, key)
	}
	domains := count({labels[key] | some labels in fit})
	l := {
		"capacity": domains, "field": sprintf("1-%03d", [i]),
		"path": ["affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", i],
		"why": sprintf("required pod anti-affinity on %s against its own pods allows one pod per %s, and the pods fit %s", [
			key, one_domain(key), topology.domain_noun(key, domains),
		]),
		"fix": sprintf("lower replicas to %d, make the anti-affinity preferredDuringSchedulingIgnoredDuringExecution, or let the pods onto more nodes", [domains]),
	}
}

limits contains l if {
	some i, c in topology.spread_constraints(spec)
	topology.hard(c)
	topology.selects(object.get(c, "labelSelector", null), own_labels)
	count(fit) > 0
	fitting := {labels[c.topologyKey] | some labels in fit}
	eligible := topology.eligible_domains(kind, spec, c, inventory)
	min_domains := min_domains_of(c)
	skew := object.get(c, "maxSkew", 1)
	some why in spread_limit(c, i, count(fitting), count(eligible), min_domains, skew)
	l := {
		"capacity": count(fitting) * skew, "field": sprintf("2-%03d", [i]),
		"path": ["topologySpreadConstraints", i],
		"why": why,
		"fix": sprintf("use whenUnsatisfiable: ScheduleAnyway, lower replicas to %v, or let the pods onto the other domains (nodeTaintsPolicy: Honor leaves out the nodes whose taints keep them off)", [
			count(fitting) * skew,
		]),
	}
}

min_domains_of(c) := n if {
	n := c.minDomains
	is_number(n)
} else := 1

# spread_limit: why constraint i caps each fitting domain at maxSkew pods.
spread_limit(c, i, fitting, eligible, min_domains, skew) := {sprintf(
	"topologySpreadConstraints[%d] (topologyKey %s, maxSkew %v, DoNotSchedule) asks for minDomains %v but there are %s, so the scheduler takes the global minimum as 0 pods and each of the %s the pods fit takes at most %v",
	[i, c.topologyKey, skew, min_domains, topology.domain_noun(c.topologyKey, eligible), topology.domain_noun(c.topologyKey, fitting), skew],
)} if {
	min_domains > eligible
} else := {sprintf(
	"topologySpreadConstraints[%d] (topologyKey %s, maxSkew %v, DoNotSchedule) counts %s but the pods fit only %d: the other %d never %s a pod, so each one the pods fit takes at most %v",
	[i, c.topologyKey, skew, topology.domain_noun(c.topologyKey, eligible), fitting, eligible - fitting, text.plural(eligible - fitting, "gets", "get"), skew],
)} if {
	eligible > fitting
} else := set()

one_domain(key) := "node" if key == topology.hostname_key

one_domain(key) := "zone" if key == topology.zone_key

one_domain(key) := sprintf("value of %s", [key]) if not key in {topology.hostname_key, topology.zone_key}
