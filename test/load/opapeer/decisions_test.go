package opapeer_test

import (
	"encoding/json"
	"io/fs"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/internal/testenv"
	"github.com/podgate/podgate/policies"
	"github.com/podgate/podgate/test/load"
	"github.com/podgate/podgate/test/load/opapeer"
	"github.com/podgate/podgate/validate"
)

// opaPeer evaluates the load test's OPA entrypoint in process, over the
// same files WriteBundle gives opa run --server.
type opaPeer struct {
	compiler *ast.Compiler
	data     map[string]any
}

func newOPAPeer(t *testing.T) *opaPeer {
	t.Helper()
	modules := map[string]*ast.Module{}
	add := func(name string, src []byte) {
		m, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			t.Fatal(err)
		}
		modules[name] = m
	}
	err := fs.WalkDir(policies.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".rego") && !strings.HasSuffix(path, "_test.rego") {
			src, _ := fs.ReadFile(policies.FS, path)
			add(path, src)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	add("system/admission.rego", opapeer.Entrypoint)
	c := ast.NewCompiler().WithStrict(true)
	if c.Compile(modules); c.Failed() {
		t.Fatal(c.Errors)
	}
	raw, _ := fs.ReadFile(policies.FS, "data.yaml")
	var data map[string]any
	if err := yaml.Unmarshal(raw, &data); err != nil {
		t.Fatal(err)
	}
	meta, err := opapeer.Metadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	data["podgate"].(map[string]any)["loadtest"] = map[string]any{"metadata": meta}
	return &opaPeer{compiler: c, data: data}
}

func (p *opaPeer) answer(t *testing.T, nodes map[string]engine.Node, review []byte) load.Answer {
	t.Helper()
	data := maps.Clone(p.data)
	podgate := maps.Clone(data["podgate"].(map[string]any))
	raw, _ := json.Marshal(map[string]any{"nodes": nodes})
	var inv any
	_ = json.Unmarshal(raw, &inv)
	podgate["inventory"] = inv
	data["podgate"] = podgate
	var input any
	if err := json.Unmarshal(review, &input); err != nil {
		t.Fatal(err)
	}
	rs, err := rego.New(rego.Query("data.system.main"), rego.Compiler(p.compiler), rego.Store(inmem.NewFromObject(data)), rego.Input(input)).
		Eval(t.Context())
	if err != nil || len(rs) != 1 {
		t.Fatalf("OPA entrypoint: %v %v", rs, err)
	}
	body, _ := json.Marshal(rs[0].Expressions[0].Value)
	a, err := load.ParseAnswer(body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// podgateAnswer runs the validating handler as controller-runtime does and
// reads back the AdmissionReview it would write.
func podgateAnswer(t *testing.T, eng *engine.Engine, nodes map[string]engine.Node, req admission.Request) load.Answer {
	t.Helper()
	if err := eng.SetNodes(t.Context(), nodes); err != nil {
		t.Fatal(err)
	}
	h := &validate.Handler{Engine: eng, Log: logr.Discard()}
	resp := h.Handle(t.Context(), req)
	if err := resp.Complete(req); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(admissionv1.AdmissionReview{Response: &resp.AdmissionResponse})
	a, err := load.ParseAnswer(body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestOPAPeerDecidesAsPodgate: the load test compares podgate with OPA
// serving the same policies, so both must make the same decisions, with
// the same messages, on every testdata case of the built-in policies and
// on the scope rules (excluded namespace, a controller's Pod and a user's
// Pod naming a controller, DELETE).
func TestOPAPeerDecidesAsPodgate(t *testing.T) {
	peer := newOPAPeer(t)
	type tc struct {
		name  string
		nodes map[string]engine.Node
		req   admission.Request
	}
	var cases []tc
	for _, c := range testenv.Cases(t) {
		cases = append(cases, tc{c.File, testenv.Nodes(t, c), testenv.Request(t, c.Operation, c.Namespace, c.Object, c.OldObject)})
	}
	pod := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","ownerReferences":[{"kind":"ReplicaSet","name":"rs","controller":true}]},"spec":{"containers":[{"name":"c","image":"redis"}]}}`)
	bare := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"p-"},"spec":{"containers":[{"name":"c","image":"redis"}],"volumes":[{"name":"d","emptyDir":{}}]}}`)
	cases = append(cases,
		tc{"excluded namespace", nil, testenv.Request(t, "CREATE", "kube-system", bare, nil)},
		tc{"a user's pod naming a controller", nil, testenv.Request(t, "CREATE", "default", pod, nil)},
		tc{"a controller's pod", nil, asUser(testenv.Request(t, "CREATE", "default", pod, nil), "system:serviceaccount:kube-system:replicaset-controller")},
		tc{"generateName", nil, withName(testenv.Request(t, "CREATE", "default", bare, nil), "")},
		tc{"delete", nil, deletion(testenv.Request(t, "CREATE", "default", bare, nil))},
	)
	denied := 0
	eng := testenv.Engine(t, "")
	for _, c := range cases {
		want := podgateAnswer(t, eng, c.nodes, c.req)
		review, _ := json.Marshal(admissionv1.AdmissionReview{Request: &c.req.AdmissionRequest})
		got := peer.answer(t, c.nodes, review)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n OPA     %+v\n podgate %+v", c.name, got, want)
		}
		if !want.Allowed {
			denied++
		}
	}
	if denied < 10 {
		t.Errorf("only %d of %d cases denied: the comparison covers too few denials", denied, len(cases))
	}
}

func asUser(r admission.Request, user string) admission.Request {
	r.UserInfo.Username = user
	return r
}

func withName(r admission.Request, name string) admission.Request {
	r.Name = name
	return r
}

func deletion(r admission.Request) admission.Request {
	r.Operation = admissionv1.Delete
	r.OldObject, r.Object = r.Object, r.OldObject
	return r
}
