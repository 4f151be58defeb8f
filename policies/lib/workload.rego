# METADATA
# title: Workload library
# description: |
#   The facts about the admitted object that nearly every rule needs: its
#   pod spec, its containers with where each one is, the labels and
#   annotations its pods carry, whether it runs until deleted, so a policy
#   is written once for Pods, Deployments, StatefulSets, DaemonSets,
#   ReplicaSets, Jobs and CronJobs. The engine computes them once per
#   request (input.workload, docs/rule-contract.md); view computes the same
#   here where it does not (opa test, a plain OPA).
package podgate.lib.workload

# view: input.workload as the engine gives it, else the same computed from
# input.request (computed_view).
view := input.workload if {
	is_object(input.workload)
} else := computed_view

obj := input.request.object

kind := view.kind

namespace := view.namespace

# name: metadata.name, else metadata.generateName followed by *. Like
# describe and all_containers below, no built-in policy needs it; custom
# policies written to docs/rule-contract.md do.
name := view.name

# describe: how a message names the object, e.g. Deployment default/nginx.
describe := view.object

# pod_spec: the pod spec of the admitted object, undefined for other kinds.
pod_spec := view.podSpec if view.podSpec != null

# spec_field: where the pod spec is, as a violation's field says it:
# "spec.template.spec" for a Deployment.
spec_field := view.podSpecField

# template_metadata: the metadata that the pods will carry.
template_metadata := view.templateMetadata

# annotations, labels: the object's, overlaid by its pod template's.
annotations := view.annotations

labels := view.labels

# long_running is true for workloads that should stay up: Deployments,
# StatefulSets, DaemonSets, ReplicaSets, and a bare Pod unless its
# restartPolicy says it is a run-to-completion task.
long_running if view.longRunning

# replicas: spec.replicas as the API server defaults it.
replicas := view.replicas

# pod_containers: every container of the pod spec, regular, init and
# ephemeral in that order, with where it is:
#   {"name": "app", "list": "containers", "index": 0, "regular": true,
#    "sidecar": false, "container": {...},
#    "field": "spec.template.spec.containers[0]",
#    "pointer": "/spec/template/spec/containers/0",
#    "image": {"repository": "app", "tag": "1.2", "digest": ""}}
# sidecar: an init container with restartPolicy Always. name is absent
# when the container has none, image when its image is not a string. A rule extends field and
# pointer for what it reports: sprintf("%s.ports[%d]", [c.field, j]).
pod_containers := view.containers

# containers: the regular containers, as index -> container.
containers := {c.index: c.container | some c in view.containers; c.regular}

# all_containers: regular and init containers, for image checks.
all_containers := [c.container | some c in view.containers; c.list != "ephemeralContainers"]

# --- paths, for what pod_containers and spec_field do not cover -----------------

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

# spec_path: path segments from the object root to the pod spec.
spec_path := spec_paths[kind]

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

# --- images -------------------------------------------------------------------

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

# image_digest(image): what follows "@" in a reference pinned by digest, "".
image_digest(image) := substring(image, indexof(image, "@") + 1, -1) if {
	image_has_digest(image)
} else := ""

# --- the view, computed in Rego -------------------------------------------------

# computed_view: input.workload as the engine computes it (engine/view.go),
# from input.request alone.
computed_view := {
	"kind": input.request.kind.kind,
	"namespace": object.get(input.request, "namespace", ""),
	"name": object_name,
	"object": object_text,
	"replicas": object.get(object_or_empty, ["spec", "replicas"], 1),
	"longRunning": computed_long_running,
	"podSpec": computed_pod_spec,
	"podSpecField": computed_spec_text(".", ""),
	"podSpecPointer": computed_spec_text("/", "/"),
	"templateMetadata": computed_template_metadata,
	"labels": computed_overlay("labels"),
	"annotations": computed_overlay("annotations"),
	"containers": computed_containers,
}

object_or_empty := input.request.object if is_object(input.request.object)

else := {}

object_name := n if {
	n := object_or_empty.metadata.name
	is_string(n)
	n != ""
} else := concat("", [g, "*"]) if {
	g := object_or_empty.metadata.generateName
	is_string(g)
	g != ""
} else := "<unnamed>"

object_text := sprintf("%s %s/%s", [input.request.kind.kind, input.request.namespace, object_name]) if {
	object.get(input.request, "namespace", "") != ""
} else := sprintf("%s %s", [input.request.kind.kind, object_name])

computed_pod_spec := s if {
	s := object.get(object_or_empty, spec_paths[input.request.kind.kind], null)
	s != null
} else := null

computed_spec_text(separator, lead) := concat("", [lead, concat(separator, spec_paths[input.request.kind.kind])]) if {
	computed_pod_spec != null
} else := ""

computed_template_metadata := m if {
	m := object.get(object_or_empty, template_path, null)
	is_object(m)
} else := {}

template_path := ["metadata"] if input.request.kind.kind == "Pod"

template_path := array.concat(array.slice(path, 0, count(path) - 1), ["metadata"]) if {
	input.request.kind.kind != "Pod"
	path := spec_paths[input.request.kind.kind]
}

computed_overlay(key) := object.union(object_at(object.get(object_or_empty, "metadata", {}), key), object_at(computed_template_metadata, key))

object_at(x, key) := x[key] if {
	is_object(x)
	is_object(x[key])
} else := {}

computed_long_running if input.request.kind.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}

computed_long_running if {
	input.request.kind.kind == "Pod"
	is_object(computed_pod_spec)
	object.get(computed_pod_spec, "restartPolicy", "Always") == "Always"
}

default computed_long_running := false

computed_containers := [object.union(entry, container_extras(c)) |
	is_object(computed_pod_spec)
	some list in ["containers", "initContainers", "ephemeralContainers"]
	is_array(computed_pod_spec[list])
	some i, c in computed_pod_spec[list]
	entry := {
		"list": list, "index": i, "regular": list == "containers",
		"sidecar": sidecar(list, c), "container": c,
		"field": sprintf("%s.%s[%d]", [computed_spec_text(".", ""), list, i]),
		"pointer": sprintf("%s/%s/%d", [computed_spec_text("/", "/"), list, i]),
	}
]

sidecar("initContainers", c) if {
	is_object(c)
	c.restartPolicy == "Always"
} else := false

sidecar(list, _) := false if list != "initContainers"

container_extras(c) := object.union(name_of(c), image_of(c))

name_of(c) := {"name": name} if {
	name := c.name
} else := {}

image_of(c) := {"image": {
	"repository": image_repository(c.image),
	"tag": image_tag(c.image),
	"digest": image_digest(c.image),
}} if {
	is_object(c)
	is_string(c.image)
} else := {}
