# METADATA
# title: Stateful volumes
# description: |
#   Stateful applications (databases, queues, key-value stores) keep their data
#   on PersistentVolumeClaims, one per replica; volume mounts name real volumes,
#   and hostPath volumes stay where the operator allows them.
# custom:
#   enforcement: deny
#   rules:
#     mount-declared:
#       enforcement: deny
#       summary: every volumeMount names a declared volume or, in a StatefulSet, a volumeClaimTemplate
#     persistent-storage:
#       enforcement: deny
#       kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet]
#       summary: a stateful workload mounts a PersistentVolumeClaim (a violation carries enforcement warn for a StatefulSet whose only sign of state is its kind)
#     claim-template:
#       enforcement: deny
#       kinds: [StatefulSet]
#       summary: each volumeClaimTemplate has accessModes and resources.requests.storage
#     host-path:
#       enforcement: deny
#       summary: hostPath volumes only in the allowed namespaces and under the allowed path prefixes
#     shared-claim:
#       enforcement: warn
#       kinds: [Deployment, ReplicaSet]
#       summary: a Deployment or ReplicaSet with more than one replica does not share a persistentVolumeClaim
#     ordered-start:
#       enforcement: warn
#       kinds: [StatefulSet]
#       summary: a StatefulSet of a stateful image starts its pods in order (podManagementPolicy OrderedReady)
package podgate.policies.stateful_volumes

# Decisions where the spec (policies.md) is silent:
#
# - Stateful images are matched on regular containers only. Init containers
#   run to completion and keep no data, and one using a database image as a
#   client (pg_isready, mysqladmin ping) is common.
# - The image match is a plain prefix of the repository name, as the spec
#   says, so bitnami/postgresql and mongodb match; it also matches helpers
#   such as mongo-express or redis_exporter run on their own (opt them out
#   with podgate.dev/stateful: "false" where config allowOptOut is on).
# - The label podgate.dev/stateful: "false" (where allowed) opts the workload
#   out entirely, StatefulSet or not; "true" makes it stateful with deny.
# - persistent-storage and ordered-start look at workload.long_running
#   objects only: a Job, CronJob or run-to-completion Pod using a database
#   image is a client (a backup with pg_dump, a migration), not a server.
# - persistent-storage: only a mount, in a regular container, of a
#   persistentVolumeClaim volume or a volumeClaimTemplate counts. Inline
#   network volumes (nfs, iscsi, ...) do not: the spec asks for a
#   PersistentVolumeClaim. The violation carries "enforcement": "warn" when
#   the only reason the workload is stateful is that it is a StatefulSet;
#   the webhook applies it as that violation's default enforcement.
# - mount-declared checks regular and init containers.
# - host-path: outside hostPathAllowedNamespaces any hostPath is denied;
#   inside them its path must lie under an entry of hostPathAllowedPrefixes,
#   compared segment by segment ("/var/log" allows "/var/log" and
#   "/var/log/pods" but not "/var/logs"). A path with a ".." segment lies
#   under no prefix but "/".
# - shared-claim counts every persistentVolumeClaim volume of the pod spec,
#   mounted or not (the kubelet attaches it either way), and cannot tell a
#   ReadWriteMany claim from a ReadWriteOnce one, hence only a warning.

import data.podgate.lib.workload

config := data.podgate.config.policies["stateful-volumes"]

stateful_label := "podgate.dev/stateful"

volumes := object.get(workload.pod_spec, "volumes", [])

volume_named := {v.name: v | some v in volumes}

claim_templates := {t.metadata.name |
	workload.kind == "StatefulSet"
	some t in object.get(workload.obj, ["spec", "volumeClaimTemplates"], [])
}

# mounts: every volumeMount of the regular and init containers, as
# [container, index, mount], the container as workload.pod_containers has it.
mounts := [[c, j, m] |
	some c in workload.pod_containers
	c.list != "ephemeralContainers"
	some j, m in object.get(c.container, "volumeMounts", [])
]

# --- which workloads are stateful --------------------------------------------

# stateful_image_containers: the regular containers that run a stateful image.
stateful_image_containers := [c.container |
	some c in workload.pod_containers
	c.regular
	strings.any_prefix_match(c.image.repository, config.statefulImages)
]

