# METADATA
# title: Rollout
# description: |
#   Rolling updates that keep enough pods available and do not surge past
#   the cluster's headroom, enough revision history to roll back, and image
#   references that name one version, so a rollback returns to the same code.
# custom:
#   enforcement: deny
#   rules:
#     min-available:
#       enforcement: deny
#       kinds: [Deployment, StatefulSet, DaemonSet]
#       summary: a rolling update keeps at least minAvailablePercent of the pods available
#     max-surge:
#       enforcement: deny
#       kinds: [Deployment, DaemonSet]
#       summary: a rolling update adds at most maxSurgePercent extra pods
#     revision-history:
#       enforcement: deny
#       kinds: [Deployment, StatefulSet, DaemonSet]
#       summary: revisionHistoryLimit keeps at least minRevisionHistory old revisions
#     progress-deadline:
#       enforcement: warn
#       kinds: [Deployment]
#       summary: a stuck Deployment rollout is reported within maxProgressDeadlineSeconds
#     recreate:
#       enforcement: warn
#       kinds: [Deployment]
#       summary: a Deployment with more than one replica does not use strategy Recreate
#     on-delete:
#       enforcement: warn
#       kinds: [StatefulSet, DaemonSet]
#       summary: a new StatefulSet or DaemonSet template reaches the pods (no OnDelete, no partition >= replicas)
#     pinned-image:
#       enforcement: warn
#       summary: every image has a version tag other than latest, or a digest
package podgate.policies.rollout

# Decisions where the spec is silent:
# - maxUnavailable and maxSurge resolve per kind as each controller does:
#   Deployment: defaults 25%/25%, surge rounds up, unavailable rounds down,
#   both 0 means unavailable 1 (intstr.fenceposts).
#   StatefulSet: only rollingUpdate.maxUnavailable exists; it is checked only
#   when set (absent, pods are replaced one at a time); it rounds down and
#   is at least 1 (getStatefulSetMaxUnavailable).
#   DaemonSet: percentages of the inventory nodes the DaemonSet runs on
#   (same node matching as the tolerations policy, with the controller's
#   tolerations), both rounding UP as the DaemonSet controller does
#   (UnavailableCount, SurgeCount); defaults maxUnavailable 1, maxSurge 0;
#   both 0 means unavailable 1. No inventory, or no node it runs on: skipped.
# - One pod (or node) at a time always passes min-available for StatefulSets
#   and DaemonSets: a StatefulSet cannot surge, and Kubernetes' own default
#   for both is 1, which would otherwise deny every default StatefulSet or
#   DaemonSet on fewer than 4 replicas/nodes. Deployments can always surge
#   instead (maxUnavailable 0, maxSurge 1), so they get no such floor.
# - replicas 0: min-available, max-surge and the partition check are skipped
#   (a workload scaled to zero has nothing to keep available or roll out).
# - max-surge covers Deployments and DaemonSets (StatefulSets cannot surge).
# - revision-history and progress-deadline: unset passes (the API server
#   defaults them to 10 and 600).
# - pinned-image covers every workload kind with a pod spec, regular and
#   init containers; a digest pins the image whatever its tag says.

import data.podgate.lib.intstr
import data.podgate.lib.text
import data.podgate.lib.workload

# Node matching (tolerations, nodeSelector, node affinity) shared with the
# tolerations policy, so both agree on which nodes a DaemonSet runs on.
import data.podgate.lib.scheduling

config := data.podgate.config.policies.rollout

obj := workload.obj

kind := workload.kind

replicas := workload.replicas

# The node inventory; empty when the webhook has none (decides nothing).
inventory := scheduling.nodes

# strategy: the object's update strategy ({} when it has none): a
# Deployment's spec.strategy, a StatefulSet's or DaemonSet's
# spec.updateStrategy.
strategy_key := "strategy" if kind == "Deployment"

strategy_key := "updateStrategy" if kind in {"StatefulSet", "DaemonSet"}

strategy_field := concat(".", ["spec", strategy_key])

strategy := s if {
	s := obj.spec[strategy_key]
	is_object(s)
} else := {}

strategy_type := object.get(strategy, "type", "RollingUpdate")

rolling_update := r if {
	r := strategy.rollingUpdate
	is_object(r)
} else := {}

