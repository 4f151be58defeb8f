package podgate.policies.probes_test

# Unit tests of the validating rules: an allowed and a denied case each, and
# the edge cases behind the decisions written down in validation.rego.

good_http := {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5, "timeoutSeconds": 2}

# api(probes): a container with a named port and the given probes.
api(probes) := object.union({"name": "api", "image": "example/api:1.0", "ports": [{"name": "http", "containerPort": 8080}]}, probes)

fired(rule, obj) if rule in rules(obj)

only(rule, obj) if rules(obj) == {rule}

# --- required ----------------------------------------------------------------

test_required_allows_written_probes if {
	not fired("required", deployment([api({"readinessProbe": good_http, "livenessProbe": {"tcpSocket": {"port": "http"}}})]))
}

test_required_allows_probes_podgate_will_inject if {
	not fired("required", deployment([web([{"containerPort": 80}])]))
}

test_required_denies_a_container_without_port_or_annotation if {
	vs := violations(deployment([{"name": "worker", "image": "example/worker:1.0"}]))
	{v.field | some v in vs; v.rule == "required"} == {
		"spec.template.spec.containers[0].readinessProbe",
		"spec.template.spec.containers[0].livenessProbe",
	}
	every v in vs {
		contains(v.msg, "declare a containerPort, annotate the workload with probes.podgate.dev/http")
		contains(v.msg, "probes.podgate.dev/<mechanism>.worker")
	}
}

test_required_denies_when_injection_is_off_in_config if {
	vs := violations(deployment([web([{"containerPort": 80}])])) with data.podgate.config.policies.probes.inject.readiness as false
	some v in vs
	v.rule == "required"
	contains(v.msg, "container \"web\" has no readinessProbe and podgate cannot add one: config probes.inject.readiness is off;")
}

test_required_follows_the_config_list if {
	obj := deployment([api({"readinessProbe": good_http, "livenessProbe": {"tcpSocket": {"port": "http"}}})])
	fired("required", obj) with data.podgate.config.policies.probes.inject.startup as false
		with data.podgate.config.policies.probes.required as ["readiness", "liveness", "startup"]
	not fired("required", obj) with data.podgate.config.policies.probes.inject.startup as false
}

test_required_ignores_jobs_and_run_to_completion_pods if {
	job := {
		"apiVersion": "batch/v1",
		"kind": "Job",
		"metadata": {"name": "once", "namespace": "default"},
		"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "once", "image": "example/once:1.0"}]}}},
	}
	not fired("required", job)
	not fired("required", pod([{"name": "once", "image": "example/once:1.0"}], "Never"))
	fired("required", pod([{"name": "daemon", "image": "example/daemon:1.0"}], "Always"))
}

# --- named-port ---------------------------------------------------------------

test_named_port_allows_declared_names_and_numbers if {
	not fired("named-port", deployment([api({"readinessProbe": good_http, "livenessProbe": {"tcpSocket": {"port": 8080}}})]))
}

test_named_port_denies_an_undeclared_tcp_port_name if {
	vs := violations(deployment([api({"readinessProbe": good_http, "livenessProbe": {"tcpSocket": {"port": "admin"}}})]))
	{[v.rule, v.field] | some v in vs} == {["named-port", "spec.template.spec.containers[0].livenessProbe.tcpSocket.port"]}
}

test_named_port_checks_sidecar_init_containers if {
	sidecar := {
		"name": "proxy",
		"image": "envoyproxy/envoy:v1.31.2",
		"restartPolicy": "Always",
		"readinessProbe": {"httpGet": {"path": "/ready", "port": "admin"}},
	}
	obj := json.patch(deployment([api({"readinessProbe": good_http, "livenessProbe": {"tcpSocket": {"port": 8080}}})]), [{"op": "add", "path": "/spec/template/spec/initContainers", "value": [sidecar]}])
	some v in violations(obj)
	v.rule == "named-port"
	v.field == "spec.template.spec.initContainers[0].readinessProbe.httpGet.port"
}

# --- port-number --------------------------------------------------------------

test_port_number_allows_numbers if {
	not fired("port-number", deployment([web([{"containerPort": 80}])]))
}

test_port_number_denies_a_quoted_number_alone_and_injects_nothing_on_it if {
	obj := deployment([web([{"containerPort": "8080"}])])
	vs := violations(obj)
	{[v.rule, v.field] | some v in vs} == {["port-number", "spec.template.spec.containers[0].ports[0].containerPort"]}
	some v in vs
	contains(v.msg, `containerPort "8080" of container "web" is not a number`)
	contains(v.msg, "containerPort: 8080")
	adds(obj) == {}
}

test_port_number_denies_a_port_name_in_containerport if {
	obj := deployment([web([{"containerPort": "http"}])])
	only("port-number", obj)
	some v in violations(obj)
	contains(v.msg, "{name: http, containerPort: 8080}")
	adds(obj) == {}
}