opted_out if {
	config.allowOptOut == true
	workload.labels[stateful_label] == "false"
}

labelled_stateful if workload.labels[stateful_label] == "true"

stateful_image if {
	count(stateful_image_containers) > 0
	not opted_out
}

stateful if {
	workload.kind == "StatefulSet"
	not opted_out
}

stateful if stateful_image

stateful if labelled_stateful

# A StatefulSet whose only sign of state is its kind may use it just for
# stable names: warn, not deny.
only_kind_says_stateful if {
	not stateful_image
	not labelled_stateful
}

why_stateful := sprintf("container %q runs %s, a stateful image", [c.name, c.image]) if {
	stateful_image
	c := stateful_image_containers[0]
} else := sprintf("it is labelled %s: \"true\"", [stateful_label]) if {
	labelled_stateful
} else := "it is a StatefulSet"

# --- persistent-storage --------------------------------------------------------

persistent(name) if name in claim_templates

persistent(name) if volume_named[name].persistentVolumeClaim

mounts_claim if {
	some [c, _, m] in mounts
	c.regular
	persistent(m.name)
}

# lost: how each mounted emptyDir, ephemeral or hostPath volume loses data.
lost contains sprintf("%s volume %q at %s %s", [type, m.name, m.mountPath, fate[type]]) if {
	some [c, _, m] in mounts
	c.regular
	some type, _ in volume_named[m.name]
	fate[type]
}

fate := {
	"emptyDir": "is deleted with the pod",
	"ephemeral": "is deleted with the pod",
	"hostPath": "stays behind on one node when the pod moves",
}

where_data_goes := concat(", ", sort(lost)) if {
	count(lost) > 0
} else := "whatever it writes outside volumes goes when its container restarts"

persistent_storage_fix := "add a volumeClaimTemplate and mount it at the data directory, or ignore this warning if the StatefulSet is used only for stable network names" if {
	only_kind_says_stateful
} else := "add a volumeClaimTemplate and mount it at the data directory" if {
	workload.kind == "StatefulSet"
} else := "mount a persistentVolumeClaim volume at the data directory, or run it as a StatefulSet with a volumeClaimTemplate"

persistent_storage_field := "spec.volumeClaimTemplates" if {
	workload.kind == "StatefulSet"
} else := sprintf("%s.volumes[%d]", [workload.spec_field, i]) if {
	lost_names := {m.name | some [c, _, m] in mounts; c.regular; some type, _ in volume_named[m.name]; fate[type]}
	i := min({j | some j, v in volumes; v.name in lost_names})
} else := concat(".", [workload.spec_field, "volumes"])

violation contains object.union(v, extra) if {
	workload.long_running
	stateful
	not mounts_claim
	v := {
		"rule": "persistent-storage",
		"msg": sprintf("the workload is stateful (%s) but mounts no PersistentVolumeClaim, so its data is lost: %s; %s", [why_stateful, where_data_goes, persistent_storage_fix]),
		"field": persistent_storage_field,
	}
	extra := persistent_storage_enforcement
}

persistent_storage_enforcement := {"enforcement": "warn"} if {
	only_kind_says_stateful
} else := {}

# --- mount-declared ----------------------------------------------------------

violation contains v if {
	some [c, j, m] in mounts
	name := m.name
	not volume_named[name]
	not name in claim_templates
	v := {
		"rule": "mount-declared",
		"msg": sprintf("container %q mounts volume %q at %s, but %s declares no such %s; %s", [
			c.name, name, object.get(m, "mountPath", ""),
			declared_in, declared_what, declare_fix(name),
		]),
		"field": sprintf("%s.volumeMounts[%d].name", [c.field, j]),
	}
}

declared_in := "the StatefulSet" if workload.kind == "StatefulSet"

else := "the pod spec"

declared_what := "volume or volumeClaimTemplate" if workload.kind == "StatefulSet"

else := "volume"

declare_fix(name) := sprintf("add a volume or a volumeClaimTemplate named %q, or correct the mount's name", [name]) if {
	workload.kind == "StatefulSet"
} else := sprintf("add a volume named %q to the pod spec, or correct the mount's name", [name])

