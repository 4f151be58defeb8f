# METADATA
# title: Testdata cases
# description: |
#   Builds the admission request of an object or a testdata case for the
#   Rego unit tests, as the webhook would send it. A case lives in
#   policies/<policy>/testdata/<case>/data.yaml, which `opa test policies/`
#   loads at data.<policy>.testdata.<case>; `podgate test` judges its
#   expect block.
package podgate.lib.testing

# request(c): input.request for testdata case c.
request(c) := {
	"uid": "test",
	"kind": {"group": group(c.object.apiVersion), "version": version(c.object.apiVersion), "kind": c.object.kind},
	"operation": object.get(c, "operation", "CREATE"),
	"namespace": object.get(c, "namespace", object.get(c.object.metadata, "namespace", "default")),
	"name": object.get(c.object.metadata, "name", ""),
	"object": c.object,
	"oldObject": object.get(c, "oldObject", null),
	"userInfo": {"username": "tester", "groups": ["system:authenticated"]},
}

group(api_version) := "" if not contains(api_version, "/")

group(api_version) := split(api_version, "/")[0] if contains(api_version, "/")

version(api_version) := api_version if not contains(api_version, "/")

version(api_version) := split(api_version, "/")[1] if contains(api_version, "/")

# nodes(c): the case's node inventory (name -> {labels, taints, unschedulable}).
nodes(c) := object.get(c, "nodes", {})

# rules(set): the rule ids in a set of violations.
rules(violations) := {v.rule | some v in violations}