test_port_number_does_not_hide_a_numeric_port_after_it if {
	obj := deployment([web([{"containerPort": "http"}, {"containerPort": 8080}])])
	adds(obj)[path("readiness")] == {"tcpSocket": {"port": 8080}, "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}
	only("port-number", obj)
}

test_port_number_checks_init_containers_of_any_kind if {
	job := {
		"apiVersion": "batch/v1",
		"kind": "Job",
		"metadata": {"name": "once", "namespace": "default"},
		"spec": {"template": {"spec": {
			"restartPolicy": "Never",
			"containers": [{"name": "once", "image": "example/once:1.0"}],
			"initContainers": [{"name": "setup", "image": "example/setup:1.0", "ports": [{"containerPort": "9000"}]}],
		}}},
	}
	some v in violations(job)
	v.rule == "port-number"
	v.field == "spec.template.spec.initContainers[0].ports[0].containerPort"
}

test_grpc_annotation_does_not_resolve_a_name_to_a_quoted_port if {
	obj := with_template_annotations([web([{"name": "grpc", "containerPort": "9090"}])], {"probes.podgate.dev/grpc": "grpc"})
	adds(obj) == {}
	only("port-number", obj)
}

# --- http-path ----------------------------------------------------------------

test_http_path_allows_absolute_empty_and_absent_paths if {
	every probe in [good_http, {"httpGet": {"path": "", "port": 8080}}, {"httpGet": {"port": 8080}}] {
		not fired("http-path", deployment([api({"readinessProbe": probe})]))
	}
}

test_http_path_denies_a_relative_path if {
	obj := deployment([api({"startupProbe": {"httpGet": {"path": "ready?full=1", "port": 8080}}})])
	some v in violations(obj)
	v.rule == "http-path"
	v.field == "spec.template.spec.containers[0].startupProbe.httpGet.path"
	endswith(v.msg, `write it as "/ready?full=1"`)
}

# --- timing -------------------------------------------------------------------

test_timing_allows_the_kubernetes_defaults if {
	not fired("timing", deployment([api({"readinessProbe": {"tcpSocket": {"port": 8080}}})]))
}

test_timing_denies_timeout_equal_to_period if {
	only("timing", deployment([api({"readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5, "timeoutSeconds": 5}, "livenessProbe": {"tcpSocket": {"port": 8080}}})]))
}

test_timing_denies_timeout_above_the_default_period if {
	some v in violations(deployment([api({"startupProbe": {"tcpSocket": {"port": 8080}, "timeoutSeconds": 11}})]))
	v.rule == "timing"
	v.msg == `startupProbe of container "api" has timeoutSeconds 11, not less than periodSeconds 10 (the default); set timeoutSeconds below periodSeconds`
}

# --- exec-command ---------------------------------------------------------------

test_exec_command_allows_a_command if {
	not fired("exec-command", deployment([api({"livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}}})]))
}

test_exec_command_denies_missing_and_blank_commands if {
	every exec in [{}, {"command": []}, {"command": [""]}, {"command": ["  ", "x"]}] {
		fired("exec-command", deployment([api({"livenessProbe": {"exec": exec}})]))
	}
}

# --- identical ------------------------------------------------------------------

test_identical_allows_different_probes if {
	not fired("identical", deployment([api({"readinessProbe": good_http, "livenessProbe": object.union(good_http, {"failureThreshold": 6})})]))
}

test_identical_warns_when_only_defaults_differ_in_spelling if {
	live := {"httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"}, "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3, "successThreshold": 1}
	only("identical", deployment([api({"readinessProbe": good_http, "livenessProbe": live})]))
}

test_identical_exempts_tcp_socket_pairs if {
	tcp := {"tcpSocket": {"port": 8080}}
	not fired("identical", deployment([api({"readinessProbe": tcp, "livenessProbe": tcp})]))
}

test_identical_exempts_the_pair_podgate_injects_from_an_annotation if {
	mutated := apply(with_template_annotations([api({})], {"probes.podgate.dev/http": "http:/healthz"}))
	not fired("identical", mutated)

	# The same probes written by hand, with no annotation asking for them, warn.
	fired("identical", json.patch(mutated, [{"op": "remove", "path": "/spec/template/metadata/annotations"}]))
}

# --- slow-start -----------------------------------------------------------------

slow_worker(delay) := {
	"name": "worker",
	"image": "example/worker:1.0",
	"readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}},
	"livenessProbe": {"exec": {"command": ["test", "-f", "/tmp/alive"]}, "initialDelaySeconds": delay},
}

test_slow_start_allows_a_minute_of_initial_delay if {
	not fired("slow-start", deployment([slow_worker(60)]))
}

test_slow_start_allows_a_written_startup_probe if {
	c := object.union(slow_worker(120), {"startupProbe": {"exec": {"command": ["test", "-f", "/tmp/alive"]}, "failureThreshold": 30}})
	not fired("slow-start", deployment([c]))
}

test_slow_start_warns_when_no_startup_probe_can_be_injected if {
	some v in violations(deployment([slow_worker(61)]))
	v.rule == "slow-start"
	v.field == "spec.template.spec.containers[0].livenessProbe.initialDelaySeconds"
}

test_slow_start_warns_when_startup_injection_is_off if {
	obj := deployment([object.union(slow_worker(120), {"ports": [{"containerPort": 8080}]})])
	not fired("slow-start", obj)
	fired("slow-start", obj) with data.podgate.config.policies.probes.inject.startup as false
}
