package validate

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/internal/testenv"
	"github.com/podgate/podgate/policies"
)

const redisPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"redis"},"spec":{"containers":[{"name":"redis","image":"redis","volumeMounts":[{"name":"redis-storage","mountPath":"/data/redis"}]}],"volumes":[{"name":"redis-storage","emptyDir":{}}]}}`

func TestRedisPodWithEmptyDirIsDeniedNamingTheVolume(t *testing.T) {
	h := &Handler{Engine: testenv.Engine(t, ""), Log: logr.Discard()}
	resp := h.Handle(t.Context(), testenv.Request(t, "CREATE", "default", []byte(redisPod), nil))
	if resp.Allowed || resp.Result.Code != http.StatusForbidden {
		t.Fatalf("want a 403 denial, got allowed=%v %+v", resp.Allowed, resp.Result)
	}
	msg := resp.Result.Message
	for _, want := range []string{"[stateful-volumes/persistent-storage] Pod default/redis: ", `"redis-storage"`, "emptyDir"} {
		if !strings.Contains(msg, want) {
			t.Errorf("denial does not mention %q:\n%s", want, msg)
		}
	}
}

func TestMalformedRequestsAreRejectedWith400(t *testing.T) {
	h := &Handler{Engine: testenv.Engine(t, ""), Log: logr.Discard()}
	good := testenv.Request(t, "CREATE", "default", []byte(redisPod), nil)
	noUID := good
	noUID.UID = ""
	noObject := good
	noObject.Object.Raw = nil
	updateNoOld := good
	updateNoOld.Operation = admissionv1.Update
	notJSON := good
	notJSON.Object.Raw = []byte("{not json")
	cases := map[string]struct {
		req  admission.Request
		code int32
	}{
		"request without uid gets 400":      {noUID, http.StatusBadRequest},
		"CREATE without object gets 400":    {noObject, http.StatusBadRequest},
		"UPDATE without oldObject gets 400": {updateNoOld, http.StatusBadRequest},
		"object that is not JSON gets 400":  {notJSON, http.StatusBadRequest},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resp := h.Handle(t.Context(), tc.req)
			if resp.Allowed || resp.Result == nil || resp.Result.Code != tc.code || resp.Result.Message == "" {
				t.Fatalf("want allowed=false code %d with a reason, got allowed=%v %+v", tc.code, resp.Allowed, resp.Result)
			}
		})
	}
}

func TestNoPolicySetIsAnInternalErrorNotAnAllow(t *testing.T) {
	h := &Handler{Engine: engine.New(), Log: logr.Discard()}
	resp := h.Handle(t.Context(), testenv.Request(t, "CREATE", "default", []byte(redisPod), nil))
	if resp.Allowed || resp.Result.Code != http.StatusInternalServerError {
		t.Fatalf("want 500, got allowed=%v %+v", resp.Allowed, resp.Result)
	}
}

func TestAPodTheReplicaSetControllerWritesIsSkippedAndAForgedOneIsDenied(t *testing.T) {
	h := &Handler{Engine: testenv.Engine(t, ""), Log: logr.Discard()}
	owned := strings.Replace(redisPod, `"name":"redis"}`, `"name":"redis","ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"1","controller":true}]}`, 1)
	req := testenv.Request(t, "CREATE", "default", []byte(owned), nil)
	req.UserInfo.Username = "system:serviceaccount:kube-system:replicaset-controller"
	if resp := h.Handle(t.Context(), req); !resp.Allowed || len(resp.Warnings) > 0 {
		t.Errorf("the ReplicaSet controller's pod must be admitted without checks, got allowed=%v %+v %q", resp.Allowed, resp.Result, resp.Warnings)
	}
	req.UserInfo.Username = "tester"
	if resp := h.Handle(t.Context(), req); resp.Allowed || !strings.Contains(resp.Result.Message, "[stateful-volumes/persistent-storage]") {
		t.Errorf("a user's pod naming a controller must be checked and denied, got allowed=%v %+v", resp.Allowed, resp.Result)
	}
}

func TestExcludedNamespaceIsSkipped(t *testing.T) {
	h := &Handler{Engine: testenv.Engine(t, ""), Log: logr.Discard()}
	resp := h.Handle(t.Context(), testenv.Request(t, "CREATE", "kube-system", []byte(redisPod), nil))
	if !resp.Allowed {
		t.Fatalf("kube-system is excluded by default, got %+v", resp.Result)
	}
}

const deployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},
"spec":{"replicas":REPLICAS,"revisionHistoryLimit":0,"selector":{"matchLabels":{"app":"web"}},
"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1.27",
"ports":[{"containerPort":80}],
"readinessProbe":{"tcpSocket":{"port":80}},"livenessProbe":{"tcpSocket":{"port":80}},"startupProbe":{"tcpSocket":{"port":80}}}]}}}}`

func TestUpdateThatKeepsAnOldViolationIsWarnedNotDenied(t *testing.T) {
	h := &Handler{Engine: testenv.Engine(t, ""), Log: logr.Discard()}
	old := strings.Replace(deployment, "REPLICAS", "3", 1)
	scaled := strings.Replace(deployment, "REPLICAS", "5", 1)

	create := h.Handle(t.Context(), testenv.Request(t, "CREATE", "default", []byte(old), nil))
	if create.Allowed || !strings.Contains(create.Result.Message, "[rollout/revision-history]") {
		t.Fatalf("creating with revisionHistoryLimit 0 must be denied, got allowed=%v %+v", create.Allowed, create.Result)
	}
	update := h.Handle(t.Context(), testenv.Request(t, "UPDATE", "default", []byte(scaled), []byte(old)))
	if !update.Allowed {
		t.Fatalf("scaling an object that already broke the rule must be allowed, got %+v", update.Result)
	}
	if !slices.ContainsFunc(update.Warnings, func(w string) bool {
		return strings.HasPrefix(w, "[rollout/revision-history] Deployment default/web: ") && strings.Contains(w, "already so before this update")
	}) {
		t.Fatalf("want the old violation as a warning, got %q", update.Warnings)
	}
}

func TestConfigCanTurnARuleIntoDryRun(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("policies:\n  rollout:\n    rules:\n      revision-history: dryrun\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &Handler{Engine: testenv.Engine(t, cfg), Log: logr.Discard()}
	obj := strings.Replace(deployment, "REPLICAS", "3", 1)
	resp := h.Handle(t.Context(), testenv.Request(t, "CREATE", "default", []byte(obj), nil))
	if !resp.Allowed {
		t.Fatalf("a dryrun rule must not deny, got %+v", resp.Result)
	}
	if got := resp.AuditAnnotations["rollout.revision-history"]; !strings.HasPrefix(got, "[rollout/revision-history] Deployment default/web: ") {
		t.Fatalf("want an audit annotation, got %q", resp.AuditAnnotations)
	}
}

const slowPolicy = `# METADATA
# title: Slow
# description: A policy that takes far longer than any webhook timeout.
# custom:
#   enforcement: deny
#   rules:
#     slow: {enforcement: deny, summary: never finishes in time}
package podgate.policies.slow

violation contains {"rule": "slow", "msg": "slow; fix"} if {
	count([x | some x in numbers.range(1, 100000000); x % 7 == 0]) < 0
}
`

func TestEvaluationPastItsDeadlineIsA500NotAnAllow(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "slow.rego"), []byte(slowPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	eng := engine.New()
	if err := eng.Load(t.Context(), engine.Sources{Builtin: policies.FS, PolicyDir: dir}); err != nil {
		t.Fatal(err)
	}
	h := &Handler{Engine: eng, Log: logr.Discard(), EvalTimeout: 100 * time.Millisecond}
	start := time.Now()
	resp := h.Handle(t.Context(), testenv.Request(t, "CREATE", "default", []byte(redisPod), nil))
	if resp.Allowed || resp.Result.Code != http.StatusInternalServerError || !strings.Contains(resp.Result.Message, "podgate could not evaluate its policies") {
		t.Fatalf("want a 500 with a reason, got allowed=%v %+v", resp.Allowed, resp.Result)
	}
	t.Logf("answered after %v: %s", time.Since(start), resp.Result.Message)
}

// conflictPolicy compiles, but its evaluation fails on every Pod: a
// function that gives two answers for one input is an eval_conflict_error.
const conflictPolicy = `# METADATA
# title: Conflict
# description: A policy whose evaluation fails on every Pod.
# custom:
#   enforcement: deny
#   rules:
#     conflict: {enforcement: deny, summary: fails at evaluation}
package podgate.policies.conflict

kind(o) := o.kind

kind(o) := "other" if o.kind == "Pod"

violation contains {"rule": "conflict", "msg": "never sent"} if {
	kind(input.request.object) == "nothing"
}
`

func TestRegoRuntimeErrorIsA500NotAnAllow(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "conflict.rego"), []byte(conflictPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	eng := engine.New()
	if err := eng.Load(t.Context(), engine.Sources{Builtin: policies.FS, PolicyDir: dir}); err != nil {
		t.Fatal(err)
	}
	h := &Handler{Engine: eng, Log: logr.Discard()}
	resp := h.Handle(t.Context(), testenv.Request(t, "CREATE", "default", []byte(redisPod), nil))
	if resp.Allowed || resp.Result.Code != http.StatusInternalServerError ||
		!strings.Contains(resp.Result.Message, "podgate could not evaluate its policies") || !strings.Contains(resp.Result.Message, "conflict") {
		t.Fatalf("want a 500 naming the conflict, got allowed=%v %+v", resp.Allowed, resp.Result)
	}
	t.Log(resp.Result.Message)
}
