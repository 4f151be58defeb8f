package engine

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/podgate/podgate/policies"
)

// Running a query's plan decides exactly as topdown interpreting it: every
// testdata case of the built-in policies and of the example custom policy,
// as its own request and relabelled as each workload kind, gets the same
// Decision (mutations, patch, violations) from both.
func TestPlansDecideAsTopdown(t *testing.T) {
	ctx := t.Context()
	src := Sources{Builtin: policies.FS, PolicyDir: "../examples/policies"}
	planned, interpreted := New(), New()
	interpreted.topdownOnly = true
	for _, e := range []*Engine{planned, interpreted} {
		if err := e.Load(ctx, src); err != nil {
			t.Fatal(err)
		}
	}
	planAll(t, planned)
	compared, decided := 0, 0
	for _, c := range everyCase(t) {
		nodes := caseNodes(t, c)
		for _, e := range []*Engine{planned, interpreted} {
			if err := e.SetNodes(ctx, nodes); err != nil {
				t.Fatal(err)
			}
		}
		kind := kindField.FindString(string(c.Object))
		for _, k := range append([]string{""}, WorkloadKinds...) {
			obj, old, op := c.Object, c.OldObject, c.Operation
			if k != "" {
				obj = kindField.ReplaceAllLiteral(c.Object, []byte(`"kind":"`+k+`"`))
				old, op = nil, OperationCreate
			} else {
				var m struct{ Kind string }
				_ = json.Unmarshal(c.Object, &m)
				k = m.Kind
			}
			if op == "" {
				op = OperationCreate
			}
			req := &Request{UID: "u", Kind: GroupVersionKind{Kind: k}, Namespace: c.Namespace, Operation: op, Object: obj, OldObject: old,
				UserInfo: UserInfo{Username: "alice"}}
			got, gotErr := planned.Decide(ctx, req)
			want, wantErr := interpreted.Decide(ctx, req)
			if a, b := decisionJSON(t, got, gotErr), decisionJSON(t, want, wantErr); a != b {
				t.Errorf("%s (%s) as a %s:\nplan    %s\ntopdown %s", c.File, kind, k, a, b)
			}
			compared++
			if got != nil && (len(got.Violations) > 0 || len(got.Mutations) > 0) {
				decided++
			}
		}
	}
	if compared < 600 || decided < 300 {
		t.Fatalf("only %d comparisons, %d with a violation or a mutation", compared, decided)
	}
	// Every query the cases reached ran by its plan, so the comparison was
	// the plan's against topdown's.
	requirePlanned(t, planned)
}

// requirePlanned fails t unless every admission query of e's set has its
// plan, one per workload kind at least.
func requirePlanned(t *testing.T, e *Engine) {
	t.Helper()
	planned := 0
	for kind, p := range e.current.Load().plans {
		for _, q := range p.admission() {
			if q.ir.vm.Load() == nil {
				t.Errorf("%q: a query is not planned: %v", kind, q.ir.err)
			}
			planned++
		}
	}
	if planned < len(WorkloadKinds) {
		t.Errorf("only %d queries planned", planned)
	}
}

// kindField is an object's kind in its JSON, for relabelling a testdata
// object as another kind.
var kindField = regexp.MustCompile(`"kind":\s*"[A-Za-z]+"`)

// everyCase is every testdata case of the built-in policies and of the
// example custom policy.
func everyCase(t *testing.T) []policies.Case {
	t.Helper()
	cases, err := policies.LoadCases(policies.FS, "policies")
	if err != nil {
		t.Fatal(err)
	}
	examples, err := policies.LoadCases(os.DirFS("../examples/policies"), "examples/policies")
	if err != nil {
		t.Fatal(err)
	}
	return append(cases, examples...)
}

func decisionJSON(t *testing.T, d *Decision, err error) string {
	t.Helper()
	if err != nil {
		return "error: " + err.Error()
	}
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// withPolicy uses `with`, which plans are not run for; clockPolicy calls a
// builtin that reads the clock, which is left to topdown as well. The
// engine interprets their queries with topdown and decides the same.
const withPolicy = `# METADATA
# title: Rename
# description: A rule that asks another with a different input.
# custom:
#   enforcement: warn
#   rules:
#     named: {enforcement: warn, summary: says the name}
package podgate.policies.rename

name := input.request.object.metadata.name

violation contains {"rule": "named", "msg": sprintf("%s, not %s", [name, other])} if {
	other := name with input.request.object.metadata.name as "other"
}
`

const clockPolicy = `# METADATA
# title: Clock
# description: A rule that reads the clock.
# custom:
#   enforcement: warn
#   rules:
#     named: {enforcement: warn, summary: says the name}
package podgate.policies.clock

violation contains {"rule": "named", "msg": sprintf("%s, not other", [input.request.object.metadata.name])} if {
	time.now_ns() > 0
}
`

func TestAQueryThatCannotBePlannedIsInterpreted(t *testing.T) {
	for name, policy := range map[string]string{"with": withPolicy, "clock": clockPolicy} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(dir+"/policy.rego", []byte(policy), 0o600); err != nil {
				t.Fatal(err)
			}
			e := New()
			if err := e.Load(t.Context(), Sources{PolicyDir: dir}); err != nil {
				t.Fatal(err)
			}
			req := &Request{UID: "u", Kind: GroupVersionKind{Kind: "Pod"}, Namespace: "default", Operation: OperationCreate,
				Object: []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[]}}`)}
			vs, err := e.Violations(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != 1 || vs[0].Message != "web, not other" {
				t.Fatalf("violations %+v", vs)
			}
			planAll(t, e)
			if q := e.current.Load().plan("Pod").violations; q.ir.vm.Load() != nil || q.ir.err == nil {
				t.Errorf("the query ran by a plan (err %v)", q.ir.err)
			}
			// The operator is told (the webhook logs it at every load).
			if got := strings.Join(e.Unplanned(), "\n"); !strings.Contains(got, "Pod: plan: ") {
				t.Errorf("Unplanned() = %q, want the Pod query and why", got)
			}
		})
	}
}

// planAll plans every query of e's set and waits for the plans.
func planAll(t *testing.T, e *Engine) {
	t.Helper()
	s := e.current.Load()
	for _, p := range s.plans {
		for _, q := range []*query{p.violations, p.mutations, p.nodeViolations} {
			if q != nil {
				q.plan(t.Context(), s)
				<-q.ir.done
			}
		}
	}
}

// An engine that plans ahead swaps a set in with every plan ready, so
// no request after a load is interpreted.
func TestPlanAheadSwapsInASetWithItsPlansReady(t *testing.T) {
	e := New()
	e.PlanAhead()
	if err := e.Load(t.Context(), Sources{Builtin: policies.FS}); err != nil {
		t.Fatal(err)
	}
	requirePlanned(t, e)
	if u := e.Unplanned(); len(u) != 0 {
		t.Errorf("the built-in policies are planned, yet Unplanned() = %q", u)
	}
}
