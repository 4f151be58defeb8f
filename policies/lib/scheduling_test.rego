# Table tests of the pure matching functions in scheduling.rego:
# Toleration.ToleratesTaint, node affinity expressions and fields, and the
# integer parsing behind Gt and Lt. (The package METADATA is in
# tolerations_test.rego: OPA allows one package annotation per package.)
# METADATA
# title: Scheduling library tests
# description: Table tests of the node matching functions.
package podgate.lib.scheduling_test

import data.podgate.lib.scheduling

# --- toleration matching (core/v1 Toleration.ToleratesTaint) ----------------

taint_gpu := {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}

taint_cp := {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}

matching_table := [
	# [toleration, taint, tolerates]
	[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}, taint_gpu, true],
	[{"key": "dedicated", "operator": "Equal", "value": "cpu", "effect": "NoSchedule"}, taint_gpu, false],
	[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, taint_gpu, true], # no operator means Equal
	[{"key": "dedicated", "effect": "NoSchedule"}, taint_gpu, false], # Equal with empty value
	[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}, taint_gpu, true],
	[{"key": "dedicated", "operator": "Exists"}, {"key": "dedicated", "value": "x", "effect": "NoExecute"}, true], # empty effect: all
	[{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, taint_gpu, false],
	[{"key": "dedicate", "operator": "Exists"}, taint_gpu, false],
	[{"operator": "Exists"}, taint_gpu, true], # empty key + Exists: every taint
	[{"operator": "Exists"}, taint_cp, true],
	[{"operator": "Exists", "effect": "NoExecute"}, taint_cp, false],
	[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}, taint_cp, true], # "" == ""
	[{"key": "node-role.kubernetes.io/control-plane", "value": "true", "effect": "NoSchedule"}, taint_cp, false],
	[{"key": "dedicated", "operator": "Gt", "value": "gpu"}, taint_gpu, false], # Gt without the feature gate
	[{"key": "dedicated", "operator": "Sometimes"}, taint_gpu, false], # unknown operator
	[{"key": "dedicated", "operator": "Exists", "effect": "PreferNoSchedule"}, {"key": "dedicated", "effect": "PreferNoSchedule"}, true],
]

test_toleration_matching_follows_tolerates_taint if {
	every row in matching_table {
		[toleration, taint, want] := row
		got := tolerates(toleration, taint)
		print_if_different(toleration, taint, got, want)
	}
}

tolerates(toleration, taint) if {
	scheduling.tolerates(toleration, taint)
} else := false

expression_matches(expression, node_labels) if {
	scheduling.expression_matches(expression, node_labels)
} else := false

print_if_different(_, _, got, got)

print_if_different(toleration, taint, got, want) if {
	got != want
	print("tolerates", toleration, taint, "=", got, "want", want)
	false
}

# --- Gt and Lt (core/v1 compareNumericValues, KEP-5471) ---------------------

taint_cores(value) := {"key": "cores", "value": value, "effect": "NoSchedule"}

comparison_table := [
	# [toleration, taint, tolerates] with comparisonOperators on
	[{"key": "cores", "operator": "Gt", "value": "4"}, taint_cores("8"), true],
	[{"key": "cores", "operator": "Gt", "value": "8"}, taint_cores("8"), false],
	[{"key": "cores", "operator": "Lt", "value": "9"}, taint_cores("8"), true],
	[{"key": "cores", "operator": "Lt", "value": "8"}, taint_cores("8"), false],
	[{"key": "cores", "operator": "Lt", "value": "10"}, taint_cores("9"), true], # numbers, not strings
	[{"key": "cores", "operator": "Gt", "value": "-5"}, taint_cores("-1"), true],
	[{"key": "cores", "operator": "Gt", "value": "4"}, taint_cores("08"), false], # a leading zero is no decimal integer
	[{"key": "cores", "operator": "Gt", "value": "+4"}, taint_cores("8"), false], # nor is a plus
	[{"key": "cores", "operator": "Gt", "value": "4"}, taint_cores("-0"), false],
	[{"key": "cores", "operator": "Gt", "value": "4"}, taint_cores("9223372036854775808"), false], # beyond int64
	[{"key": "cores", "operator": "Lt", "value": "9223372036854775807"}, taint_cores("9223372036854775806"), true],
	[{"key": "cores", "operator": "Gt", "value": "4"}, taint_cores(""), false],
	[{"key": "cores", "operator": "Gt", "value": "4"}, taint_cores("eight"), false],
	[{"key": "cores", "operator": "Gt", "value": "4", "effect": "NoExecute"}, taint_cores("8"), false], # effect still matters
	[{"key": "other", "operator": "Gt", "value": "4"}, taint_cores("8"), false], # key still matters
	[{"key": "cores", "operator": "Gt", "value": 4}, taint_cores("8"), false], # not a string
]

