package engine

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/podgate/podgate/policies"
)

// oddObjects are objects the API server would refuse or that are rare,
// which the mutating webhook and podgate eval may still see.
var oddObjects = map[string]string{
	"generateName":         `{"kind":"Pod","metadata":{"generateName":"web-"},"spec":{"containers":[{"name":"a","image":"a"}]}}`,
	"no metadata":          `{"kind":"Deployment","spec":{"replicas":"3","template":{"spec":{"containers":[]}}}}`,
	"metadata not object":  `{"kind":"Pod","metadata":"x","spec":{}}`,
	"spec not object":      `{"kind":"Deployment","metadata":{"name":"d"},"spec":"x"}`,
	"pod spec a string":    `{"kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":"x"}}}`,
	"null pod spec":        `{"kind":"Pod","metadata":{"name":"p"},"spec":null}`,
	"containers an object": `{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":{"a":{"name":"a"}}}}`,
	"odd containers":       `{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":["x",{"name":1,"image":2},{},{"name":null,"image":null}],"initContainers":[{"name":"i","restartPolicy":"Always","image":"localhost:5000/a/b:1@sha256:00"}],"ephemeralContainers":[{"name":"e","image":"a:b:c"}]}}`,
	"pod that finishes":    `{"kind":"Pod","metadata":{"name":"p","labels":{"a":"1"}},"spec":{"restartPolicy":"Never","containers":[{"name":"a","image":"x@sha256:1"}]}}`,
	"null restartPolicy":   `{"kind":"Pod","metadata":{"name":"p"},"spec":{"restartPolicy":null}}`,
	"cronjob":              `{"kind":"CronJob","metadata":{"name":"c","annotations":{"a":"1","b":"2"}},"spec":{"jobTemplate":{"spec":{"template":{"metadata":{"annotations":{"b":"3"},"labels":"x"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}}}}}`,
	"labels merged deeply": `{"kind":"Deployment","metadata":{"name":"d","labels":{"a":{"x":1},"b":"1"}},"spec":{"template":{"metadata":{"labels":{"a":{"y":2}}}}}}`,
	"unknown kind":         `{"kind":"Service","metadata":{"name":"s","namespace":"n"},"spec":{"replicas":null}}`,
}

// The workload view the engine computes in Go is the one
// lib/workload.rego computes in Rego where the engine does not run (opa
// test, a plain OPA): for every testdata object and the odd ones above.
func TestTheWorkloadViewIsTheOneRegoComputes(t *testing.T) {
	ctx := t.Context()
	e := New()
	if err := e.Load(ctx, Sources{Builtin: policies.FS}); err != nil {
		t.Fatal(err)
	}
	s := e.current.Load()
	pq, err := rego.New(rego.ParsedQuery(ast.MustParseBody("x := data.podgate.lib.workload.computed_view")),
		rego.Compiler(s.compiler), rego.Store(s.store), rego.GenerateJSON(keepTerm)).PrepareForEval(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := policies.LoadCases(policies.FS, "policies")
	if err != nil {
		t.Fatal(err)
	}
	objects := map[string][]byte{}
	for _, c := range cases {
		objects[c.File] = c.Object
	}
	for name, o := range oddObjects {
		objects[name] = []byte(o)
	}
	for name, raw := range objects {
		for _, namespace := range []string{"shop", ""} {
			obj, err := parseJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			kind := stringValue(obj.(ast.Object).Get(ast.StringTerm("kind")))
			req := &Request{UID: "u", Kind: GroupVersionKind{Kind: kind}, Namespace: namespace, Operation: OperationCreate, Object: raw}
			input, _, err := req.input()
			if err != nil {
				t.Fatal(err)
			}
			want := computedView(ctx, t, pq, input)
			got := input.(ast.Object).Get(ast.StringTerm("workload"))
			if got == nil || got.Value.Compare(want) != 0 {
				t.Errorf("%s in namespace %q:\nGo   %v\nRego %v", name, namespace, got, want)
			}
		}
	}
}

func computedView(ctx context.Context, t *testing.T, pq rego.PreparedEvalQuery, input ast.Value) ast.Value {
	t.Helper()
	request := ast.NewObject(ast.Item(ast.StringTerm("request"), input.(ast.Object).Get(ast.StringTerm("request"))))
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(request))
	if err != nil || len(rs) != 1 {
		t.Fatalf("computed_view: %v %v", rs, err)
	}
	return rs[0].Bindings["x"].(*ast.Term).Value
}
