# METADATA
# title: Probes
# description: |
#   Every long-running container gets readiness, liveness and startup probes:
#   the mutating webhook injects the missing ones (from probes.podgate.dev
#   annotations, else a tcpSocket check on the first TCP containerPort), and
#   the validating rules deny probes that can never work.
# custom:
#   enforcement: deny
#   mutationKinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet]
#   rules:
#     required:
#       enforcement: deny
#       kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet]
#       summary: every long-running container has the probes in config `required` (default readiness and liveness)
#     named-port:
#       enforcement: deny
#       summary: a probe only names ports that its container declares
#     http-path:
#       enforcement: deny
#       summary: an httpGet probe path starts with "/"
#     timing:
#       enforcement: deny
#       summary: a probe's timeoutSeconds is less than its periodSeconds
#     exec-command:
#       enforcement: deny
#       summary: an exec probe has a command
#     port-number:
#       enforcement: deny
#       summary: every containerPort is a number
#     identical:
#       enforcement: warn
#       summary: liveness is not a copy of readiness
#     slow-start:
#       enforcement: warn
#       summary: a slow-starting container uses a startupProbe, not a long liveness initialDelaySeconds
package podgate.policies.probes

# Decisions where the spec (policies.md) is silent; the validation rules'
# own decisions are in validation.rego:
#
# - Injection targets workload.long_running objects only: Deployments,
#   StatefulSets, DaemonSets, ReplicaSets and Pods with restartPolicy Always.
#   A bare Pod with restartPolicy Never/OnFailure is a task, like a Job, and a
#   liveness probe would only get in its way. Regular containers only.
# - Handler precedence: any per-container annotation
#   (probes.podgate.dev/<mech>.<container>) beats any object-wide one
#   (probes.podgate.dev/<mech>); every mechanism has the per-container form,
#   not only http. Within one level the mechanisms are tried
#   in the order the spec lists them: http, grpc, tcp, exec. The chosen
#   handler is used for every probe type injected into that container.
# - An object-wide annotation whose <port> is a name that this container
#   does not declare, but another container does, is meant for that other
#   container and does not apply here (a sidecar falls back to its own TCP
#   port). If no container declares the name it is a typo and is reported.
# - An annotation that applies but cannot be turned into a valid probe
#   (bad port, path without "/", "<port>:<path>" without ":", empty exec)
#   injects nothing for that container and says why in a note: the user
#   asked for that handler, so silently falling back to tcpSocket would hide
#   the typo. The `required` rule then reports the reason as well.
# - <port>: digits are a port number (1-65535); anything else is a port
#   name, kept as a name in httpGet/tcpSocket (Kubernetes resolves it), but
#   resolved to its containerPort number for grpc, whose port is an integer.
# - exec "<command>": split on whitespace into an argv when it contains no
#   shell metacharacters (works in images without a shell, e.g. distroless
#   "/bin/grpc_health_probe -addr=:9090"); otherwise run as
#   ["sh", "-c", "<command>"] so pipes, quotes and && behave as written.
# - The tcpSocket fallback uses the port number, and the first containerPort
#   whose protocol is TCP (absent means TCP) and whose value is a number. A
#   quoted containerPort ("8080", a common Helm slip, or a name such as
#   "http") is never probed: the API server refuses it, and a probe on it
#   would only be denied again under named-port. The port-number rule says
#   what to fix instead.
# - Timings are copied from config probes.<type>; a key missing there is
#   left out, so Kubernetes applies its own default.

import data.podgate.lib.workload

config := data.podgate.config.policies.probes

probe_types := ["readiness", "liveness", "startup"]

# The field of each probe type in a container.
probe_fields := {"readiness": "readinessProbe", "liveness": "livenessProbe", "startup": "startupProbe"}

# The mechanisms an annotation may name, in precedence order.
mechanisms := ["http", "grpc", "tcp", "exec"]

annotation_prefix := "probes.podgate.dev/"

# Probe fields that config may set on an injected probe.
timing_keys := ["initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold"]

# Characters that make an exec annotation a shell command.
shell_meta := `[|&;<>()$\x60\\"'*?\[\]#~{}!]`

probe_field(t) := probe_fields[t]

missing_probe(c, t) if object.get(c, probe_fields[t], null) == null

