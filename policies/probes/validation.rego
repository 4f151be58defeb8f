package podgate.policies.probes

# The validating rules of the probes policy (package METADATA in probes.rego).
#
# Decisions where the spec (policies.md) is silent:
#
# - `required` and `slow-start` do not fire for a probe that the mutation
#   injects. Kubernetes runs validating webhooks after mutating ones, so the
#   object validated then already has it; evaluating the unmutated object
#   gives the same answer. (On an UPDATE that does not touch the pod template
#   nothing is injected, and no warning is given for those probes either.)
# - `required` covers workload.long_running objects only (Jobs, CronJobs and
#   Pods with restartPolicy Never/OnFailure finish by themselves).
# - The other rules check the probes of regular containers and of sidecars
#   (restartable init containers), of every kind: a broken probe in a Job is
#   still broken.
# - `http-path`: an absent or empty path is fine (the kubelet requests "/").
# - `exec-command`: a command that is absent, [] or whose first element is
#   blank is empty.
# - `timing`: timeoutSeconds >= periodSeconds, with the Kubernetes defaults
#   1 and 10 for unset fields, on every probe type.
# - `port-number`: every containerPort of every container (regular, init
#   and ephemeral alike, of every kind) is a number. The API server refuses
#   anything else, but `podgate eval` sees manifests before it does, and a
#   quoted number is a common Helm templating slip. A container with such a
#   port gets this one violation, not `required` as well: once the port is
#   a number, the probes are injected on it.
# - `identical`: liveness equals readiness once Kubernetes defaults are filled
#   in. A tcpSocket pair is exempt (an open port does not depend on other
#   services, which is the failure the rule warns about), and so is the pair
#   podgate itself injects from an annotation (a single annotation cannot ask
#   for two handlers; the warning would blame the user for podgate's choice).

import data.podgate.lib.workload

# probes: every probe of a container that may carry probes (a regular
# container or a sidecar): [container, probe field, probe], the container
# as workload.pod_containers has it, with its field path.
probes := [[c, field, probe] |
	some c in workload.pod_containers
	carries_probes(c)
	some field in ["readinessProbe", "livenessProbe", "startupProbe"]
	probe := c.container[field]
	is_object(probe)
]

carries_probes(c) if c.regular

carries_probes(c) if c.sidecar

violation contains v if {
	workload.long_running
	some c in workload.pod_containers
	c.regular
	some t in config.required
	missing_probe(c.container, t)
	not will_inject(c.container, t)
	not quoted_port(c.container)
	field := probe_fields[t]
	v := {
		"rule": "required",
		"msg": sprintf(
			"container %q has no %s and podgate cannot add one: %s; declare a containerPort, annotate the workload with probes.podgate.dev/http: \"<port>:<path>\" (or grpc, tcp, exec, each also as probes.podgate.dev/<mechanism>.%s for this container only), or write the %s",
			[c.name, field, not_injected_reason(c.container, t), c.name, field],
		),
		"field": concat(".", [c.field, field]),
	}
}

violation contains v if {
	some c in workload.pod_containers
	some j, p in object.get(c.container, "ports", [])
	port := p.containerPort
	not is_number(port)
	v := {
		"rule": "port-number",
		"msg": sprintf("containerPort %s of container %q is not a number, so the API server refuses it and podgate cannot probe it; %s", [
			json.marshal(port), c.name, port_number_fix(port),
		]),
		"field": sprintf("%s.ports[%d].containerPort", [c.field, j]),
	}
}

# quoted_port(c): c declares a containerPort that is not a number.
quoted_port(c) if {
	some p in object.get(c, "ports", [])
	port := p.containerPort
	not is_number(port)
}

port_number_fix(port) := sprintf("write it without quotes, containerPort: %s (in a Helm template, drop the quotes or pipe it through int)", [port]) if {
	is_string(port)
	regex.match(`^[0-9]+$`, port)
}

port_number_fix(port) := sprintf("a port's name goes in name and its number in containerPort, e.g. {name: %s, containerPort: 8080}", [port]) if {
	is_string(port)
	not regex.match(`^[0-9]+$`, port)
}

port_number_fix(port) := "set containerPort to the port number the container listens on" if not is_string(port)

