# METADATA
# title: Int-or-percent library
# description: |
#   Resolves int-or-percent values (maxUnavailable, maxSurge) exactly as
#   Kubernetes does: k8s.io/apimachinery intstr.GetScaledValueFromIntOrPercent
#   and the Deployment controller's ResolveFenceposts.
package podgate.lib.intstr

# scaled(value, total, round_up): an integer stays as it is; "N%" becomes
# N% of total, rounded up or down. Undefined for anything else (the API
# server rejects such values before admission).
scaled(value, _, _) := value if is_number(value)

scaled(value, total, true) := ceil((percent(value) * total) / 100)

scaled(value, total, false) := floor((percent(value) * total) / 100)

percent(value) := to_number(trim_suffix(value, "%")) if {
	is_string(value)
	endswith(value, "%")
	regex.match(`^[0-9]+%$`, value)
}

# fenceposts(max_surge, max_unavailable, desired): the surge and unavailable
# pod counts of a rolling update. maxSurge rounds up, maxUnavailable rounds
# down, and when both come to 0 maxUnavailable becomes 1 so a rollout can
# still make progress.
fenceposts(max_surge, max_unavailable, desired) := {"surge": surge, "unavailable": unavailable} if {
	surge := scaled(max_surge, desired, true)
	raw := scaled(max_unavailable, desired, false)
	unavailable := fix_zero(surge, raw)
}

fix_zero(0, 0) := 1

fix_zero(surge, unavailable) := unavailable if not both_zero(surge, unavailable)

both_zero(0, 0)
