package engine

import (
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/podgate/podgate/policies"
)

// The mutating webhook applies the mutations to the object the policies
// saw, opened only where the mutations reach (opened), not to the object
// decoded again from its JSON. Both give the same patch and the same
// mutated object: every testdata case of the built-in and example
// policies, as its own kind and relabelled as each workload kind, is
// mutated both ways, and the patch, applied to the object's JSON, gives
// the mutated object.
func TestPatchOfTheObjectAsThePoliciesSawItIsThePatchOfItsJSON(t *testing.T) {
	ctx := t.Context()
	e := New()
	if err := e.Load(ctx, Sources{Builtin: policies.FS, PolicyDir: "../examples/policies"}); err != nil {
		t.Fatal(err)
	}
	patched := 0
	for _, c := range everyCase(t) {
		for _, k := range WorkloadKinds {
			obj := kindField.ReplaceAllLiteral(c.Object, []byte(`"kind":"`+k+`"`))
			req := &Request{UID: "u", Kind: GroupVersionKind{Kind: k}, Namespace: c.Namespace, Operation: OperationCreate,
				Object: obj, UserInfo: UserInfo{Username: "alice"}}
			d, err := e.Mutate(ctx, req)
			if err != nil {
				t.Fatalf("%s as a %s: %v", c.File, k, err)
			}
			if len(d.Mutations) == 0 {
				continue
			}
			decoded, err := decodeObject(obj)
			if err != nil {
				t.Fatal(err)
			}
			after, err := mutateObject(decoded, d.Mutations)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := mustJSON(t, d.Patch), mustJSON(t, diff(decoded, after)); got != want {
				t.Errorf("%s as a %s: patch\ngot  %s\nwant %s", c.File, k, got, want)
			}
			if len(d.Patch) == 0 {
				continue
			}
			patched++
			mutated, err := d.Mutated()
			if err != nil {
				t.Fatal(err)
			}
			if want := mustJSON(t, after); !jsonpatch.Equal(mutated, []byte(want)) {
				t.Errorf("%s as a %s: mutated object\ngot  %s\nwant %s", c.File, k, mutated, want)
			}
			p, err := jsonpatch.DecodePatch([]byte(mustJSON(t, d.Patch)))
			if err != nil {
				t.Fatal(err)
			}
			applied, err := p.Apply(obj)
			if err != nil {
				t.Fatalf("%s as a %s: applying the patch: %v", c.File, k, err)
			}
			if !jsonpatch.Equal(applied, mutated) {
				t.Errorf("%s as a %s: the patch applied gives\n%s\nnot the mutated object\n%s", c.File, k, applied, mutated)
			}
		}
	}
	if patched < 50 {
		t.Fatalf("only %d objects patched", patched)
	}
}

func TestOpenedDecodesAsEncodingJSON(t *testing.T) {
	raw := []byte(`{"a":[1,2.50,{"b":null,"c":true,"d":"x\u00e9"}],"e":{},"f":[],"g":-0,"h":1e3}`)
	v, err := parseJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, err := decodeObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := plain(v); mustJSON(t, got) != mustJSON(t, want) {
		t.Errorf("plain = %s, want %s", mustJSON(t, got), mustJSON(t, want))
	}
	if _, ok := opened(v).(map[string]any)["a"].(*ast.Array); !ok {
		t.Errorf("opened opens more than one level: %#v", opened(v))
	}
}
