# METADATA
# title: Rollout policy tests
# description: |
#   Pins down the messages of testdata cases (which `podgate test` judges),
#   then how
#   maxUnavailable and maxSurge resolve per kind (rounding, both-zero
#   fenceposts, DaemonSet percentages of the nodes it runs on).
package podgate.policies.rollout_test

import data.podgate.lib.testing
import data.podgate.policies.rollout

# --- messages of testdata cases ----------------------------------------------

cases := data.rollout.testdata

case_violations(c) := vs if {
	vs := rollout.violation with input as {"request": testing.request(c)}
		with data.podgate.inventory.nodes as testing.nodes(c)
}

only(c) := v if {
	[v] := [v | some v in case_violations(cases[c])]
}

test_half_of_four_replicas_message if {
	v := only("max-unavailable-half-of-four-replicas")
	v.msg == concat("", [
		"maxUnavailable 50% of 4 replicas lets 2 pods go down during a rollout, leaving 2 of 4 available, ",
		"fewer than the 75% minimum (3); lower maxUnavailable to 1 or less (raise maxSurge to roll faster)",
	])
	v.field == "spec.strategy.rollingUpdate.maxUnavailable"
}

test_both_zero_message_explains_the_fencepost if {
	v := only("surge-and-unavailable-both-zero")
	v.msg == concat("", [
		"maxSurge 0 and maxUnavailable 0 both come to 0 for 3 replicas, so Kubernetes uses maxUnavailable 1, ",
		"which lets 1 pod go down during a rollout, leaving 2 of 3 available, fewer than the 75% minimum (3); ",
		"set maxUnavailable to 0 and maxSurge to at least 1, so new pods are ready before old ones stop",
	])
}

test_daemonset_counts_the_nodes_it_runs_on if {
	v := only("daemonset-max-unavailable-half-of-nodes")
	startswith(v.msg, "maxUnavailable 50% of the 4 nodes it runs on lets 2 pods go down during a rollout")
	v.field == "spec.updateStrategy.rollingUpdate.maxUnavailable"
}

test_nginx_latest_message if {
	v := only("nginx-latest")
	v.msg == concat("", [
		"container nginx uses image \"nginx:latest\": the tag latest moves with every push, so a rollback cannot ",
		"return to the same code; pin a version tag (nginx:<version>) or a digest (nginx@sha256:<digest>)",
	])
	v.field == "spec.template.spec.containers[0].image"
}

test_init_container_field if {
	v := only("init-container-without-tag")
	v.field == "spec.template.spec.initContainers[0].image"
	startswith(v.msg, "init container sysctl uses image \"busybox\": with no tag it means latest, which moves with every push")
}

# --- helpers ----------------------------------------------------------------

deployment(replicas, strategy) := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "d", "namespace": "default"},
	"spec": {"replicas": replicas, "strategy": strategy, "template": template},
}

rolling_update(surge, unavailable) := {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}

template := {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "app", "image": "app:1.0.0"}]}}

workload_of(kind, spec) := {
	"apiVersion": "apps/v1",
	"kind": kind,
	"metadata": {"name": "w", "namespace": "default"},
	"spec": object.union({"template": template}, spec),
}

violations(obj, nodes) := vs if {
	vs := rollout.violation with input as {"request": testing.request({"object": obj})}
		with data.podgate.inventory.nodes as nodes
}

rules(obj) := testing.rules(violations(obj, {}))

rules_on(obj, nodes) := testing.rules(violations(obj, nodes))

# --- Deployment: int-or-percent rounding and fenceposts -----------------------

deployment_table := [
	# [replicas, maxSurge, maxUnavailable, rules]
	[10, "25%", "30%", {"min-available"}], # 30% of 10 rounds down to 3: 7 < 8
	[10, "25%", "25%", set()], # 2.5 rounds down to 2: 8 >= 8
	[3, "25%", "25%", set()], # unavailable 0, surge 1
	[1, "25%", "25%", set()],
	[5, 0, "10%", set()], # both 0 -> unavailable 1: 4 >= 4
	[3, 0, "10%", {"min-available"}], # both 0 -> unavailable 1: 2 < 3
	[4, 0, 0, set()], # both 0 -> 1: 3 >= 3
	[3, 1, 1, {"min-available"}],
	[1, 0, 1, {"min-available"}],
	[1, 1, 0, set()],
	[1, 2, 0, {"max-surge"}], # 2 > ceil(1 * 100%)
	[2, "150%", 0, {"max-surge"}], # 150% of 2 rounds up to 3
	[7, "101%", 0, {"max-surge"}], # 7.07 rounds up to 8
	[3, "34%", 0, set()], # 1.02 rounds up to 2
	[4, "100%", "100%", {"min-available"}],
	[0, "300%", "100%", set()], # scaled to zero: nothing to roll
]

