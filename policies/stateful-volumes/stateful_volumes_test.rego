# METADATA
# title: Stateful volumes tests
# description: |
#   Messages of testdata cases (which `podgate test` judges), then an
#   allowed and a denied case for every rule and
#   the edge cases behind the decisions in stateful_volumes.rego.
package podgate.policies.stateful_volumes_test

import data.podgate.lib.testing
import data.podgate.policies.stateful_volumes

cases := data["stateful-volumes"].testdata

# --- helpers ---------------------------------------------------------------

violations(obj) := vs if {
	vs := stateful_volumes.violation with input as {"request": testing.request({"object": obj})}
}

rules(obj) := testing.rules(violations(obj))

fired(rule, obj) if rule in rules(obj)

fires(rule, obj) := rule in rules(obj)

only(rule, obj) if rules(obj) == {rule}

named(rule, obj) := [v | some v in violations(obj); v.rule == rule][0]

workload(kind, replicas, labels, containers, volumes) := {
	"apiVersion": "apps/v1",
	"kind": kind,
	"metadata": {"name": "app", "namespace": "shop", "labels": labels},
	"spec": {
		"replicas": replicas,
		"selector": {"matchLabels": {"app": "app"}},
		"template": {
			"metadata": {"labels": {"app": "app"}},
			"spec": {"containers": containers, "volumes": volumes},
		},
	},
}

deployment(containers, volumes) := workload("Deployment", 1, {}, containers, volumes)

container(image, mounts) := {"name": "main", "image": image, "volumeMounts": [{"name": n, "mountPath": concat("", ["/data/", n])} | some n in mounts]}

empty_dir(name) := {"name": name, "emptyDir": {}}

pvc(name) := {"name": name, "persistentVolumeClaim": {"claimName": concat("", ["app-", name])}}

host_path(name, path) := {"name": name, "hostPath": {"path": path, "type": "Directory"}}

# statefulset(image, templates, policy): a StatefulSet mounting "data".
statefulset(image, templates, policy) := json.patch(workload("StatefulSet", 3, {}, [container(image, ["data"])], []), [
	{"op": "add", "path": "/spec/volumeClaimTemplates", "value": templates},
	{"op": "add", "path": "/spec/podManagementPolicy", "value": policy},
])

claim(spec) := {"metadata": {"name": "data"}, "spec": spec}

good_claim := claim({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}})

in_namespace(obj, ns) := json.patch(obj, [{"op": "replace", "path": "/metadata/namespace", "value": ns}])

# --- messages of testdata cases ----------------------------------------------

test_redis_pod_message_names_the_emptydir if {
	v := named("persistent-storage", cases["redis-pod-with-emptydir-is-denied"].object)
	v.field == "spec.volumes[0]"
	contains(v.msg, `emptyDir volume "redis-storage" at /data/redis is deleted with the pod`)
	not v.enforcement
}

test_statefulset_without_stateful_image_carries_warn if {
	v := named("persistent-storage", cases["statefulset-for-stable-names-warns"].object)
	v.enforcement == "warn"
}

# --- which workloads are stateful ---------------------------------------------

test_stateless_image_with_emptydir_is_allowed if {
	count(violations(deployment([container("nginx:1.27.2", ["cache"])], [empty_dir("cache")]))) == 0
}

test_stateful_image_prefix_matches_behind_registry_and_tag if {
	every image in ["redis", "docker.io/library/redis:7.4", "bitnami/mongodb:7.0", "quay.io/strimzi/kafka:0.43.0-kafka-3.8.0", "mysql@sha256:0123abcd"] {
		only("persistent-storage", deployment([container(image, ["data"])], [empty_dir("data")]))
	}
}

test_stateful_image_in_an_init_container_does_not_count if {
	obj := json.patch(deployment([container("example/api:1.0", ["cache"])], [empty_dir("cache")]), [{
		"op": "add",
		"path": "/spec/template/spec/initContainers",
		"value": [{"name": "wait-for-db", "image": "postgres:16.4", "command": ["sh", "-c", "until pg_isready -h db; do sleep 1; done"]}],
	}])
	count(violations(obj)) == 0
}

test_stateful_images_come_from_config if {
	obj := deployment([container("example/ledger:2.0", ["data"])], [empty_dir("data")])
	not fired("persistent-storage", obj)
	fired("persistent-storage", obj) with data.podgate.config.policies["stateful-volumes"].statefulImages as ["example/ledger", "ledger"]
}

test_opt_out_label_needs_allow_opt_out if {
	obj := workload("Deployment", 1, {"podgate.dev/stateful": "false"}, [container("redis:7.4", ["data"])], [empty_dir("data")])
	fired("persistent-storage", obj)
	not fired("persistent-storage", obj) with data.podgate.config.policies["stateful-volumes"].allowOptOut as true
}

test_opt_out_also_silences_a_statefulset if {
	obj := workload("StatefulSet", 1, {"podgate.dev/stateful": "false"}, [container("nginx:1.27.2", ["data"])], [empty_dir("data")])
	not fired("persistent-storage", obj) with data.podgate.config.policies["stateful-volumes"].allowOptOut as true
}

test_true_label_makes_a_statefulset_deny if {
	obj := workload("StatefulSet", 1, {"podgate.dev/stateful": "true"}, [container("nginx:1.27.2", ["data"])], [empty_dir("data")])
	v := named("persistent-storage", obj)
	not v.enforcement
}