# injectable(c, t): container c lacks probe type t and config injects it.
injectable(c, t) if {
	config.inject[t] == true
	missing_probe(c, t)
}

# will_inject(c, t): the mutating webhook adds probe type t to regular
# container c (so the validating rules need not complain that it is missing:
# Kubernetes runs validating webhooks on the mutated object).
will_inject(c, t) if {
	workload.long_running
	injectable(c, t)
	handler(c).ok
}

# injected(c, t): the probe the mutation adds.
injected(c, t) := object.union(handler(c).action, timings[t]) if handler(c).ok

# timings: probe type -> the timing fields config sets on its injected probe.
timings := {t: {k: v | some k in timing_keys; v := config[t][k]} | some t in probe_types}

mutation contains m if {
	workload.long_running
	some c in workload.pod_containers
	c.regular
	some t in probe_types
	injectable(c.container, t)
	h := handler(c.container)
	h.ok
	m := {
		"op": "add",
		"path": concat("/", [c.pointer, probe_fields[t]]),
		"value": object.union(h.action, timings[t]),
		"msg": sprintf("added %s (%s) to container %q%s", [probe_fields[t], h.desc, c.name, h.source]),
	}
}

mutation contains {"op": "note", "msg": msg} if {
	workload.long_running
	some c in workload.pod_containers
	c.regular
	missing := [probe_fields[t] | some t in probe_types; injectable(c.container, t)]
	count(missing) > 0
	h := handler(c.container)
	not h.ok
	msg := sprintf("no %s injected into container %q: %s", [concat(", ", missing), c.name, h.reason])
}

# handler(c): how podgate would probe container c:
# {"ok": true, "action": <probe handler>, "desc": ..., "source": ...} or
# {"ok": false, "reason": ...}.
handler(c) := annotation_handler(c, a) if {
	a := chosen_annotation(c)
} else := {
	"ok": true,
	"action": {"tcpSocket": {"port": port}},
	"desc": sprintf("tcpSocket port %d", [port]),
	"source": "",
} if {
	port := first_tcp_port(c)
} else := {
	"ok": false,
	"reason": sprintf("its containerPort %s is not a number and no probes.podgate.dev annotation applies to it", [json.marshal(quoted_ports(c)[0])]),
} if {
	count(quoted_ports(c)) > 0
} else := {
	"ok": false,
	"reason": "it declares no TCP containerPort and no probes.podgate.dev annotation applies to it",
}

# probe_annotations: the probes.podgate.dev annotations of the workload,
# [mechanism, container] -> {"key", "mech", "value"}, container "" for the
# object-wide form; nearly always none, and then no container looks further.
probe_annotations[[mech, container]] := {"key": key, "mech": mech, "value": value} if {
	some key, value in workload.annotations
	startswith(key, annotation_prefix)
	[mech, container] := annotation_target(substring(key, count(annotation_prefix), -1))
	mech in mechanisms
}

annotation_target(name) := [name, ""] if not contains(name, ".")

annotation_target(name) := [substring(name, 0, i), substring(name, i + 1, -1)] if {
	i := indexof(name, ".")
	i >= 0
}

chosen_annotation(c) := container_annotations(c)[0] if {
	count(probe_annotations) > 0
	count(container_annotations(c)) > 0
} else := wide_annotations(c)[0] if {
	count(probe_annotations) > 0
	count(wide_annotations(c)) > 0
}

container_annotations(c) := [a |
	some mech in mechanisms
	a := probe_annotations[[mech, c.name]]
]

wide_annotations(c) := [a |
	some mech in mechanisms
	a := probe_annotations[[mech, ""]]
	not meant_for_another(c, mech, a.value)
]

# meant_for_another: an object-wide annotation names a port that c does not
# declare but another container does.
meant_for_another(c, mech, value) if {
	name := annotation_port(mech, value)
	not regex.match(`^[0-9]+$`, name)
	not name in port_names(c)
	some other in workload.containers
	name in port_names(other)
}

annotation_port("http", value) := trim_space(substring(value, 0, indexof(value, ":"))) if {
	indexof(value, ":") >= 0
}

annotation_port(mech, value) := trim_space(value) if mech in {"grpc", "tcp"}

