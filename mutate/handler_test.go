package mutate

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	"github.com/go-openapi/jsonpointer"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/internal/testenv"
)

// patched applies the response's patch to obj, as the API server would.
func patched(t *testing.T, obj []byte, resp admission.Response) []byte {
	t.Helper()
	if !resp.Allowed {
		t.Fatalf("mutation denied: %+v", resp.Result)
	}
	if len(resp.Patches) == 0 {
		return obj
	}
	raw, err := json.Marshal(resp.Patches)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(obj)
	if err != nil {
		t.Fatalf("apply patch: %v", err)
	}
	return out
}

func has(t *testing.T, doc []byte, pointer string) bool {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	p, err := jsonpointer.New(pointer)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = p.Get(v)
	return err == nil
}

const nginx = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx-deployment","labels":{"app":"nginx"}},
"spec":{"replicas":3,"selector":{"matchLabels":{"app":"nginx"}},"template":{"metadata":{"labels":{"app":"nginx"}},
"spec":{"containers":[{"name":"nginx","image":"nginx:1.14.2","ports":[{"containerPort":80}]}]}}}}`

func TestNginxDeploymentGetsTCPProbesAndSaysSo(t *testing.T) {
	h := &Handler{Engine: testenv.Engine(t, ""), Log: logr.Discard()}
	resp := h.Handle(t.Context(), testenv.Request(t, "CREATE", "default", []byte(nginx), nil))
	var obj struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			Template struct {
				Spec struct {
					Containers []map[string]json.RawMessage `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(patched(t, []byte(nginx), resp), &obj); err != nil {
		t.Fatal(err)
	}
	c := obj.Spec.Template.Spec.Containers[0]
	for _, probe := range []string{"readinessProbe", "livenessProbe", "startupProbe"} {
		if !strings.Contains(string(c[probe]), `"tcpSocket":{"port":80}`) {
			t.Errorf("%s = %s, want a tcpSocket probe on port 80", probe, c[probe])
		}
	}
	note := obj.Metadata.Annotations[Annotation]
	if strings.Count(note, "\n") != 2 || !strings.Contains(note, "probes: ") || !strings.Contains(note, "nginx") {
		t.Errorf("annotation %s = %q, want one line per probe added", Annotation, note)
	}
}

// The API server calls the mutating webhook again when another webhook
// changed the object (reinvocationPolicy) and on every later apply: what
// podgate injected must not be injected twice.
func TestAdmittingTheMutatedNginxDeploymentAgainPatchesNothing(t *testing.T) {
	h := &Handler{Engine: testenv.Engine(t, ""), Log: logr.Discard()}
	first := h.Handle(t.Context(), testenv.Request(t, "CREATE", "default", []byte(nginx), nil))
	if len(first.Patches) == 0 {
		t.Fatal("the nginx Deployment lacks probes: the first admission must patch it")
	}
	mutated := patched(t, []byte(nginx), first)
	again := h.Handle(t.Context(), testenv.Request(t, "CREATE", "default", mutated, nil))
	if !again.Allowed || len(again.Patches) != 0 {
		t.Fatalf("admitting the mutated object again: allowed=%v patches %v, want none", again.Allowed, again.Patches)
	}
}

func TestUpdateWithUnchangedTemplateIsNotMutated(t *testing.T) {
	h := &Handler{Engine: testenv.Engine(t, ""), Log: logr.Discard()}
	scaled := strings.Replace(nginx, `"replicas":3`, `"replicas":5`, 1)
	resp := h.Handle(t.Context(), testenv.Request(t, "UPDATE", "default", []byte(scaled), []byte(nginx)))
	if !resp.Allowed || len(resp.Patches) != 0 {
		t.Fatalf("scaling must not start a rollout, got patches %v", resp.Patches)
	}
	newImage := strings.Replace(nginx, "nginx:1.14.2", "nginx:1.16.1", 1)
	resp = h.Handle(t.Context(), testenv.Request(t, "UPDATE", "default", []byte(newImage), []byte(nginx)))
	if len(resp.Patches) == 0 {
		t.Fatal("a template change is a rollout anyway: probes must be injected")
	}
}

func TestContainerWithoutPortGetsNoProbeButANote(t *testing.T) {
	h := &Handler{Engine: testenv.Engine(t, ""), Log: logr.Discard()}
	noPort := strings.Replace(nginx, `,"ports":[{"containerPort":80}]`, "", 1)
	resp := h.Handle(t.Context(), testenv.Request(t, "CREATE", "default", []byte(noPort), nil))
	out := patched(t, []byte(noPort), resp)
	if has(t, out, "/spec/template/spec/containers/0/readinessProbe") {
		t.Fatal("no port: no probe may be injected")
	}
	if !has(t, out, "/metadata/annotations/podgate.dev~1mutations") {
		t.Fatal("the annotation must say why nothing was injected")
	}
}

func TestMalformedAndFailingRequestsNeverAllow(t *testing.T) {
	h := &Handler{Engine: testenv.Engine(t, ""), Log: logr.Discard()}
	req := testenv.Request(t, "CREATE", "default", []byte(nginx), nil)
	req.UID = ""
	if resp := h.Handle(t.Context(), req); resp.Allowed || resp.Result.Code != http.StatusBadRequest {
		t.Fatalf("no uid: want 400, got %+v", resp.Result)
	}
	req = testenv.Request(t, "CREATE", "default", []byte(nginx), nil)
	req.Object.Raw = []byte(`{"kind":`)
	if resp := h.Handle(t.Context(), req); resp.Allowed || resp.Result.Code != http.StatusBadRequest || resp.Result.Message == "" {
		t.Fatalf("broken object: want 400 with a reason, got %+v", resp.Result)
	}
	unloaded := &Handler{Engine: engine.New(), Log: logr.Discard()}
	req = testenv.Request(t, "CREATE", "default", []byte(nginx), nil)
	if resp := unloaded.Handle(t.Context(), req); resp.Allowed || resp.Result.Code != http.StatusInternalServerError {
		t.Fatalf("no policy set: want 500, got %+v", resp.Result)
	}
}