# --- persistent-storage ----------------------------------------------------------

test_persistent_storage_allows_a_claim_volume if {
	count(violations(deployment([container("mongo:7.0", ["data"])], [pvc("data")]))) == 0
}

test_persistent_storage_ignores_configmaps_secrets_and_hostpath if {
	obj := deployment(
		[container("mongo:7.0", ["conf", "keys", "data"])],
		[{"name": "conf", "configMap": {"name": "mongo"}}, {"name": "keys", "secret": {"secretName": "mongo"}}, host_path("data", "/srv/mongo")],
	)
	v := named("persistent-storage", obj)
	v.field == "spec.template.spec.volumes[2]"
	contains(v.msg, `hostPath volume "data" at /data/data stays behind on one node when the pod moves;`)
}

test_persistent_storage_needs_a_regular_container_mount if {
	obj := json.patch(deployment([container("redis:7.4", [])], [pvc("data")]), [{
		"op": "add",
		"path": "/spec/template/spec/initContainers",
		"value": [container("busybox:1.36", ["data"])],
	}])
	fired("persistent-storage", obj)
}

test_persistent_storage_skips_run_to_completion_pods if {
	task := {
		"apiVersion": "v1",
		"kind": "Pod",
		"metadata": {"name": "redis-cli", "namespace": "shop"},
		"spec": {"restartPolicy": "Never", "containers": [{"name": "redis-cli", "image": "redis:7.4", "command": ["redis-cli", "-h", "redis", "ping"]}]},
	}
	count(violations(task)) == 0
}

# --- mount-declared -----------------------------------------------------------

test_mount_declared_allows_a_claim_template_name if {
	not fired("mount-declared", statefulset("mysql:8.0", [good_claim], "OrderedReady"))
}

test_mount_declared_checks_init_containers if {
	obj := json.patch(deployment([container("example/api:1.0", [])], []), [{
		"op": "add",
		"path": "/spec/template/spec/initContainers",
		"value": [container("busybox:1.36", ["seed"])],
	}])
	v := named("mount-declared", obj)
	v.field == "spec.template.spec.initContainers[0].volumeMounts[0].name"
}

test_mount_declared_ignores_claim_templates_outside_statefulsets if {
	obj := json.patch(deployment([container("example/api:1.0", ["data"])], []), [{"op": "add", "path": "/spec/volumeClaimTemplates", "value": [good_claim]}])
	fired("mount-declared", obj)
}

# --- claim-template -------------------------------------------------------------

test_claim_template_allows_modes_and_size if {
	count(violations(statefulset("mysql:8.0", [good_claim], "OrderedReady"))) == 0
}

test_claim_template_denies_missing_access_modes_and_size if {
	v := named("claim-template", statefulset("mysql:8.0", [claim({"accessModes": []})], "OrderedReady"))
	startswith(v.msg, `volumeClaimTemplate "data" has no accessModes and no resources.requests.storage;`)
	v.field == "spec.volumeClaimTemplates[0].spec"
}

# --- host-path ----------------------------------------------------------------

log_reader(path, ns) := in_namespace(deployment([container("fluent/fluent-bit:3.1", ["logs"])], [host_path("logs", path)]), ns)

test_host_path_allows_allowed_namespaces if {
	not fired("host-path", log_reader("/var/log", "kube-system"))
}

test_host_path_denies_other_namespaces if {
	v := named("host-path", log_reader("/var/log", "shop"))
	v.field == "spec.template.spec.volumes[0].hostPath"
}

test_host_path_prefixes_match_whole_segments if {
	every path_allowed in [
		["/var/log", true],
		["/var/log/", true],
		["/var/log/pods/x", true],
		["/var//log/./pods", true],
		["/var/logs", false],
		["/var", false],
		["/var/log/../../etc", false],
		["/etc/kubernetes", false],
	] {
		[path, allowed] := path_allowed
		fires("host-path", log_reader(path, "kube-system")) != allowed with data.podgate.config.policies["stateful-volumes"].hostPathAllowedPrefixes as ["/var/log/", "/run/containerd"]
	}
}

test_host_path_root_prefix_allows_everything if {
	not fired("host-path", log_reader("/etc/../root", "kube-system"))
}

# --- shared-claim ---------------------------------------------------------------

test_shared_claim_allows_one_replica if {
	not fired("shared-claim", workload("Deployment", 1, {}, [container("wordpress:6.6", ["content"])], [pvc("content")]))
}

test_shared_claim_warns_for_replica_sets if {
	v := named("shared-claim", workload("ReplicaSet", 2, {}, [container("wordpress:6.6", ["content"])], [pvc("content")]))
	v.field == "spec.template.spec.volumes[0].persistentVolumeClaim"
}

test_shared_claim_leaves_statefulsets_alone if {
	not fired("shared-claim", workload("StatefulSet", 3, {}, [container("wordpress:6.6", ["content"])], [pvc("content")]))
}

# --- ordered-start ----------------------------------------------------------------

test_ordered_start_allows_ordered_ready if {
	count(violations(statefulset("zookeeper:3.9", [good_claim], "OrderedReady"))) == 0
}

test_ordered_start_warns_for_parallel_stateful_images if {
	only("ordered-start", statefulset("zookeeper:3.9", [good_claim], "Parallel"))
}

test_ordered_start_ignores_statefulsets_of_other_images if {
	count(violations(statefulset("nginx:1.27", [good_claim], "Parallel"))) == 0
}