# --- claim-template -----------------------------------------------------------

violation contains v if {
	workload.kind == "StatefulSet"
	some i, t in object.get(workload.obj, ["spec", "volumeClaimTemplates"], [])
	missing := [what |
		some what, present in {
			"accessModes": count(object.get(t, ["spec", "accessModes"], [])) > 0,
			"resources.requests.storage": object.get(t, ["spec", "resources", "requests", "storage"], null) != null,
		}
		present == false
	]
	count(missing) > 0
	v := {
		"rule": "claim-template",
		"msg": sprintf(
			"volumeClaimTemplate %q has no %s; set spec.accessModes (e.g. [ReadWriteOnce]) and spec.resources.requests.storage (e.g. 10Gi)",
			[object.get(t, ["metadata", "name"], ""), concat(" and no ", missing)],
		),
		"field": sprintf("spec.volumeClaimTemplates[%d].spec", [i]),
	}
}

# --- host-path ----------------------------------------------------------------

violation contains v if {
	some i, vol in volumes
	vol.hostPath
	not workload.namespace in config.hostPathAllowedNamespaces
	v := {
		"rule": "host-path",
		"msg": sprintf(
			"hostPath volume %q (%s) is not allowed in namespace %q, it ties the pod's data to one node and exposes the node's files; use a persistentVolumeClaim (or emptyDir for scratch space), or run it in an allowed namespace (%s)",
			[vol.name, vol.hostPath.path, workload.namespace, concat(", ", config.hostPathAllowedNamespaces)],
		),
		"field": sprintf("%s.volumes[%d].hostPath", [workload.spec_field, i]),
	}
}

violation contains v if {
	some i, vol in volumes
	vol.hostPath
	workload.namespace in config.hostPathAllowedNamespaces
	not allowed_host_path(vol.hostPath.path)
	v := {
		"rule": "host-path",
		"msg": sprintf(
			"hostPath volume %q uses %s, which is not under an allowed prefix (%s); mount a directory under one of them, or use a persistentVolumeClaim",
			[vol.name, vol.hostPath.path, concat(", ", config.hostPathAllowedPrefixes)],
		),
		"field": sprintf("%s.volumes[%d].hostPath.path", [workload.spec_field, i]),
	}
}

allowed_host_path(path) if {
	some prefix in config.hostPathAllowedPrefixes
	under(path, prefix)
}

# under(path, prefix): path is prefix or inside it, segment by segment.
under(_, prefix) if count(segments(prefix)) == 0

under(path, prefix) if {
	want := segments(prefix)
	count(want) > 0
	have := segments(path)
	not ".." in have
	count(have) >= count(want)
	array.slice(have, 0, count(want)) == want
}

segments(path) := [s | some s in split(path, "/"); s != ""; s != "."]

# --- shared-claim ---------------------------------------------------------------

violation contains v if {
	workload.kind in {"Deployment", "ReplicaSet"}
	workload.replicas > 1
	some i, vol in volumes
	claim := vol.persistentVolumeClaim.claimName
	v := {
		"rule": "shared-claim",
		"msg": sprintf(
			"all %d replicas share persistentVolumeClaim %q (volume %q); a ReadWriteOnce claim cannot be mounted by pods on other nodes, so they hang in ContainerCreating; run a StatefulSet with a volumeClaimTemplate to give each replica its own claim, or use a ReadWriteMany claim",
			[workload.replicas, claim, vol.name],
		),
		"field": sprintf("%s.volumes[%d].persistentVolumeClaim", [workload.spec_field, i]),
	}
}

# --- ordered-start ----------------------------------------------------------------

violation contains v if {
	workload.kind == "StatefulSet"
	stateful_image
	workload.obj.spec.podManagementPolicy == "Parallel"
	v := {
		"rule": "ordered-start",
		"msg": sprintf(
			"podManagementPolicy Parallel starts and stops all pods at once, but %s, and its replicas (a primary and its followers, a quorum) expect pod 0 to be up before the others start; remove podManagementPolicy to get the default OrderedReady",
			[why_stateful],
		),
		"field": "spec.podManagementPolicy",
	}
}
