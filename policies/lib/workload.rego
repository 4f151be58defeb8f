# METADATA
# title: Workload library
# description: |
#   The pod spec of any workload kind and the paths to its fields, so a policy
#   is written once for Pods, Deployments, StatefulSets, DaemonSets,
#   ReplicaSets, Jobs and CronJobs.
package podgate.lib.workload

# Where the pod spec lives, by kind.
spec_paths := {
	"Pod": ["spec"],
	"Deployment": ["spec", "template", "spec"],
	"StatefulSet": ["spec", "template", "spec"],
	"DaemonSet": ["spec", "template", "spec"],
	"ReplicaSet": ["spec", "template", "spec"],
	"Job": ["spec", "template", "spec"],
	"CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
}

# Workload kinds that run until they are deleted (so need probes, rollouts...).
long_running_kinds := {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}

obj := input.request.object

kind := input.request.kind.kind

namespace := object.get(input.request, "namespace", "")

name := n if {
	n := obj.metadata.name
	n != ""
} else := sprintf("%s*", [obj.metadata.generateName]) if {
	obj.metadata.generateName
} else := "<unnamed>"

# spec_path: path segments from the object root to the pod spec.
spec_path := spec_paths[kind]

# pod_spec: the pod spec of the admitted object, undefined for other kinds.
pod_spec := object.get(obj, spec_path, null) if {
	object.get(obj, spec_path, null) != null
}

# template_metadata: the metadata that the pods will carry.
template_metadata := object.get(obj, "metadata", {}) if {
	kind == "Pod"
} else := object.get(obj, array.concat(array.slice(spec_path, 0, count(spec_path) - 1), ["metadata"]), {})

# annotations: the object's annotations overlaid by its pod template's.
annotations := object.union(
	object.get(obj, ["metadata", "annotations"], {}),
	object.get(template_metadata, "annotations", {}),
)

labels := object.union(
	object.get(obj, ["metadata", "labels"], {}),
	object.get(template_metadata, "labels", {}),
)

# long_running is true for workloads that should stay up: every kind in
# long_running_kinds, except a bare Pod whose restartPolicy says it is a
# run-to-completion task.
long_running if {
	kind in long_running_kinds
	not kind == "Pod"
}

long_running if {
	kind == "Pod"
	object.get(pod_spec, "restartPolicy", "Always") == "Always"
}

# replicas: spec.replicas as the API server defaults it.
replicas := object.get(obj, ["spec", "replicas"], 1)

# containers: the regular containers, as index -> container.
containers := {i: c | some i, c in object.get(pod_spec, "containers", [])}

# all_containers: regular and init containers, for image checks.
all_containers := array.concat(object.get(pod_spec, "containers", []), object.get(pod_spec, "initContainers", []))

# container_path(i, rest): path segments to a field of regular container i.
container_path(i, rest) := array.concat(array.concat(spec_path, ["containers", i]), rest)

# spec_field_path(rest): path segments to a field of the pod spec.
spec_field_path(rest) := array.concat(spec_path, rest)

# field(path): a path as users write it: spec.template.spec.containers[0].image
field(path) := concat("", [segment_text(i, s) | some i, s in path])

segment_text(_, s) := sprintf("[%d]", [s]) if is_number(s)

segment_text(0, s) := s if is_string(s)

segment_text(i, s) := sprintf(".%s", [s]) if {
	is_string(s)
	i > 0
}

# pointer(path): a JSON pointer (RFC 6901) for a mutation.
pointer(path) := concat("", [sprintf("/%s", [escape(s)]) | some s in path])

escape(s) := format_int(s, 10) if is_number(s)

escape(s) := replace(replace(s, "~", "~0"), "/", "~1") if is_string(s)

# describe: how a message names the object, e.g. Deployment default/nginx.
describe := sprintf("%s %s/%s", [kind, namespace, name]) if namespace != ""

describe := sprintf("%s %s", [kind, name]) if namespace == ""

# image_repository(image): the last path segment of an image reference with
# registry, tag and digest removed: "docker.io/library/redis:7" -> "redis".
image_repository(image) := repo if {
	no_digest := split(image, "@")[0]
	parts := split(no_digest, "/")
	last := parts[count(parts) - 1]
	repo := split(last, ":")[0]
}

# image_tag(image): the tag of an image reference, "" when it has none.
image_tag(image) := tag if {
	no_digest := split(image, "@")[0]
	parts := split(no_digest, "/")
	last := parts[count(parts) - 1]
	pieces := split(last, ":")
	count(pieces) == 2
	tag := pieces[1]
} else := ""

image_has_digest(image) if contains(image, "@sha256:")
