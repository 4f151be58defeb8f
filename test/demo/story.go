package main

// podgateSays is the start of one violation in podgate's answer:
// "[policy/rule] Kind namespace/name: ".
func podgateSays(policyRule, kind, name string) string {
	return "[" + policyRule + "] " + kind + " default/" + name + ": "
}

// story is the demo, in order: what README.md's "What the demo shows"
// promises, one kubectl run at a time, in the namespace "default".
func story() []step {
	return append(append(nodeSteps(), nginxSteps()...), examplesSteps()...)
}

func nodeSteps() []step {
	return []step{{
		heading: "Four Nodes: a control plane, a plain worker, a GPU worker and a cordoned one (no kubelet runs: their status is Unknown)",
		args:    []string{"get", "nodes"},
		want:    shown,
		says:    []string{"control-plane", "worker-1", "worker-2", "worker-3", "SchedulingDisabled"},
	}, {
		heading: "Their taints and whether they take new pods: what podgate's tolerations policy reads",
		args: []string{"get", "nodes", "-o",
			"custom-columns=NAME:.metadata.name,TAINT:.spec.taints[*].key,VALUE:.spec.taints[*].value,EFFECT:.spec.taints[*].effect,UNSCHEDULABLE:.spec.unschedulable"},
		want: shown,
		says: []string{"node-role.kubernetes.io/control-plane", "dedicated", "gpu", "NoSchedule"},
	}, {
		heading: "The source notes' redis Pod keeps its data in an emptyDir, and has no port to probe: podgate denies it",
		args:    []string{"apply", "-f", "examples/redis-pod.yaml"},
		want:    denied,
		says: []string{podgateSays("stateful-volumes/persistent-storage", "Pod", "redis"), `"redis-storage"`, "emptyDir",
			podgateSays("probes/required", "Pod", "redis")},
	}}
}

func nginxSteps() []step {
	const probes = `{range .spec.template.spec.containers[*]}container {.name}: image {.image}{"\n"}` +
		`  readinessProbe: {.readinessProbe}{"\n"}  livenessProbe:  {.livenessProbe}{"\n"}  startupProbe:   {.startupProbe}{"\n"}{end}`
	return []step{{
		heading: "The source notes' nginx Deployment has no probes: podgate admits it and injects readiness, liveness and startup probes",
		args:    []string{"apply", "-f", "examples/nginx-deployment.yaml"},
		want:    admitted,
		says:    []string{"deployment.apps/nginx-deployment created"},
	}, {
		heading: "The podgate.dev/mutations annotation lists what podgate added, and on which port",
		args:    []string{"get", "deployment", "nginx-deployment", "-o", `jsonpath={.metadata.annotations.podgate\.dev/mutations}{"\n"}`},
		want:    shown,
		says: []string{`added readinessProbe (tcpSocket port 80) to container "nginx"`,
			`added livenessProbe (tcpSocket port 80) to container "nginx"`, `added startupProbe (tcpSocket port 80) to container "nginx"`},
	}, {
		heading: "The stored Deployment's container has the three probes: tcpSocket on port 80, the port it declares",
		args:    []string{"get", "deployment", "nginx-deployment", "-o", "jsonpath=" + probes},
		want:    shown,
		says:    []string{"image nginx:1.14.2", `readinessProbe: {`, `livenessProbe:  {`, `startupProbe:   {`, `"tcpSocket":{"port":80}`},
	}, {
		heading: "Rolling out a new image is an UPDATE: podgate admits it",
		args:    []string{"set", "image", "deployment/nginx-deployment", "nginx=nginx:1.16.1"},
		want:    admitted,
		says:    []string{"deployment.apps/nginx-deployment image updated"},
	}, {
		heading: "The stored Deployment now runs nginx:1.16.1, and keeps its probes",
		args:    []string{"get", "deployment", "nginx-deployment", "-o", "jsonpath=" + probes},
		want:    shown,
		says:    []string{"image nginx:1.16.1", `readinessProbe: {`, `livenessProbe:  {`, `"tcpSocket":{"port":80}`},
	}}
}

func examplesSteps() []step {
	apply := func(file string) []string { return []string{"apply", "-f", "examples/" + file} }
	return []step{{
		heading: "A rolling update that may take 2 of 4 pods down at once keeps less than 75% available: podgate denies it",
		args:    apply("deployment-max-unavailable-50.yaml"),
		want:    denied,
		says:    []string{podgateSays("rollout/min-available", "Deployment", "web")},
	}, {
		heading: "revisionHistoryLimit: 0 leaves nothing to roll back to: podgate denies it",
		args:    apply("deployment-no-history.yaml"),
		want:    denied,
		says:    []string{podgateSays("rollout/revision-history", "Deployment", "api")},
	}, {
		heading: "An application Pod that tolerates the control-plane taint outside kube-system: podgate denies it",
		args:    apply("pod-control-plane-toleration.yaml"),
		want:    denied,
		says:    []string{podgateSays("tolerations/control-plane", "Pod", "sneaky")},
	}, {
		heading: "A Pod that wants the GPU node but does not tolerate its taint fits no node: podgate admits it with a warning",
		args:    apply("pod-no-node-fits.yaml"),
		want:    warned,
		says:    []string{"pod/trainer created", "Warning: " + podgateSays("tolerations/schedulable", "Pod", "trainer") + "0/4 nodes can run this pod"},
	}, {
		heading: "A mysql StatefulSet whose volumeClaimTemplates give each replica its own volume: podgate admits it",
		args:    apply("mysql-statefulset.yaml"),
		want:    admitted,
		says:    []string{"statefulset.apps/mysql created"},
	}, {
		heading: "The same mysql with its data in an emptyDir: podgate denies it",
		args:    apply("mysql-statefulset-no-claims.yaml"),
		want:    denied,
		says:    []string{podgateSays("stateful-volumes/persistent-storage", "StatefulSet", "mysql-ephemeral")},
	}, {
		heading: "A worker with no port leaves podgate no probe to inject: podgate denies it and says how to fix it",
		args:    apply("worker-no-port.yaml"),
		want:    denied,
		says:    []string{podgateSays("probes/required", "Deployment", "worker"), "containerPort", "probes.podgate.dev/"},
	}, {
		heading: "The API server stored what podgate admitted, and nothing it denied",
		args:    []string{"get", "deployments,statefulsets,pods"},
		want:    shown,
		says:    []string{"nginx-deployment", "mysql", "trainer"},
		lacks:   []string{"redis", "web", "api", "sneaky", "mysql-ephemeral", "worker"},
	}}
}