test_gt_and_lt_compare_decimal_integers_when_the_gate_is_on if {
	every row in comparison_table {
		[toleration, taint, want] := row
		got := tolerates(toleration, taint) with data.podgate.config.policies.tolerations.comparisonOperators as true
		print_if_different(toleration, taint, got, want)
	}
}

test_gt_and_lt_match_nothing_when_the_gate_is_off if {
	every row in comparison_table {
		[toleration, taint, _] := row
		not scheduling.tolerates(toleration, taint)
	}
}

test_decimal_integers_are_what_the_scheduler_parses if {
	scheduling.decimal_integer("0") == 0
	scheduling.decimal_integer("-12") == -12
	scheduling.decimal_integer("9223372036854775807") == 9223372036854775807
	scheduling.decimal_integer("-9223372036854775808") == -9223372036854775808
	every s in ["007", "+5", "-0", "", "1.5", "1e3", " 1", "9223372036854775808", "-9223372036854775809"] {
		not scheduling.decimal_integer(s)
	}
}

# --- node affinity (component-helpers nodeaffinity) ---------------------------

labels := {"zone": "a", "cpus": "16", "gen": "007"}

expression_table := [
	# [expression, matches]
	[{"key": "zone", "operator": "In", "values": ["a", "b"]}, true],
	[{"key": "zone", "operator": "In", "values": ["b"]}, false],
	[{"key": "missing", "operator": "In", "values": ["a"]}, false],
	[{"key": "zone", "operator": "NotIn", "values": ["b"]}, true],
	[{"key": "zone", "operator": "NotIn", "values": ["a"]}, false],
	[{"key": "missing", "operator": "NotIn", "values": ["a"]}, true], # an absent label is not in any set
	[{"key": "zone", "operator": "Exists"}, true],
	[{"key": "missing", "operator": "Exists"}, false],
	[{"key": "missing", "operator": "DoesNotExist"}, true],
	[{"key": "zone", "operator": "DoesNotExist"}, false],
	[{"key": "cpus", "operator": "Gt", "values": ["8"]}, true],
	[{"key": "cpus", "operator": "Gt", "values": ["16"]}, false],
	[{"key": "cpus", "operator": "Lt", "values": ["32"]}, true],
	[{"key": "cpus", "operator": "Lt", "values": ["9"]}, false], # integers, not strings ("16" < "9")
	[{"key": "gen", "operator": "Gt", "values": ["+6"]}, true], # ParseInt accepts "007" and "+6"
	[{"key": "zone", "operator": "Gt", "values": ["1"]}, false], # label not an integer
	[{"key": "missing", "operator": "Lt", "values": ["1"]}, false],
	[{"key": "cpus", "operator": "Gt", "values": ["1", "2"]}, false],
]

test_match_expressions_follow_label_requirements if {
	every row in expression_table {
		[expression, want] := row
		got := expression_matches(expression, labels)
		print_if_different(expression, labels, got, want)
	}
}

test_integer_parsing if {
	scheduling.integer("007") == 7
	scheduling.integer("+5") == 5
	scheduling.integer("-12") == -12
	scheduling.integer("0") == 0
	not scheduling.integer("1.5")
	not scheduling.integer("1e3")
	not scheduling.integer("")
}

affinity_spec(terms) := {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}

test_terms_are_ored_and_expressions_anded if {
	zone_a := {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}, {"key": "cpus", "operator": "Exists"}]}
	zone_b := {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}
	scheduling.affinity_matches(affinity_spec([zone_b, zone_a]), "n1", labels)
	not scheduling.affinity_matches(affinity_spec([zone_b]), "n1", labels)
	both := {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}, {"key": "missing", "operator": "Exists"}]}
	not scheduling.affinity_matches(affinity_spec([both]), "n1", labels)
}

test_an_empty_term_matches_no_node if {
	not scheduling.affinity_matches(affinity_spec([{}]), "n1", labels)
	not scheduling.affinity_matches(affinity_spec([{"matchExpressions": []}]), "n1", labels)
}

test_match_fields_match_the_node_name if {
	in_n1 := {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
	not_n1 := {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}
	other_field := {"matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["n1"]}]}
	scheduling.affinity_matches(affinity_spec([in_n1]), "n1", labels)
	not scheduling.affinity_matches(affinity_spec([in_n1]), "n2", labels)
	scheduling.affinity_matches(affinity_spec([not_n1]), "n2", labels)
	not scheduling.affinity_matches(affinity_spec([not_n1]), "n1", labels)
	not scheduling.affinity_matches(affinity_spec([other_field]), "n1", labels)
}

test_match_fields_and_expressions_are_anded if {
	term := {
		"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}],
		"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}],
	}
	scheduling.affinity_matches(affinity_spec([term]), "n1", labels)
	not scheduling.affinity_matches(affinity_spec([term]), "n2", labels)
}

test_null_lists_and_selectors_are_empty if {
	scheduling.spec_tolerations({"tolerations": null}) == []
	scheduling.selector_matches(null, {})
	scheduling.affinity_matches(affinity_spec([{"matchExpressions": null, "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]), "n1", {})
}