# quoted_ports(c): the containerPorts of c that are not numbers, in order.
quoted_ports(c) := [port |
	some p in object.get(c, "ports", [])
	object.get(p, "protocol", "TCP") == "TCP"
	port := p.containerPort
	not is_number(port)
]

port_names(c) := {p.name | some p in object.get(c, "ports", []); p.name}

first_tcp_port(c) := [p.containerPort |
	some p in object.get(c, "ports", [])
	object.get(p, "protocol", "TCP") == "TCP"
	is_number(p.containerPort)
][0]

annotation_handler(c, a) := r if {
	parsed := parse(c, a.mech, a.value)
	parsed.ok
	r := object.union(parsed, {"source": sprintf(", from annotation %s", [a.key])})
}

annotation_handler(c, a) := {"ok": false, "reason": sprintf("annotation %s: %q %s", [a.key, a.value, parsed.reason])} if {
	parsed := parse(c, a.mech, a.value)
	not parsed.ok
}

# parse(c, mech, value): the handler an annotation asks for, as handler(c).
parse(_, "http", value) := {"ok": false, "reason": `is not "<port>:<path>", e.g. "8080:/healthz"`} if {
	not contains(value, ":")
}

parse(c, "http", value) := http_handler(port, path) if {
	port := resolve_port(c, annotation_port("http", value))
	path := trim_space(substring(value, indexof(value, ":") + 1, -1))
}

parse(c, "tcp", value) := port if {
	port := resolve_port(c, annotation_port("tcp", value))
	not port.ok
}

parse(c, "tcp", value) := {"ok": true, "action": {"tcpSocket": {"port": port.port}}, "desc": sprintf("tcpSocket port %v", [port.port])} if {
	port := resolve_port(c, annotation_port("tcp", value))
	port.ok
}

parse(c, "grpc", value) := port if {
	port := resolve_port(c, annotation_port("grpc", value))
	not port.ok
}

parse(c, "grpc", value) := {"ok": true, "action": {"grpc": {"port": number}}, "desc": sprintf("grpc port %d", [number])} if {
	port := resolve_port(c, annotation_port("grpc", value))
	port.ok
	number := port_number(c, port.port)
}

parse(_, "exec", value) := {"ok": false, "reason": "is an empty command"} if trim_space(value) == ""

parse(_, "exec", value) := {"ok": true, "action": {"exec": {"command": command}}, "desc": sprintf("exec %s", [json.marshal(command)])} if {
	trim_space(value) != ""
	command := exec_command(trim_space(value))
}

exec_command(value) := ["sh", "-c", value] if regex.match(shell_meta, value)

exec_command(value) := regex.split(`\s+`, value) if not regex.match(shell_meta, value)

http_handler(port, _) := port if not port.ok

http_handler(port, path) := {"ok": false, "reason": sprintf("has path %q, which does not start with \"/\"", [path])} if {
	port.ok
	not startswith(path, "/")
}

http_handler(port, path) := {
	"ok": true,
	"action": {"httpGet": {"port": port.port, "path": path}},
	"desc": sprintf("httpGet port %v path %s", [port.port, path]),
} if {
	port.ok
	startswith(path, "/")
}

# resolve_port(c, text): {"ok": true, "port": <number or name>} or
# {"ok": false, "reason": ...}.
resolve_port(_, text) := {"ok": true, "port": n} if {
	regex.match(`^[0-9]+$`, text)
	n := to_number(text)
	n >= 1
	n <= 65535
}

resolve_port(_, text) := {"ok": false, "reason": sprintf("has port %s, which is not between 1 and 65535", [text])} if {
	regex.match(`^[0-9]+$`, text)
	not valid_port_number(to_number(text))
}

resolve_port(c, text) := {"ok": true, "port": text} if {
	not regex.match(`^[0-9]+$`, text)
	text in port_names(c)
}

resolve_port(c, text) := {"ok": false, "reason": sprintf("names port %q, which container %q does not declare", [text, c.name])} if {
	not regex.match(`^[0-9]+$`, text)
	not text in port_names(c)
}

valid_port_number(n) if {
	n >= 1
	n <= 65535
}

port_number(_, port) := port if is_number(port)

port_number(c, port) := p.containerPort if {
	is_string(port)
	some p in c.ports
	p.name == port
	is_number(p.containerPort)
}