not_injected_reason(_, t) := sprintf("config probes.inject.%s is off", [t]) if not config.inject[t] == true

not_injected_reason(c, t) := handler(c).reason if config.inject[t] == true

violation contains v if {
	some [c, field, probe] in probes
	some mech in ["httpGet", "tcpSocket"]
	port := probe[mech].port
	is_string(port)
	not port in port_names(c.container)
	v := {
		"rule": "named-port",
		"msg": sprintf(
			"%s of container %q uses port %q, which the container does not declare; add a containerPort named %q to the container or use a port number",
			[field, c.name, port, port],
		),
		"field": concat(".", [c.field, field, mech, "port"]),
	}
}

violation contains v if {
	some [c, field, probe] in probes
	path := probe.httpGet.path
	path != ""
	not startswith(path, "/")
	v := {
		"rule": "http-path",
		"msg": sprintf("%s of container %q has httpGet path %q, which does not start with \"/\"; write it as %q", [field, c.name, path, concat("", ["/", path])]),
		"field": concat(".", [c.field, field, "httpGet", "path"]),
	}
}

violation contains v if {
	some [c, field, probe] in probes
	timeout := object.get(probe, "timeoutSeconds", 1)
	period := object.get(probe, "periodSeconds", 10)
	timeout >= period
	v := {
		"rule": "timing",
		"msg": sprintf(
			"%s of container %q has timeoutSeconds %d%s, not less than periodSeconds %d%s; set timeoutSeconds below periodSeconds",
			[field, c.name, timeout, defaulted(probe, "timeoutSeconds"), period, defaulted(probe, "periodSeconds")],
		),
		"field": concat(".", [c.field, field]),
	}
}

defaulted(probe, key) := "" if object.get(probe, key, null) != null

defaulted(probe, key) := " (the default)" if object.get(probe, key, null) == null

violation contains v if {
	some [c, field, probe] in probes
	exec := probe.exec
	empty_command(object.get(exec, "command", null))
	v := {
		"rule": "exec-command",
		"msg": sprintf(
			"%s of container %q is an exec probe with an empty command; set exec.command, e.g. [\"cat\", \"/tmp/healthy\"], or use another handler",
			[field, c.name],
		),
		"field": concat(".", [c.field, field, "exec", "command"]),
	}
}

empty_command(null)

empty_command([])

empty_command(command) if trim_space(command[0]) == ""

violation contains v if {
	some c in workload.pod_containers
	carries_probes(c)
	liveness := c.container.livenessProbe
	not liveness.tcpSocket
	normalized(liveness) == normalized(c.container.readinessProbe)
	not podgate_pair(c.container)
	v := {
		"rule": "identical",
		"msg": sprintf(
			"livenessProbe of container %q is identical to its readinessProbe, so a failing dependency restarts the container instead of only taking it out of the Service; point livenessProbe at a check of the process itself, or give it a higher failureThreshold",
			[c.name],
		),
		"field": concat(".", [c.field, "livenessProbe"]),
	}
}

# Kubernetes defaults, so that a probe that spells them out equals one that
# does not.
probe_defaults := {"initialDelaySeconds": 0, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}

normalized(probe) := object.union(probe_defaults, probe) if not probe.httpGet

normalized(probe) := object.union(
	object.union(probe_defaults, probe),
	{"httpGet": object.union({"scheme": "HTTP", "path": "/"}, probe.httpGet)},
) if probe.httpGet

podgate_pair(c) if {
	c.livenessProbe == injected(c, "liveness")
	c.readinessProbe == injected(c, "readiness")
}

violation contains v if {
	some c in workload.pod_containers
	carries_probes(c)
	delay := c.container.livenessProbe.initialDelaySeconds
	delay > 60
	missing_probe(c.container, "startup")
	not startup_injected(c)
	v := {
		"rule": "slow-start",
		"msg": sprintf(
			"livenessProbe of container %q waits initialDelaySeconds %d before its first check and there is no startupProbe, so a container that hangs later is restarted late too; add a startupProbe whose failureThreshold x periodSeconds covers the start time and drop initialDelaySeconds",
			[c.name, delay],
		),
		"field": concat(".", [c.field, "livenessProbe", "initialDelaySeconds"]),
	}
}

startup_injected(c) if {
	c.regular
	will_inject(c.container, "startup")
}
