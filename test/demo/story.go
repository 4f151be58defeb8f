package main

// podgateSays is the start of one violation in podgate's answer:
// "[policy/rule] Kind namespace/name: ".
func podgateSays(policyRule, kind, name string) string {
	return "[" + policyRule + "] " + kind + " default/" + name + ": "
}

// beforePodgate is what the cluster runs before podgate is installed: last
// year's redis, in the namespace "legacy".
func beforePodgate() []step {
	return []step{{
		heading: "Before podgate: a namespace of last year's workloads",
		args:    []string{"create", "namespace", "legacy"},
		want:    admitted,
		says:    []string{"namespace/legacy created"},
	}, {
		heading: "Before podgate: the source notes' redis Pod, its data in an emptyDir, goes in unchecked",
		args:    []string{"apply", "-n", "legacy", "-f", "examples/redis-pod.yaml"},
		want:    admitted,
		says:    []string{"pod/redis created"},
	}}
}

// story is the demo once podgate is installed, in order: what README.md's
// "What the demo shows" promises, one kubectl run at a time, in the
// namespace "default".
func story() []step {
	return append(append(append(nodeSteps(), nginxSteps()...), examplesSteps()...), auditSteps()...)
}

// auditSteps show what the audit found in what ran before podgate.
func auditSteps() []step {
	return []step{{
		heading: "podgate's audit judged what ran before it: a Report for last year's redis, in its namespace",
		args:    []string{"get", "reports", "-n", "legacy"},
		want:    shown,
		says:    []string{"pod-redis", "NAME", "FAIL"},
	}, {
		heading: "The Report's results: what admission would deny today, and the probes podgate could not inject",
		args: []string{"get", "report", "pod-redis", "-n", "legacy", "-o",
			`jsonpath={range .results[*]}{.result}{"\t"}{.policy}/{.rule}{"\t"}{.message}{"\n"}{end}`},
		want: shown,
		says: []string{"fail\tstateful-volumes/persistent-storage\t[stateful-volumes/persistent-storage] Pod legacy/redis: ", "fail\tprobes/required"},
	}}
}

func nodeSteps() []step {
	return []step{{
		heading: "Four Nodes, run by kwok and kept Ready: a control plane, a plain worker, a GPU worker and a cordoned one",
		args:    []string{"get", "nodes"},
		want:    shown,
		says:    []string{"control-plane", "worker-1", "worker-2", "worker-3", "Ready,SchedulingDisabled"},
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

// probesPath prints each container's image and probes.
const probesPath = `{range .spec.template.spec.containers[*]}container {.name}: image {.image}{"\n"}` +
	`  readinessProbe: {.readinessProbe}{"\n"}  livenessProbe:  {.livenessProbe}{"\n"}  startupProbe:   {.startupProbe}{"\n"}{end}`

func nginxSteps() []step {
	const probes = probesPath
	return append([]step{{
		heading: "The source notes' nginx Deployment has no probes and fits only worker-1: podgate admits it, injects readiness, liveness and startup probes, and warns that one node failure takes all 3 replicas down",
		args:    []string{"apply", "-f", "examples/nginx-deployment.yaml"},
		want:    warned,
		says: []string{"deployment.apps/nginx-deployment created",
			"Warning: " + podgateSays("placement/single-node", "Deployment", "nginx-deployment") + "all 3 replicas fit only node worker-1"},
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
	}}, rolloutSteps()...)
}

// rolloutSteps are the source notes' rolling update and rollback, run for
// real by the controller-manager, the scheduler and kwok.
func rolloutSteps() []step {
	status := step{
		heading: "The Deployment controller rolls it out: kubectl rollout status waits until every replica is updated and available",
		args:    []string{"rollout", "status", "deployment/nginx-deployment", "--timeout=50s"},
		want:    shown,
		says:    []string{`deployment "nginx-deployment" successfully rolled out`},
	}
	return []step{status, {
		heading: "The scheduler put its Pods on worker-1, the one worker that is neither tainted nor cordoned; kwok runs them",
		args:    []string{"get", "pods", "-l", "app=nginx", "-o", "wide"},
		want:    shown,
		says:    []string{"Running", "worker-1"},
		lacks:   []string{"worker-2", "worker-3", "control-plane"},
	}, {
		heading: "Rolling out a new image is an UPDATE: podgate admits it",
		args:    []string{"set", "image", "deployment/nginx-deployment", "nginx=nginx:1.16.1"},
		want:    admitted,
		says:    []string{"deployment.apps/nginx-deployment image updated"},
	}, status, {
		heading: "The stored Deployment now runs nginx:1.16.1, and keeps its probes",
		args:    []string{"get", "deployment", "nginx-deployment", "-o", "jsonpath=" + probesPath},
		want:    shown,
		says:    []string{"image nginx:1.16.1", `readinessProbe: {`, `livenessProbe:  {`, `"tcpSocket":{"port":80}`},
	}, {
		heading: "podgate's revision-history rule kept the history: there is a revision to roll back to",
		args:    []string{"rollout", "history", "deployment/nginx-deployment"},
		want:    shown,
		says:    []string{"REVISION", "1 ", "2 "},
	}, {
		heading: "Roll back to the previous revision",
		args:    []string{"rollout", "undo", "deployment/nginx-deployment"},
		want:    admitted,
		says:    []string{"deployment.apps/nginx-deployment rolled back"},
	}, status, {
		heading: "Back on nginx:1.14.2, every replica Running on worker-1",
		args:    []string{"get", "pods", "-l", "app=nginx", "-o", "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image,STATUS:.status.phase,NODE:.spec.nodeName"},
		want:    shown,
		says:    []string{"nginx:1.14.2", "Running", "worker-1"},
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
		heading: "podgate explain says why no node takes the trainer: every node with the scheduler's reason, and the two nodes one change away",
		program: podgate,
		args:    []string{"explain", "-f", "examples/pod-no-node-fits.yaml"},
		want:    shown,
		says: []string{"No node can run this pod, so it stays Pending (kube-scheduler: 0/4 nodes are available",
			"one change would let it onto worker-1 (NodeAffinity: nodeSelector gpu=true does not match: the node has no label gpu) or worker-2 (TaintToleration: untolerated taint dedicated=gpu:NoSchedule)",
			"NodeUnschedulable: the node is cordoned"},
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