# rolling: how a rolling update of this object proceeds. Undefined when it
# does not roll (other kinds, Recreate or OnDelete, scaled to 0, a
# StatefulSet without maxUnavailable, a DaemonSet without inventory).
rolling := r if {
	kind == "Deployment"
	strategy_type == "RollingUpdate"
	replicas > 0
	max_surge := object.get(rolling_update, "maxSurge", "25%")
	max_unavailable := object.get(rolling_update, "maxUnavailable", "25%")
	fp := intstr.fenceposts(max_surge, max_unavailable, replicas)
	r := {
		"desired": replicas,
		"max_surge": max_surge, "surge": fp.surge,
		"max_unavailable": max_unavailable, "unavailable": fp.unavailable,
	}
}

rolling := r if {
	kind == "StatefulSet"
	strategy_type == "RollingUpdate"
	replicas > 0
	max_unavailable := object.get(rolling_update, "maxUnavailable", null)
	max_unavailable != null
	raw := intstr.scaled(max_unavailable, replicas, false)
	r := {"desired": replicas, "max_unavailable": max_unavailable, "unavailable": max([raw, 1])}
}

rolling := r if {
	kind == "DaemonSet"
	strategy_type == "RollingUpdate"
	count(inventory) > 0
	nodes := scheduling.accepting_count(kind, workload.pod_spec, data.podgate.inventory)
	nodes > 0
	max_surge := object.get(rolling_update, "maxSurge", 0)
	max_unavailable := object.get(rolling_update, "maxUnavailable", 1)
	surge := intstr.scaled(max_surge, nodes, true)
	raw := intstr.scaled(max_unavailable, nodes, true)
	r := {
		"desired": nodes,
		"max_surge": max_surge, "surge": surge,
		"max_unavailable": max_unavailable, "unavailable": daemonset_unavailable(surge, raw),
	}
}

# of_text: what the percentages are of, for the messages.
of_text := sprintf("the %v nodes it runs on", [rolling.desired]) if {
	kind == "DaemonSet"
} else := sprintf("%v replicas", [rolling.desired])

# raised: maxSurge and maxUnavailable both came to 0, and maxUnavailable was
# raised to 1 (a StatefulSet's is raised to 1 only below the one-at-a-time
# floor, which min-available allows).
raised if {
	kind == "Deployment"
	rolling.unavailable > intstr.scaled(rolling.max_unavailable, rolling.desired, false)
}

raised if {
	kind == "DaemonSet"
	rolling.unavailable > intstr.scaled(rolling.max_unavailable, rolling.desired, true)
}

# The DaemonSet controller: with neither surge nor unavailability it
# accepts one unavailable pod so the update can proceed.
daemonset_unavailable(0, 0) := 1

daemonset_unavailable(surge, raw) := raw if {
	[surge, raw] != [0, 0]
}

# --- min-available ------------------------------------------------------------

min_available := ceil((rolling.desired * config.minAvailablePercent) / 100)

one_at_a_time_floor if {
	kind in {"StatefulSet", "DaemonSet"}
	rolling.unavailable <= 1
}

violation contains v if {
	rolling.desired - rolling.unavailable < min_available
	not one_at_a_time_floor
	v := {
		"rule": "min-available",
		"msg": sprintf("%s %s, leaving %v of %v available, fewer than the %v%% minimum (%v); %s", [
			unavailable_text, down_text,
			rolling.desired - rolling.unavailable, rolling.desired,
			config.minAvailablePercent, min_available, min_available_fix,
		]),
		"field": concat(".", [strategy_field, "rollingUpdate.maxUnavailable"]),
	}
}

unavailable_text := sprintf("maxSurge %v and maxUnavailable %v both come to 0 for %s, so Kubernetes uses maxUnavailable 1, which", [
	rolling.max_surge, rolling.max_unavailable, of_text,
]) if {
	raised
} else := sprintf("maxUnavailable %v of %s", [rolling.max_unavailable, of_text])

down_text := sprintf("lets %v %s go down during a rollout", [rolling.unavailable, text.plural(rolling.unavailable, "pod", "pods")])

allowed_unavailable := rolling.desired - min_available

min_available_fix := "set maxUnavailable to 0 and maxSurge to at least 1, so new pods are ready before old ones stop" if {
	kind == "Deployment"
	allowed_unavailable < 1
} else := "set maxUnavailable to 1 (or remove it) to replace one pod at a time" if {
	kind == "StatefulSet"
	allowed_unavailable <= 1
} else := "set maxUnavailable to 1, or to 0 with maxSurge 1 if the pods can run twice on a node" if {
	kind == "DaemonSet"
	allowed_unavailable <= 1
} else := sprintf("lower maxUnavailable to %v or less%s", [allowed_unavailable, surge_hint])

surge_hint := " (raise maxSurge to roll faster)" if kind == "Deployment"

