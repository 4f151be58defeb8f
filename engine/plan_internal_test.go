package engine

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/podgate/podgate/policies"
)

// The kinds the built-in policies declare in their METADATA only leave out
// rules that would not fire: every testdata object, relabelled as each
// workload kind in turn, gets from its kind's plan the violations and
// mutations that every definition together gives.
func TestDeclaredKindsLeaveOutOnlyRulesThatCannotFire(t *testing.T) {
	ctx := t.Context()
	e := New()
	if err := e.Load(ctx, Sources{Builtin: policies.FS}); err != nil {
		t.Fatal(err)
	}
	s := e.current.Load()
	// The same policies with no kinds declared: the plan of any kind
	// evaluates every definition.
	var all []*definition
	for _, p := range s.policies {
		open := *p
		open.Kinds, open.MutationKinds, open.Rules = nil, nil, map[string]Rule{}
		for id, r := range p.Rules {
			r.Kinds = nil
			open.Rules[id] = r
		}
		for _, d := range p.defs {
			cp := *d
			cp.policy = &open
			all = append(all, &cp)
		}
	}
	full, err := plans(ctx, s.compiler, s.store, all, s.config)
	if err != nil {
		t.Fatal(err)
	}
	everything := &set{policies: s.policies, config: s.config, store: s.store, compiler: s.compiler, plans: full}
	everything.data.Store(s.data.Load())
	cases, err := policies.LoadCases(policies.FS, "policies")
	if err != nil {
		t.Fatal(err)
	}
	kindField := regexp.MustCompile(`"kind":\s*"[A-Za-z]+"`)
	compared := 0
	for _, c := range cases {
		if err := e.SetNodes(ctx, caseNodes(t, c)); err != nil {
			t.Fatal(err)
		}
		for _, kind := range WorkloadKinds {
			obj := kindField.ReplaceAllLiteral(c.Object, []byte(`"kind":"`+kind+`"`))
			req := &Request{UID: "u", Kind: GroupVersionKind{Kind: kind}, Namespace: c.Namespace, Operation: OperationCreate, Object: obj}
			got, err := e.violations(ctx, s, req, s.plan(kind).violations)
			if err != nil {
				t.Fatal(err)
			}
			want, err := e.violations(ctx, everything, req, everything.plan(kind).violations)
			if err != nil {
				t.Fatal(err)
			}
			if show(got) != show(want) {
				t.Errorf("%s as a %s:\nplan %s\nall  %s", c.File, kind, show(got), show(want))
			}
			gotM, _, err := e.mutations(ctx, s, req)
			if err != nil {
				t.Fatal(err)
			}
			wantM, _, err := e.mutations(ctx, everything, req)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := mustJSON(t, gotM), mustJSON(t, wantM); a != b {
				t.Errorf("%s as a %s: mutations\nplan %s\nall  %s", c.File, kind, a, b)
			}
			compared++
		}
	}
	if compared < 500 {
		t.Fatalf("only %d comparisons", compared)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// caseNodes are the Nodes of a testdata case.
func caseNodes(t *testing.T, c policies.Case) map[string]Node {
	t.Helper()
	nodes := map[string]Node{}
	for name, raw := range c.Nodes {
		var n Node
		if err := json.Unmarshal(raw, &n); err != nil {
			t.Fatal(err)
		}
		nodes[name] = n
	}
	return nodes
}
