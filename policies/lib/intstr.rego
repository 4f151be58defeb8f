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

# Leading zeros are stripped first: Kubernetes accepts "05%", to_number
# does not.
percent(value) := to_number(digits) if {
	is_string(value)
	regex.match(`^[0-9]+%$`, value)
	stripped := trim_left(trim_suffix(value, "%"), "0")
	digits := _zero_if_empty(stripped)
}

_zero_if_empty("") := "0"

_zero_if_empty(s) := s if s != ""

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