surge_hint := "" if kind != "Deployment"

# --- max-surge ----------------------------------------------------------------

max_extra := ceil((rolling.desired * config.maxSurgePercent) / 100)

violation contains v if {
	rolling.surge > max_extra
	v := {
		"rule": "max-surge",
		"msg": sprintf("maxSurge %v of %s starts up to %v extra pods during a rollout, more than the %v%% limit (%v); lower maxSurge to %v or less", [
			rolling.max_surge, of_text, rolling.surge,
			config.maxSurgePercent, max_extra, max_extra,
		]),
		"field": concat(".", [strategy_field, "rollingUpdate.maxSurge"]),
	}
}

# --- revision-history -------------------------------------------------------

violation contains v if {
	kind in {"Deployment", "StatefulSet", "DaemonSet"}
	limit := obj.spec.revisionHistoryLimit
	is_number(limit)
	limit < config.minRevisionHistory
	v := {
		"rule": "revision-history",
		"msg": sprintf("revisionHistoryLimit %v keeps %s for `kubectl rollout undo`, fewer than %v; raise it to at least %v (unset, Kubernetes keeps 10)", [
			limit, revisions_text(limit), config.minRevisionHistory, config.minRevisionHistory,
		]),
		"field": "spec.revisionHistoryLimit",
	}
}

revisions_text(0) := "no old revision to go back to"

revisions_text(1) := "only 1 old revision"

revisions_text(n) := sprintf("only %v old revisions", [n]) if n > 1

# --- progress-deadline ------------------------------------------------------

violation contains v if {
	kind == "Deployment"
	seconds := obj.spec.progressDeadlineSeconds
	is_number(seconds)
	seconds > config.maxProgressDeadlineSeconds
	v := {
		"rule": "progress-deadline",
		"msg": sprintf("progressDeadlineSeconds %v lets a stuck rollout run %vs before the Deployment reports ProgressDeadlineExceeded, more than the %vs limit; lower it to %v or less", [
			seconds, seconds, config.maxProgressDeadlineSeconds, config.maxProgressDeadlineSeconds,
		]),
		"field": "spec.progressDeadlineSeconds",
	}
}

# --- recreate -----------------------------------------------------------------

violation contains v if {
	kind == "Deployment"
	strategy_type == "Recreate"
	replicas > 1
	v := {
		"rule": "recreate",
		"msg": sprintf("strategy Recreate stops all %v pods before starting new ones, so every rollout is an outage; use RollingUpdate, unless old and new pods must never run side by side", [replicas]),
		"field": "spec.strategy.type",
	}
}

# --- on-delete ----------------------------------------------------------------

violation contains v if {
	kind in {"StatefulSet", "DaemonSet"}
	strategy_type == "OnDelete"
	v := {
		"rule": "on-delete",
		"msg": sprintf("updateStrategy OnDelete never replaces running pods: a new template reaches a pod only when someone deletes it; use RollingUpdate%s", [on_delete_hint]),
		"field": "spec.updateStrategy.type",
	}
}

on_delete_hint := " (rollingUpdate.partition stages a rollout)" if kind == "StatefulSet"

on_delete_hint := " (maxUnavailable 1 replaces one node's pod at a time)" if kind == "DaemonSet"

violation contains v if {
	kind == "StatefulSet"
	strategy_type == "RollingUpdate"
	partition := rolling_update.partition
	is_number(partition)
	replicas > 0
	partition >= replicas
	v := {
		"rule": "on-delete",
		"msg": sprintf("rollingUpdate.partition %v is not below replicas %v, so no pod gets the new template; lower the partition to roll out (0 updates every pod)", [partition, replicas]),
		"field": "spec.updateStrategy.rollingUpdate.partition",
	}
}

# --- pinned-image -----------------------------------------------------------

nouns := {"containers": "container", "initContainers": "init container"}

violation contains v if {
	some c in workload.pod_containers
	c.image.digest == ""
	c.image.tag in {"", "latest"}
	noun := nouns[c.list]
	image := c.container.image
	v := {
		"rule": "pinned-image",
		"msg": sprintf("%s %s uses image %q: %s, so a rollback cannot return to the same code; pin a version tag (%s:<version>) or a digest (%s@sha256:<digest>)", [
			noun, c.name, image, tag_problem(c.image.tag),
			trim_suffix(image, ":latest"), trim_suffix(image, ":latest"),
		]),
		"field": concat(".", [c.field, "image"]),
	}
}

tag_problem("") := "with no tag it means latest, which moves with every push"

tag_problem("latest") := "the tag latest moves with every push"
