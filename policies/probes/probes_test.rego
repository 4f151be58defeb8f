# METADATA
# title: Probes tests
# description: |
#   Focused tests of probe injection (`podgate test` judges the testdata
#   cases, their mutations and that a mutated object is settled). The validating
#   rules' unit tests are in validation_test.rego.
package podgate.policies.probes_test

import data.podgate.lib.testing
import data.podgate.policies.probes

cases := data.probes.testdata

# --- helpers ---------------------------------------------------------------

req(obj) := {"request": testing.request({"object": obj})}

violations(obj) := vs if {
	vs := probes.violation with input as req(obj)
}

mutations(obj) := ms if {
	ms := probes.mutation with input as req(obj)
}

rules(obj) := testing.rules(violations(obj))

# adds(obj): path -> value of the add mutations.
adds(obj) := {m.path: m.value | some m in mutations(obj); m.op == "add"}

notes(obj) := {m.msg | some m in mutations(obj); m.op == "note"}

# apply(obj): the object after the webhook applied the add mutations.
apply(obj) := json.patch(obj, [{"op": "add", "path": m.path, "value": m.value} | some m in mutations(obj); m.op == "add"])

deployment(containers) := with_template_annotations(containers, {})

with_template_annotations(containers, annotations) := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "web", "namespace": "default"},
	"spec": {
		"replicas": 2,
		"selector": {"matchLabels": {"app": "web"}},
		"template": {
			"metadata": {"labels": {"app": "web"}, "annotations": annotations},
			"spec": {"containers": containers},
		},
	},
}

pod(containers, restart_policy) := {
	"apiVersion": "v1",
	"kind": "Pod",
	"metadata": {"name": "web", "namespace": "default"},
	"spec": {"restartPolicy": restart_policy, "containers": containers},
}

web(ports) := {"name": "web", "image": "example/web:1.0", "ports": ports}

path(t) := sprintf("/spec/template/spec/containers/0/%sProbe", [t])

# --- injection ------------------------------------------------------------