test_deployment_fenceposts if {
	every row in deployment_table {
		[replicas, surge, unavailable, want] := row
		got := rules(deployment(replicas, rolling_update(surge, unavailable)))
		print_if_different(row, got, want)
	}
}

print_if_different(_, got, got)

print_if_different(row, got, want) if {
	got != want
	print(row, "fired", got, "want", want)
	false
}

test_deployment_defaults_to_25_percent if {
	obj := {
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": {"name": "d", "namespace": "default"},
		"spec": {"template": template},
	}
	rules(obj) == set()
}

test_thresholds_come_from_config if {
	obj := deployment(4, rolling_update(3, "50%"))
	rules(obj) == {"min-available"}
	rules(obj) == set() with data.podgate.config.policies.rollout.minAvailablePercent as 50
	rules(obj) == {"min-available", "max-surge"} with data.podgate.config.policies.rollout.maxSurgePercent as 50
}

test_recreate_deployments_skip_rolling_checks if {
	rules(deployment(1, {"type": "Recreate"})) == set()
	rules(deployment(2, {"type": "Recreate"})) == {"recreate"}
	[v] := [v | some v in violations(deployment(2, {"type": "Recreate"}), {})]
	v.field == "spec.strategy.type"
}

# --- StatefulSet --------------------------------------------------------------

statefulset(replicas, strategy) := workload_of("StatefulSet", {"replicas": replicas, "updateStrategy": strategy})

