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

deployment_strategy := ["spec", "strategy"]

update_strategy := ["spec", "updateStrategy"]

strategy_path := deployment_strategy if kind == "Deployment"

strategy_path := update_strategy if kind in {"StatefulSet", "DaemonSet"}

strategy_type := object.get(obj, array.concat(strategy_path, ["type"]), "RollingUpdate")

surge_path := array.concat(strategy_path, ["rollingUpdate", "maxSurge"])

unavailable_path := array.concat(strategy_path, ["rollingUpdate", "maxUnavailable"])

# rolling: how a rolling update of this object proceeds. Undefined when it
# does not roll (other kinds, Recreate or OnDelete, scaled to 0, a
# StatefulSet without maxUnavailable, a DaemonSet without inventory).
rolling := r if {
	kind == "Deployment"
	strategy_type == "RollingUpdate"
	replicas > 0
	max_surge := object.get(obj, surge_path, "25%")
	max_unavailable := object.get(obj, unavailable_path, "25%")
	fp := intstr.fenceposts(max_surge, max_unavailable, replicas)
	r := {
		"desired": replicas, "of": sprintf("%v replicas", [replicas]),
		"max_surge": max_surge, "surge": fp.surge,
		"max_unavailable": max_unavailable, "unavailable": fp.unavailable,
		"raised": fp.unavailable > intstr.scaled(max_unavailable, replicas, false),
	}
}

rolling := r if {
	kind == "StatefulSet"
	strategy_type == "RollingUpdate"
	replicas > 0
	max_unavailable := object.get(obj, unavailable_path, null)
	max_unavailable != null
	raw := intstr.scaled(max_unavailable, replicas, false)
	r := {
		"desired": replicas, "of": sprintf("%v replicas", [replicas]),
		"max_unavailable": max_unavailable, "unavailable": max([raw, 1]),
		"raised": false, # raised to 1 only below the one-at-a-time floor
	}
}

rolling := r if {
	kind == "DaemonSet"
	strategy_type == "RollingUpdate"
	count(inventory) > 0
	nodes := scheduling.accepting_count(kind, workload.pod_spec, data.podgate.inventory)
	nodes > 0
	max_surge := object.get(obj, surge_path, 0)
	max_unavailable := object.get(obj, unavailable_path, 1)
	surge := intstr.scaled(max_surge, nodes, true)
	raw := intstr.scaled(max_unavailable, nodes, true)
	unavailable := daemonset_unavailable(surge, raw)
	r := {
		"desired": nodes, "of": sprintf("the %v nodes it runs on", [nodes]),
		"max_surge": max_surge, "surge": surge,
		"max_unavailable": max_unavailable, "unavailable": unavailable,
		"raised": unavailable > raw,
	}
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
		"field": workload.field(unavailable_path),
	}
}

unavailable_text := sprintf("maxSurge %v and maxUnavailable %v both come to 0 for %s, so Kubernetes uses maxUnavailable 1, which", [
	rolling.max_surge, rolling.max_unavailable, rolling.of,
]) if {
	rolling.raised
} else := sprintf("maxUnavailable %v of %s", [rolling.max_unavailable, rolling.of])

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
			rolling.max_surge, rolling.of, rolling.surge,
			config.maxSurgePercent, max_extra, max_extra,
		]),
		"field": workload.field(surge_path),
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
		"field": workload.field(["spec", "revisionHistoryLimit"]),
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
		"field": workload.field(["spec", "progressDeadlineSeconds"]),
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
		"field": workload.field(["spec", "strategy", "type"]),
	}
}

# --- on-delete ----------------------------------------------------------------

violation contains v if {
	kind in {"StatefulSet", "DaemonSet"}
	strategy_type == "OnDelete"
	v := {
		"rule": "on-delete",
		"msg": sprintf("updateStrategy OnDelete never replaces running pods: a new template reaches a pod only when someone deletes it; use RollingUpdate%s", [on_delete_hint]),
		"field": workload.field(["spec", "updateStrategy", "type"]),
	}
}

on_delete_hint := " (rollingUpdate.partition stages a rollout)" if kind == "StatefulSet"

on_delete_hint := " (maxUnavailable 1 replaces one node's pod at a time)" if kind == "DaemonSet"

violation contains v if {
	kind == "StatefulSet"
	strategy_type == "RollingUpdate"
	partition := obj.spec.updateStrategy.rollingUpdate.partition
	is_number(partition)
	replicas > 0
	partition >= replicas
	v := {
		"rule": "on-delete",
		"msg": sprintf("rollingUpdate.partition %v is not below replicas %v, so no pod gets the new template; lower the partition to roll out (0 updates every pod)", [partition, replicas]),
		"field": workload.field(["spec", "updateStrategy", "rollingUpdate", "partition"]),
	}
}

# --- pinned-image -----------------------------------------------------------

container_groups := {"containers": "container", "initContainers": "init container"}

violation contains v if {
	some group, noun in container_groups
	containers := object.get(workload.pod_spec, group, [])
	is_array(containers)
	some i, container in containers
	image := container.image
	not workload.image_has_digest(image)
	workload.image_tag(image) in {"", "latest"}
	v := {
		"rule": "pinned-image",
		"msg": sprintf("%s %s uses image %q: %s, so a rollback cannot return to the same code; pin a version tag (%s:<version>) or a digest (%s@sha256:<digest>)", [
			noun, container.name, image, tag_problem(image),
			trim_suffix(image, ":latest"), trim_suffix(image, ":latest"),
		]),
		"field": workload.field(workload.spec_field_path([group, i, "image"])),
	}
}

tag_problem(image) := "with no tag it means latest, which moves with every push" if {
	workload.image_tag(image) == ""
} else := "the tag latest moves with every push"
