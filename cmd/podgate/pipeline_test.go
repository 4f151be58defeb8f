package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// helmTemplate is what `helm template` prints for a chart with a
// ServiceAccount, a Service, a custom resource and a Deployment.
const helmTemplate = `---
# Source: app/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
---
# Source: app/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: app
spec:
  ports: [{port: 80}]
---
# Source: app/templates/certificate.yaml
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: app
spec:
  secretName: app-tls
---
# Source: app/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 2
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: app, image: "app:1.0", ports: [{containerPort: 8080}]}]
`

func TestEvalReportsKindsItDoesNotCheckAndJudgesTheRest(t *testing.T) {
	code, out, errOut := podgate(t, helmTemplate, "eval", "-f", "-")
	if code != exitOK {
		t.Fatalf("exit %d, want 0: the Deployment is admitted and the rest is not podgate's business\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"ServiceAccount app: not checked (-#1)\n  not checked: podgate checks no v1 ServiceAccount: the webhooks are not called for it",
		"Service app: not checked (-#2)",
		"Certificate app: not checked (-#3)\n  not checked: podgate checks no cert-manager.io/v1 Certificate",
		"Deployment default/app: admitted (-#4)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestEvalCountsObjectsAsAReaderDoesListItemsEachEmptyDocumentsNot(t *testing.T) {
	file := write(t, t.TempDir(), "pods.yaml", `---
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: first}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: second}}
---
---
apiVersion: v1
kind: Pod
metadata: {name: third}
spec: {containers: [{name: c, image: "c:1.0"}]}
`)
	_, out, _ := podgate(t, "", "eval", "-f", file)
	for _, want := range []string{"ConfigMap first: not checked (" + file + "#1)", "ConfigMap second: not checked (" + file + "#2)", "Pod default/third: denied (" + file + "#3)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestEvalRecursiveSkipsTheTestdataOfPolicyFolders(t *testing.T) {
	code, out, errOut := podgate(t, "", "eval", "-R", "-f", repo("examples"))
	if code != exitFailed || !strings.Contains(out, "Deployment default/nginx-deployment: admitted") {
		t.Fatalf("exit %d, want 1 (the examples' denials)\n%s%s", code, out, errOut)
	}
	if want := "skipping " + repo("examples", "policies", "resources", "testdata"); !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
	if strings.Contains(out, "testdata") {
		t.Errorf("a testdata case was evaluated:\n%s", out)
	}
}

// conflicting reports an evaluation error (a complete rule with two
// values) for a Pod labelled boom, and a warning for every other Pod.
const conflicting = `# METADATA
# title: Conflicting
# description: Fails to evaluate on Pods labelled boom.
# custom:
#   enforcement: warn
#   rules:
#     name: {enforcement: warn, summary: names the pod}
package podgate.policies.conflicting

label := "one" if input.request.object.metadata.labels.boom

label := "two" if input.request.object.metadata.labels.boom

violation contains {"rule": "name", "msg": concat(" ", ["seen", label])} if input.request.kind.kind == "Pod"
`

const twoPods = `apiVersion: v1
kind: Pod
metadata: {name: boom, labels: {boom: "yes"}}
spec: {containers: [{name: c, image: "c:1.0", ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: redis}
spec:
  containers: [{name: redis, image: "redis:7.2", ports: [{containerPort: 6379}], volumeMounts: [{name: data, mountPath: /data}]}]
  volumes: [{name: data, emptyDir: {}}]
`

func TestAnEvaluationErrorIsReportedForItsObjectAloneAndExits3(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "conflicting.rego", conflicting)
	code, out, errOut := podgate(t, twoPods, "eval", "-f", "-", "--policy-dir", dir)
	if code != exitEvalError {
		t.Fatalf("exit %d, want 3\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"Pod default/boom: not evaluated (-#1)\n  error: evaluate policies: ", "conflict", "Pod default/redis: denied (-#2)", "[stateful-volumes/persistent-storage]"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = podgate(t, twoPods, "eval", "-f", "-", "--policy-dir", dir, "-o", "json")
	var decisions []decision
	if err := json.Unmarshal([]byte(out), &decisions); err != nil || code != exitEvalError || len(decisions) != 2 {
		t.Fatalf("exit %d, %d decisions (%v):\n%s", code, len(decisions), err, out)
	}
	if d := decisions[0]; d.Allowed || !strings.Contains(d.Error, "conflict") {
		t.Errorf("the first object: allowed %v, error %q; want not allowed with the error", d.Allowed, d.Error)
	}
	if d := decisions[1]; d.Allowed || d.Error != "" || len(d.Denials) == 0 {
		t.Errorf("the second object: %+v; want its denial", d)
	}
}

func TestEvalJSONKeepsAngleBracketsAsTheyAre(t *testing.T) {
	_, out, _ := podgate(t, "", "eval", "-o", "json", "-f", repo("examples", "worker-no-port.yaml"))
	if !strings.Contains(out, `probes.podgate.dev/http: \"<port>:<path>\"`) || strings.Contains(out, `\u003c`) {
		t.Fatalf("want <port>:<path> as it is, not \\u003c:\n%s", out)
	}
}

// fourNodes is what a cluster of four Nodes looks like written one
// document per Node.
const fourNodes = `apiVersion: v1
kind: Node
metadata: {name: control-plane}
spec: {taints: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]}
---
apiVersion: v1
kind: Node
metadata: {name: gpu-1, labels: {gpu: "true"}}
spec: {taints: [{key: dedicated, value: gpu, effect: NoSchedule}]}
---
apiVersion: v1
kind: Node
metadata: {name: gpu-2, labels: {gpu: "true"}}
spec: {taints: [{key: dedicated, value: gpu, effect: NoSchedule}]}
---
apiVersion: v1
kind: Node
metadata: {name: worker-1}
`

const gpuPod = `apiVersion: v1
kind: Pod
metadata: {name: trainer}
spec:
  nodeSelector: {gpu: "true"}
  containers: [{name: t, image: "trainer:1.0", ports: [{containerPort: 8080}]}]
`

func TestEvalNodesTakesMultiDocumentYAMLListsAndJSON(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"one document per Node": write(t, dir, "nodes.yaml", fourNodes),
		"a NodeList as JSON": write(t, dir, "nodes.json", `{"apiVersion": "v1", "kind": "NodeList", "items": [
			{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-1", "labels": {"gpu": "true"}}, "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}},
			{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-2", "labels": {"gpu": "true"}}, "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}},
			{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "control-plane"}},
			{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1"}}]}`),
		"a List and a Node": write(t, dir, "mixed.yaml", "apiVersion: v1\nkind: List\nitems:\n"+
			"- {apiVersion: v1, kind: Node, metadata: {name: gpu-1, labels: {gpu: \"true\"}}, spec: {taints: [{key: dedicated, value: gpu, effect: NoSchedule}]}}\n"+
			"- {apiVersion: v1, kind: Node, metadata: {name: gpu-2, labels: {gpu: \"true\"}}, spec: {taints: [{key: dedicated, value: gpu, effect: NoSchedule}]}}\n"+
			"- {apiVersion: v1, kind: Node, metadata: {name: control-plane}}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: worker-1}\n"),
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := podgate(t, gpuPod, "eval", "-f", "-", "--nodes", file)
			if code != exitOK || !strings.Contains(out, "0/4 nodes can run this pod: ") || !strings.Contains(out, "2 have untolerated taint dedicated=gpu:NoSchedule") {
				t.Fatalf("exit %d, want the four Nodes read:\n%s%s", code, out, errOut)
			}
		})
	}
}

func TestEvalNodesRefusesWhatIsNotANode(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ content, want string }{
		"a ConfigMap among Nodes": {fourNodes + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "nodes.yaml#5: a v1 ConfigMap, not a v1 Node"},
		"no Node at all":          {"# nothing here\n", "holds no Node"},
		"a Node without a name":   {"apiVersion: v1\nkind: Node\nmetadata: {}\n", "nodes.yaml#1: the Node has no metadata.name"},
		"not YAML":                {"apiVersion: [v1\n", "nodes.yaml#1: not YAML or JSON"},
	} {
		t.Run(name, func(t *testing.T) {
			file := write(t, dir, "nodes.yaml", tc.content)
			code, _, errOut := podgate(t, gpuPod, "eval", "-f", "-", "--nodes", file)
			if code != exitBadArgs || !strings.Contains(errOut, "--nodes: ") || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d %q, want 2 saying %q", code, errOut, tc.want)
			}
		})
	}
}

func TestEvalHelpNamesTheNodesArgumentFILE(t *testing.T) {
	_, out, _ := podgate(t, "", "eval", "--help")
	if !strings.Contains(out, "--nodes FILE ") || strings.Contains(out, "--nodes kubectl") {
		t.Fatalf("eval --help:\n%s", out)
	}
	if !strings.Contains(out, "3  evaluation error") {
		t.Errorf("eval --help does not list the exit codes:\n%s", out)
	}
}

func TestEvalJudgesAPodThatNamesAControllerLikeAnyOther(t *testing.T) {
	owned := strings.Replace(twoPods[strings.Index(twoPods, "---\n")+4:], "metadata: {name: redis}",
		"metadata: {name: redis, ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: anything, uid: '1', controller: true}]}", 1)
	code, out, _ := podgate(t, owned, "eval", "-f", "-")
	if code != exitFailed || !strings.Contains(out, "Pod default/redis: denied") || strings.Contains(out, "not checked") {
		t.Fatalf("exit %d, want the Pod judged and denied:\n%s", code, out)
	}
}

func TestEvalOfAQuotedContainerPortGivesOneViolationAndInjectsNothing(t *testing.T) {
	deployment := strings.Replace(helmTemplate[strings.Index(helmTemplate, "# Source: app/templates/deployment.yaml"):], "containerPort: 8080", `containerPort: "8080"`, 1)
	code, out, _ := podgate(t, deployment, "eval", "-f", "-")
	if code != exitFailed || strings.Count(out, "deny   [") != 1 || !strings.Contains(out, `deny   [probes/port-number] containerPort "8080" of container "app" is not a number`) {
		t.Fatalf("exit %d, want one port-number denial:\n%s", code, out)
	}
	if strings.Contains(out, "+        readinessProbe:") || strings.Contains(out, "%!") || !strings.Contains(out, `its containerPort "8080" is not a number`) {
		t.Errorf("a probe was injected, or the note does not say why none was:\n%s", out)
	}
}

func TestTestOfTheBuiltInPolicyFolderTestsItInPlaceOfTheEmbeddedOne(t *testing.T) {
	code, out, errOut := podgate(t, "", "test", repo("policies"))
	if code != exitOK || !strings.Contains(out, "testdata: ") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
}

func TestCheckFlagsARuleIdThePolicyDoesNotDeclare(t *testing.T) {
	dir := t.TempDir()
	policy := write(t, dir, "broken.rego", strings.Replace(brokenTest, `{"rule": "always"`, `{"rule": "allways"`, 1))
	code, _, errOut := podgate(t, "", "check", dir)
	if want := policy + `:10:29: policy broken reports rule "allways", which its METADATA does not declare`; code != exitFailed || !strings.Contains(errOut, want) {
		t.Fatalf("exit %d %q, want 1 saying %q", code, errOut, want)
	}
}