sts_rolling(unavailable) := {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": unavailable}}

test_statefulset_max_unavailable if {
	rules(statefulset(4, {"type": "RollingUpdate"})) == set() # absent: one at a time
	rules(statefulset(4, sts_rolling("50%"))) == {"min-available"}
	rules(statefulset(4, sts_rolling(2))) == {"min-available"}
	rules(statefulset(4, sts_rolling("10%"))) == set() # rounds down to 0, raised to 1
	rules(statefulset(2, sts_rolling(1))) == set() # one at a time always passes
	rules(statefulset(10, sts_rolling("20%"))) == set() # 2: 8 >= 8
	rules(statefulset(10, sts_rolling("30%"))) == {"min-available"} # 3: 7 < 8
	rules(statefulset(0, sts_rolling("100%"))) == set()
}

test_statefulset_fix_suggests_one_at_a_time if {
	[v] := [v | some v in violations(statefulset(3, sts_rolling(2)), {})]
	endswith(v.msg, "; set maxUnavailable to 1 (or remove it) to replace one pod at a time")
}

test_statefulset_on_delete_and_partition if {
	rules(statefulset(3, {"type": "OnDelete", "rollingUpdate": {"maxUnavailable": 3}})) == {"on-delete"}
	rules(statefulset(3, {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})) == set()
	rules(statefulset(3, {"type": "RollingUpdate", "rollingUpdate": {"partition": 5}})) == {"on-delete"}
	rules(statefulset(0, {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})) == set()
}

# --- DaemonSet: percentages of the nodes it runs on -------------------------

daemonset(spec, strategy) := {
	"apiVersion": "apps/v1",
	"kind": "DaemonSet",
	"metadata": {"name": "ds", "namespace": "default"},
	"spec": {"updateStrategy": strategy, "template": {"metadata": {}, "spec": object.union({"containers": [{"name": "agent", "image": "agent:2.1.0"}]}, spec)}},
}

ds_rolling(surge, unavailable) := {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}

# eight nodes: four edge nodes, four tainted gpu nodes
nodes := {name: node |
	some i in numbers.range(1, 8)
	name := sprintf("node-%d", [i])
	node := node_of(i)
}

node_of(i) := {"labels": {"role": "edge"}, "taints": []} if i <= 4

node_of(i) := {"labels": {"role": "gpu"}, "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]} if i > 4

tolerate_gpu := {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}

test_daemonset_percentages_count_only_nodes_it_runs_on if {
	# maxUnavailable 2 of 4 runnable nodes: 2 < 3
	rules_on(daemonset({}, ds_rolling(0, 2)), nodes) == {"min-available"}

	# tolerating the gpu taint it runs on all 8: 6 >= 6
	rules_on(daemonset(tolerate_gpu, ds_rolling(0, 2)), nodes) == set()

	# a nodeSelector narrows it again
	rules_on(daemonset(object.union(tolerate_gpu, {"nodeSelector": {"role": "gpu"}}), ds_rolling(0, 2)), nodes) == {"min-available"}
}

test_daemonset_percentages_round_up if {
	rules_on(daemonset({}, ds_rolling(0, "30%")), nodes) == {"min-available"} # 1.2 of 4 rounds up to 2
	rules_on(daemonset({}, ds_rolling(0, "25%")), nodes) == set() # 1
	rules_on(daemonset(tolerate_gpu, ds_rolling(0, "25%")), nodes) == set() # 2 of 8: 6 >= 6
	rules_on(daemonset(tolerate_gpu, ds_rolling(0, "26%")), nodes) == {"min-available"} # 2.08 rounds up to 3
}

test_daemonset_defaults_and_both_zero if {
	rules_on(daemonset({}, {"type": "RollingUpdate"}), nodes) == set() # maxUnavailable 1, maxSurge 0
	rules_on(daemonset({}, ds_rolling(0, 0)), nodes) == set() # both 0: one node at a time
	rules_on(daemonset({}, ds_rolling(0, "10%")), nodes) == set() # 0.4 rounds up to 1
}

test_daemonset_max_surge if {
	rules_on(daemonset({}, ds_rolling("50%", 0)), nodes) == set()
	rules_on(daemonset({}, ds_rolling("50%", 0)), nodes) == {"max-surge"} with data.podgate.config.policies.rollout.maxSurgePercent as 25
}

test_daemonset_without_inventory_or_nodes_is_skipped if {
	rules_on(daemonset({}, ds_rolling(0, "100%")), {}) == set()
	rules(daemonset({}, ds_rolling(0, "100%"))) == set()
	no_inventory := rollout.violation with input as {"request": testing.request({"object": daemonset({}, ds_rolling(0, "100%"))})}
	no_inventory == set()
	rules_on(daemonset({"nodeSelector": {"role": "none"}}, ds_rolling(0, "100%")), nodes) == set()
}

test_daemonset_on_delete if {
	[v] := [v | some v in violations(daemonset({}, {"type": "OnDelete"}), nodes)]
	v.rule == "on-delete"
	v.field == "spec.updateStrategy.type"
}

# --- revision-history, progress-deadline ------------------------------------

test_revision_history if {
	rules(workload_of("Deployment", {})) == set() # unset: the API server keeps 10
	rules(workload_of("Deployment", {"revisionHistoryLimit": 2})) == set()
	rules(workload_of("Deployment", {"revisionHistoryLimit": 1})) == {"revision-history"}
	rules(workload_of("DaemonSet", {"revisionHistoryLimit": 0})) == {"revision-history"}
	rules(workload_of("StatefulSet", {"revisionHistoryLimit": 0})) == {"revision-history"}
	rules(workload_of("ReplicaSet", {"revisionHistoryLimit": 0})) == set()
	rules(workload_of("Deployment", {"revisionHistoryLimit": 3})) == {"revision-history"} with data.podgate.config.policies.rollout.minRevisionHistory as 5
}

test_revision_history_message if {
	[v] := [v | some v in violations(workload_of("Deployment", {"revisionHistoryLimit": 0}), {})]
	v.msg == "revisionHistoryLimit 0 keeps no old revision to go back to for `kubectl rollout undo`, fewer than 2; raise it to at least 2 (unset, Kubernetes keeps 10)"
	v.field == "spec.revisionHistoryLimit"
}

test_progress_deadline if {
	rules(workload_of("Deployment", {"progressDeadlineSeconds": 600})) == set()
	rules(workload_of("Deployment", {"progressDeadlineSeconds": 601})) == {"progress-deadline"}
	rules(workload_of("StatefulSet", {"progressDeadlineSeconds": 6000})) == set()
}

# --- pinned-image -----------------------------------------------------------

image_table := [
	# [image, pinned]
	["nginx", false],
	["nginx:latest", false],
	["docker.io/library/nginx:latest", false],
	["localhost:5000/team/app", false],
	["nginx:1.27.2", true],
	["localhost:5000/team/app:2.0", true],
	["nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31", true],
	["ghcr.io/org/app:latest@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31", true],
]

pod_with_image(image) := {
	"apiVersion": "v1", "kind": "Pod",
	"metadata": {"name": "p", "namespace": "default"},
	"spec": {"containers": [{"name": "app", "image": image}]},
}

test_pinned_image if {
	every row in image_table {
		[image, pinned] := row
		got := rules(pod_with_image(image))
		want := {r | some r in {"pinned-image"}; not pinned}
		print_if_different(row, got, want)
	}
}

test_pinned_image_covers_jobs_and_every_container if {
	job := {
		"apiVersion": "batch/v1", "kind": "Job",
		"metadata": {"name": "j", "namespace": "default"},
		"spec": {"template": {"spec": {
			"initContainers": [{"name": "migrate", "image": "app:1.0"}],
			"containers": [{"name": "a", "image": "app:1.0"}, {"name": "b", "image": "sidecar:latest"}],
		}}},
	}
	fields := {v.field | some v in violations(job, {})}
	fields == {"spec.template.spec.containers[1].image"}
}

test_objects_without_a_pod_spec_are_ignored if {
	svc := {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"}, "spec": {"revisionHistoryLimit": 0}}
	rules(svc) == set()
}
