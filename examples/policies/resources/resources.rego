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

# Containers of every kind, init containers included: they run on the node too.
containers contains [list, i, c] if {
	some list in ["containers", "initContainers"]
	some i, c in object.get(workload.pod_spec, list, [])
}

violation contains v if {
	some [list, i, c] in containers
	some resource in ["cpu", "memory"]
	not c.resources.requests[resource]
	v := {
		"rule": "requests",
		"msg": sprintf("container %q requests no %s, so the scheduler cannot place it by its needs; set resources.requests.%s", [c.name, resource, resource]),
		"field": workload.field(workload.spec_field_path([list, i, "resources", "requests"])),
	}
}

violation contains v if {
	some [list, i, c] in containers
	not c.resources.limits.memory
	v := {
		"rule": "memory-limit",
		"msg": sprintf("container %q has no memory limit, so a leak can exhaust its node; set resources.limits.memory", [c.name]),
		"field": workload.field(workload.spec_field_path([list, i, "resources", "limits"])),
	}
}
