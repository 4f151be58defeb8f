# METADATA
# title: Resources tests
# description: Every rule, allowed and denied, with inline objects (`podgate test` judges the testdata cases).
package podgate.policies.resources_test

import data.podgate.policies.resources

pod(resources_block) := {"request": {
	"kind": {"kind": "Pod"},
	"namespace": "default",
	"object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27", "resources": resources_block}]}},
}}

test_complete_resources_pass if {
	count(resources.violation) == 0 with input as pod({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}})
}

test_missing_cpu_request_names_cpu if {
	some v in resources.violation with input as pod({"requests": {"memory": "64Mi"}, "limits": {"memory": "128Mi"}})
	v.rule == "requests"
	contains(v.msg, "requests no cpu")
	v.field == "spec.containers[0].resources.requests"
}

test_missing_memory_limit_is_reported if {
	some v in resources.violation with input as pod({"requests": {"cpu": "1", "memory": "64Mi"}})
	v.rule == "memory-limit"
}

test_init_containers_are_checked if {
	pod_input := {"request": {
		"kind": {"kind": "Pod"},
		"object": {"kind": "Pod", "metadata": {"name": "p"}, "spec": {
			"containers": [],
			"initContainers": [{"name": "migrate", "image": "app:1"}],
		}},
	}}
	some v in resources.violation with input as pod_input
	v.field == "spec.initContainers[0].resources.requests"
}
