# METADATA
# title: Topology library tests
# description: Label selectors, own-pod terms and topology keys.
package podgate.lib.topology_test

import data.podgate.lib.topology

labels := {"app": "web", "tier": "front"}

selector_table := [
	# [selector, selects]
	[null, false], # a null selector selects nothing
	[{}, true], # an empty one everything
	[{"matchLabels": {"app": "web"}}, true],
	[{"matchLabels": {"app": "db"}}, false],
	[{"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, false],
	[{"matchExpressions": [{"key": "tier", "operator": "In", "values": ["back", "front"]}]}, true],
	[{"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, true],
	[{"matchExpressions": [{"key": "canary", "operator": "Exists"}]}, false],
	[{"matchLabels": null, "matchExpressions": null}, true],
]

test_label_selectors_follow_label_selector_as_selector if {
	every row in selector_table {
		[selector, want] := row
		got := selects(selector)
		got == want
	}
}

selects(selector) if {
	topology.selects(selector, labels)
} else := false

test_own_terms_need_the_selector_and_the_namespace if {
	topology.own_term({"labelSelector": {"matchLabels": {"app": "web"}}}, labels, "shop")
	topology.own_term({"labelSelector": {"matchLabels": {"app": "web"}}, "namespaces": ["shop"]}, labels, "shop")
	not topology.own_term({"labelSelector": {"matchLabels": {"app": "web"}}, "namespaces": ["other"]}, labels, "shop")
	topology.own_term({"labelSelector": {"matchLabels": {"app": "web"}}, "namespaces": ["other"], "namespaceSelector": {}}, labels, "shop")
	not topology.own_term({"labelSelector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {"matchLabels": {"x": "y"}}}, labels, "shop")
	topology.may_be_own_term({"labelSelector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {"matchLabels": {"x": "y"}}}, labels, "shop")
	topology.own_term({"labelSelector": {"matchLabels": {"app": "web"}}, "matchLabelKeys": ["tier"]}, labels, "shop")
	not topology.own_term({"labelSelector": {"matchLabels": {"app": "web"}}, "mismatchLabelKeys": ["tier"]}, labels, "shop")
	topology.own_term({"labelSelector": {"matchLabels": {"app": "web"}}, "mismatchLabelKeys": ["canary"]}, labels, "shop")
}

test_only_do_not_schedule_constraints_need_their_keys_each_once if {
	spec := {"topologySpreadConstraints": [
		{"topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
		{"topologyKey": "rack", "whenUnsatisfiable": "ScheduleAnyway"},
		{"topologyKey": "host", "whenUnsatisfiable": "DoNotSchedule"},
		{"topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
	]}
	topology.hard_keys(spec) == ["zone", "host"]
	topology.missing_keys(spec, {"zone": "", "rack": "r1"}) == ["host"]
	topology.carries_hard_keys(spec, {"zone": "a", "host": "h"})
	topology.hard_keys({"topologySpreadConstraints": null}) == []
}
