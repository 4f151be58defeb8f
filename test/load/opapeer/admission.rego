# Not a podgate policy: podgate's validating handler (validate.Handler and
# engine.Validate) re-implemented in Rego, so that `opa run --server` can
# serve podgate's policies in the load test's comparison with OPA
# (make loadtest, docs/performance.md). When the handler changes,
# TestOPAPeerDecidesAsPodgate (decisions_test.go) says what to follow here.
# METADATA
# title: podgate's validating webhook, served by opa run --server
# description: |
#   The load test's peer: podgate's built-in policies (policies/, unchanged)
#   behind OPA's own HTTP server, the classic kube-mgmt way. The API server
#   POSTs an AdmissionReview to / and OPA answers with data.system.main, an
#   AdmissionReview whose response podgate's validate.Handler would give:
#   the same scope checks, enforcement resolution, UPDATE downgrade and
#   messages, written in Rego instead of Go. Rule and policy enforcement
#   levels come from each policy's METADATA, which Rego cannot read across
#   packages: the load test writes them as data.podgate.loadtest.metadata,
#   read from the same METADATA by podgate's engine (engine.Policies).
package system

review := input.request

config := data.podgate.config

metadata := data.podgate.loadtest.metadata

main := {
	"apiVersion": "admission.k8s.io/v1",
	"kind": "AdmissionReview",
	"response": object.union({"uid": review.uid}, response),
}

# --- scope: engine.Skip ---------------------------------------------------------

skip_reason := sprintf("operation %s is not checked", [review.operation]) if {
	not review.operation in {"CREATE", "UPDATE"}
} else := sprintf("namespace %s is excluded", [review.namespace]) if {
	review.namespace in config.excludedNamespaces
} else := sprintf("written by controller %s for its owner %s/%s, whose pod template was checked", [review.userInfo.username, owner.kind, owner.name]) if {
	review.userInfo.username in config.controllerUsers
	owner := controller_owner
}

# controller_owner: the controller in the object's ownerReferences, else
# (a controller releasing what it owned) in the old object's.
controller_owner := owners(review.object)[0] if {
	count(owners(review.object)) > 0
} else := owners(review.oldObject)[0] if {
	review.operation == "UPDATE"
	count(owners(review.oldObject)) > 0
}

owners(obj) := [o | some o in object.get(obj, ["metadata", "ownerReferences"], []); o.controller == true]

response := allowed(skip_reason) if skip_reason

response := decision if not skip_reason

# allowed(message) is admission.Allowed(message) after Complete.
allowed(message) := {"allowed": true, "status": {"code": 200, "message": message}} if message != ""

allowed("") := {"allowed": true, "status": {"code": 200}}

# --- violations: engine.Violations and validate.Violations --------------------

# policy_name: a package name as podgate names the policy (_ written as -).
policy_name(pkg) := replace(pkg, "_", "-")

violations contains v if {
	some v in evaluated(review.object)
	not downgraded(v)
}

violations contains object.union(v, {"enforcement": "warn", "msg": concat("", [v.msg, " (already so before this update, so it is allowed for now)"])}) if {
	some v in evaluated(review.object)
	downgraded(v)
}

# On UPDATE, a deny the old object already broke in the same field becomes
# a warning (evaluated only when there is a deny, as podgate does).
downgraded(v) if {
	review.operation == "UPDATE"
	v.enforcement == "deny"
	some old in evaluated_old
	[old.policy, old.rule, old.field] == [v.policy, v.rule, v.field]
}

evaluated_old := vs if {
	vs := evaluated(review.oldObject) with input.request.oldObject as null
}

# evaluated(obj): every policy's violations of obj with their resolved
# enforcement, leaving out policies that exclude the namespace and rules
# that are off.
evaluated(obj) := {v |
	items := data.podgate.policies[pkg].violation with input.request.object as obj
	name := policy_name(pkg)
	not review.namespace in object.get(config.policies, [name, "excludedNamespaces"], [])
	some item in items
	enforcement := resolve(name, item)
	enforcement != "off"
	v := {
		"policy": name, "rule": item.rule, "msg": item.msg,
		"field": object.get(item, "field", ""), "enforcement": enforcement,
	}
}

# resolve: Policy.enforcement. A config override of the rule wins; else the
# weaker of the policy's level (config, else METADATA) and the rule's own
# default (the violation's, else METADATA's, else the policy's).
resolve(name, item) := config.policies[name].rules[item.rule]

resolve(name, item) := weaker(policy_level, rule_default) if {
	not config.policies[name].rules[item.rule]
	policy_level := object.get(config.policies, [name, "enforcement"], metadata[name].enforcement)
	rule_default := object.get(item, "enforcement", object.get(metadata[name].rules, item.rule, policy_level))
}

rank := {"off": 0, "dryrun": 1, "warn": 2, "deny": 3}

weaker(a, b) := a if rank[a] < rank[b]

weaker(a, b) := b if rank[a] >= rank[b]

# --- the answer: validate.Handler.respond --------------------------------------

# object_name: validate.Describe's name, the request's, else the object's,
# else its generateName with a star.
object_name := n if {
	n := object.get(review, "name", "")
	n != ""
} else := n if {
	n := object.get(review.object, ["metadata", "name"], "")
	n != ""
} else := concat("", [g, "*"]) if {
	g := object.get(review.object, ["metadata", "generateName"], "")
	g != ""
} else := ""

described := sprintf("%s %s", [review.kind.kind, object_name]) if object.get(review, "namespace", "") == ""

described := sprintf("%s %s/%s", [review.kind.kind, review.namespace, object_name]) if object.get(review, "namespace", "") != ""

# lines(level): the violations of that level in podgate's order (policy,
# rule, field, message), as "[policy/rule] Kind namespace/name: message".
lines(level) := [sprintf("[%s/%s] %s: %s", [t[0], t[1], described, t[3]]) |
	some t in sort([[v.policy, v.rule, v.field, v.msg] | some v in violations; v.enforcement == level])
]

audit := {key: concat("\n", [sprintf("[%s/%s] %s: %s", [t[0], t[1], described, t[3]]) |
	some t in sort([[v.policy, v.rule, v.field, v.msg] |
		some v in violations
		v.enforcement == "dryrun"
		concat(".", [v.policy, v.rule]) == key
	])
]) |
	some v in violations
	v.enforcement == "dryrun"
	key := concat(".", [v.policy, v.rule])
}

decision := object.union(base, extras) if {
	count(lines("deny")) > 0
	base := {"allowed": false, "status": {"code": 403, "reason": "Forbidden", "message": concat("\n", lines("deny"))}}
} else := object.union(allowed(""), extras)

extras := object.union(warnings, audit_annotations)

warnings := {"warnings": lines("warn")} if count(lines("warn")) > 0

warnings := {} if count(lines("warn")) == 0

audit_annotations := {"auditAnnotations": audit} if count(audit) > 0

audit_annotations := {} if count(audit) == 0