test_nginx_gets_tcp_probes_with_config_timings if {
	obj := cases["nginx-deployment-gets-tcp-probes"].object
	adds(obj) == {
		path("readiness"): {"tcpSocket": {"port": 80}, "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3},
		path("liveness"): {"tcpSocket": {"port": 80}, "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3},
		path("startup"): {"tcpSocket": {"port": 80}, "periodSeconds": 5, "timeoutSeconds": 1, "failureThreshold": 60},
	}
	`added readinessProbe (tcpSocket port 80) to container "nginx"` in {m.msg | some m in mutations(obj)}
}

test_timings_come_from_config if {
	got := adds(deployment([web([{"containerPort": 80}])])) with data.podgate.config.policies.probes.readiness as {"periodSeconds": 20, "timeoutSeconds": 3}
	got[path("readiness")] == {"tcpSocket": {"port": 80}, "periodSeconds": 20, "timeoutSeconds": 3, "failureThreshold": 3}
}

test_disabled_probe_type_is_not_injected if {
	got := adds(deployment([web([{"containerPort": 80}])])) with data.podgate.config.policies.probes.inject as {"readiness": true, "liveness": true, "startup": false}
	object.keys(got) == {path("readiness"), path("liveness")}
}

test_existing_probe_is_kept if {
	c := object.union(web([{"containerPort": 80}]), {"readinessProbe": {"httpGet": {"path": "/ready", "port": 80}}})
	object.keys(adds(deployment([c]))) == {path("liveness"), path("startup")}
}

test_first_tcp_port_skips_udp_ports if {
	got := adds(deployment([web([{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 8053, "protocol": "TCP"}])]))
	got[path("liveness")].tcpSocket == {"port": 8053}
}

test_udp_only_container_gets_a_note_not_a_probe if {
	obj := deployment([web([{"containerPort": 53, "protocol": "UDP"}])])
	count(adds(obj)) == 0
	notes(obj) == {`no readinessProbe, livenessProbe, startupProbe injected into container "web": it declares no TCP containerPort and no probes.podgate.dev annotation applies to it`}
}

test_owner_less_pod_is_mutated_at_its_own_spec if {
	object.keys(adds(pod([web([{"containerPort": 80}])], "Always"))) == {
		"/spec/containers/0/readinessProbe",
		"/spec/containers/0/livenessProbe",
		"/spec/containers/0/startupProbe",
	}
}

test_run_to_completion_pod_is_not_mutated if {
	count(mutations(pod([web([{"containerPort": 80}])], "Never"))) == 0
	count(mutations(pod([web([{"containerPort": 80}])], "OnFailure"))) == 0
}

test_cronjob_is_not_mutated if {
	obj := {
		"apiVersion": "batch/v1",
		"kind": "CronJob",
		"metadata": {"name": "nightly", "namespace": "default"},
		"spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [web([{"containerPort": 80}])]}}}}},
	}
	count(mutations(obj)) == 0
	count(violations(obj)) == 0
}

test_init_containers_get_no_probes if {
	obj := json.patch(deployment([web([{"containerPort": 80}])]), [{
		"op": "add",
		"path": "/spec/template/spec/initContainers",
		"value": [{"name": "migrate", "image": "example/migrate:1.0", "ports": [{"containerPort": 9000}]}],
	}])
	every p in object.keys(adds(obj)) {
		startswith(p, "/spec/template/spec/containers/0/")
	}
}

test_statefulset_and_replicaset_are_mutated if {
	every kind in ["StatefulSet", "ReplicaSet", "DaemonSet"] {
		obj := json.patch(deployment([web([{"containerPort": 80}])]), [{"op": "replace", "path": "/kind", "value": kind}])
		count(adds(obj)) == 3
	}
}

# --- annotations ------------------------------------------------------------

test_http_annotation_with_named_port_keeps_the_name if {
	obj := with_template_annotations([web([{"name": "http", "containerPort": 8080}])], {"probes.podgate.dev/http": "http:/healthz"})
	adds(obj)[path("readiness")].httpGet == {"port": "http", "path": "/healthz"}
	`added readinessProbe (httpGet port http path /healthz) to container "web", from annotation probes.podgate.dev/http` in {m.msg | some m in mutations(obj)}
}

test_grpc_annotation_resolves_a_port_name_to_its_number if {
	obj := with_template_annotations([web([{"name": "grpc", "containerPort": 50051}])], {"probes.podgate.dev/grpc": "grpc"})
	adds(obj)[path("liveness")].grpc == {"port": 50051}
}

test_grpc_annotation_with_a_number if {
	obj := with_template_annotations([web([{"containerPort": 9090}])], {"probes.podgate.dev/grpc.web": "9090"})
	adds(obj)[path("startup")] == {"grpc": {"port": 9090}, "periodSeconds": 5, "timeoutSeconds": 1, "failureThreshold": 60}
}

test_exec_annotation_without_shell_syntax_is_split_on_whitespace if {
	obj := with_template_annotations([web([])], {"probes.podgate.dev/exec": "  /bin/grpc_health_probe   -addr=:9090 "})
	adds(obj)[path("readiness")].exec.command == ["/bin/grpc_health_probe", "-addr=:9090"]
}

test_exec_annotation_with_shell_syntax_runs_in_sh if {
	obj := with_template_annotations([web([])], {"probes.podgate.dev/exec": "pg_isready -U postgres && test -f /tmp/ready"})
	adds(obj)[path("readiness")].exec.command == ["sh", "-c", "pg_isready -U postgres && test -f /tmp/ready"]
}

test_annotation_on_the_object_metadata_applies if {
	obj := json.patch(deployment([web([{"containerPort": 80}])]), [{
		"op": "add",
		"path": "/metadata/annotations",
		"value": {"probes.podgate.dev/tcp": "8081"},
	}])
	adds(obj)[path("readiness")].tcpSocket == {"port": 8081}
}

test_per_container_annotation_beats_object_wide_of_an_earlier_mechanism if {
	obj := with_template_annotations([web([{"containerPort": 80}])], {
		"probes.podgate.dev/http": "80:/healthz",
		"probes.podgate.dev/exec.web": "cat /tmp/healthy",
	})
	adds(obj)[path("readiness")].exec.command == ["cat", "/tmp/healthy"]
}

test_http_comes_before_tcp_at_the_same_level if {
	obj := with_template_annotations([web([{"containerPort": 80}])], {
		"probes.podgate.dev/tcp": "80",
		"probes.podgate.dev/http": "80:/healthz",
	})
	adds(obj)[path("readiness")].httpGet == {"port": 80, "path": "/healthz"}
}

test_per_container_annotation_for_another_container_does_not_apply if {
	obj := with_template_annotations([web([{"containerPort": 80}])], {"probes.podgate.dev/http.api": "80:/healthz"})
	adds(obj)[path("readiness")] == {"tcpSocket": {"port": 80}, "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}
}

test_object_wide_named_port_of_another_container_leaves_the_sidecar_its_own_port if {
	sidecar := {"name": "proxy", "image": "envoyproxy/envoy:v1.31.2", "ports": [{"containerPort": 15001}]}
	obj := with_template_annotations([web([{"name": "http", "containerPort": 8080}]), sidecar], {"probes.podgate.dev/http": "http:/healthz"})
	got := adds(obj)
	got[path("readiness")].httpGet == {"port": "http", "path": "/healthz"}
	got["/spec/template/spec/containers/1/readinessProbe"].tcpSocket == {"port": 15001}
}

test_invalid_annotations_inject_nothing_and_say_why if {
	every value_reason in [
		["probes.podgate.dev/http", "8080/healthz", `"8080/healthz" is not "<port>:<path>"`],
		["probes.podgate.dev/http", "8080:healthz", `has path "healthz", which does not start with "/"`],
		["probes.podgate.dev/http", "htpp:/healthz", `names port "htpp", which container "web" does not declare`],
		["probes.podgate.dev/tcp", "70000", "has port 70000, which is not between 1 and 65535"],
		["probes.podgate.dev/grpc", "0", "has port 0, which is not between 1 and 65535"],
		["probes.podgate.dev/exec", "  ", "is an empty command"],
	] {
		[key, value, reason] := value_reason
		obj := with_template_annotations([web([{"name": "http", "containerPort": 8080}])], {key: value})
		count(adds(obj)) == 0
		some note in notes(obj)
		contains(note, concat("", ["annotation ", key, ": "]))
		contains(note, reason)
	}
}
