# METADATA
# title: Resources
# description: |
#   Every container says how much CPU and memory it needs (requests, which
#   the scheduler packs nodes by) and how much it may use (a memory limit,
#   without which one leaking pod can take its node down). An example of a
#   custom policy: one file, its test, no change to podgate.
# custom:
#   enforcement: deny
#   rules:
#     requests:
#       enforcement: deny
#       summary: every container requests cpu and memory
#     memory-limit:
#       enforcement: deny
#       summary: every container has a memory limit
package podgate.policies.resources

import data.podgate.lib.workload

# The containers that run on the node, init containers included, each with
# where it is (workload.pod_containers): ephemeral containers reserve nothing.
containers contains c if {
	some c in workload.pod_containers
	c.list != "ephemeralContainers"
}

violation contains v if {
	some c in containers
	some resource in ["cpu", "memory"]
	not c.container.resources.requests[resource]
	v := {
		"rule": "requests",
		"msg": sprintf("container %q requests no %s, so the scheduler cannot place it by its needs; set resources.requests.%s", [c.container.name, resource, resource]),
		"field": sprintf("%s.resources.requests", [c.field]),
	}
}

violation contains v if {
	some c in containers
	not c.container.resources.limits.memory
	v := {
		"rule": "memory-limit",
		"msg": sprintf("container %q has no memory limit, so a leak can exhaust its node; set resources.limits.memory", [c.container.name]),
		"field": sprintf("%s.resources.limits", [c.field]),
	}
}
