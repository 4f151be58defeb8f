package engine_test

import (
	"strings"
	"testing"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// brokenPolicy has a rule whose evaluation fails (a function with two
// values for one argument): evaluating it makes the request fail, so a
// request that does not fail proves the rule was not evaluated.
const brokenPolicy = `# METADATA
# title: Broken
# description: One rule that fails when evaluated, one that always fires.
# custom:
#   enforcement: deny
#   rules:
#     broken: {enforcement: deny, summary: fails when evaluated, kinds: [StatefulSet]}
#     fine: {enforcement: warn, summary: always fires}
package podgate.policies.broken

violation contains {"rule": "broken", "msg": two(1)} if true

violation contains {"rule": "fine", "msg": "fine"} if true

two(_) := "one"

two(_) := "two"
`

func statefulSet() *engine.Request {
	r := *deployment
	r.Kind.Kind = "StatefulSet"
	r.Object = []byte(`{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db"},"spec":{}}`)
	return &r
}

func TestARuleOfOtherKindsIsNotEvaluated(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "broken.rego", brokenPolicy)
	e := engine.New()
	if err := e.Load(t.Context(), engine.Sources{PolicyDir: dir}); err != nil {
		t.Fatal(err)
	}
	vs, err := e.Violations(t.Context(), deployment)
	if err != nil {
		t.Fatalf("the rule for StatefulSets was evaluated for a Deployment: %v", err)
	}
	if got := rules(vs); len(got) != 1 || got["broken/fine"] != engine.Warn {
		t.Errorf("violations %v, want broken/fine only", got)
	}
	if _, err := e.Violations(t.Context(), statefulSet()); err == nil || !strings.Contains(err.Error(), "eval_conflict_error") {
		t.Errorf("the rule must be evaluated for a StatefulSet: got error %v", err)
	}
}

func TestARuleConfigTurnsOffIsNotEvaluated(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "broken.rego", brokenPolicy)
	for name, tc := range map[string]struct {
		config string
		want   map[string]engine.Enforcement
	}{
		"the rule off":   {"policies: {broken: {rules: {broken: off}}}", map[string]engine.Enforcement{"broken/fine": engine.Warn}},
		"the policy off": {"policies: {broken: {enforcement: off}}", map[string]engine.Enforcement{}},
	} {
		t.Run(name, func(t *testing.T) {
			e := engine.New()
			cfg := write(t, t.TempDir(), "config.yaml", tc.config)
			if err := e.Load(t.Context(), engine.Sources{Builtin: policies.FS, PolicyDir: dir, ConfigFile: cfg}); err != nil {
				t.Fatal(err)
			}
			vs, err := e.Violations(t.Context(), statefulSet())
			if err != nil {
				t.Fatalf("a rule config turns off was evaluated: %v", err)
			}
			got := rules(vs)
			for rule := range got {
				if !strings.HasPrefix(rule, "broken/") {
					delete(got, rule)
				}
			}
			if len(got) != len(tc.want) || got["broken/fine"] != tc.want["broken/fine"] {
				t.Errorf("violations %v, want %v", got, tc.want)
			}
		})
	}
}

// Two rules of a policy that report the same violation report it once, as
// the policy's violation set holds it once.
func TestAViolationTwoRulesReportCountsOnce(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "twice.rego", `# METADATA
# title: Twice
# description: Two rules, one violation.
# custom: {enforcement: warn, rules: {r: {enforcement: warn, summary: s}}}
package podgate.policies.twice

violation contains {"rule": "r", "msg": "m"} if true

violation contains {"rule": "r", "msg": "m"} if input.request.kind.kind == "Deployment"

# Rules that read the whole set still see it.
mutation contains {"op": "note", "msg": sprintf("%d", [count(violation)])} if true
`)
	e := engine.New()
	if err := e.Load(t.Context(), engine.Sources{PolicyDir: dir}); err != nil {
		t.Fatal(err)
	}
	vs, err := e.Violations(t.Context(), deployment)
	if err != nil || len(vs) != 1 {
		t.Fatalf("got %v, %v; want one violation", vs, err)
	}
	ms, err := e.Mutations(t.Context(), deployment)
	if err != nil || len(ms) != 1 || ms[0].Message != "1" {
		t.Fatalf("got %v, %v; want one note counting one violation", ms, err)
	}
}

func TestMetadataKindsMustBeKindsPodgateChecks(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "typo.rego", strings.Replace(brokenPolicy, "kinds: [StatefulSet]", "kinds: [Statefulset]", 1))
	err := engine.New().Load(t.Context(), engine.Sources{PolicyDir: dir})
	if err == nil || !strings.Contains(err.Error(), "custom.rules.broken.kinds: Statefulset is not a kind podgate checks (did you mean StatefulSet?)") {
		t.Fatalf("got %v", err)
	}
}

func TestRuleNamesOfTheEngineAreRefused(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "clash.rego", brokenPolicy+"\n__podgate_violation_0 := 1\n")
	err := engine.New().Load(t.Context(), engine.Sources{PolicyDir: dir})
	if err == nil || !strings.Contains(err.Error(), "clash.rego:") || !strings.Contains(err.Error(), "podgate's own") {
		t.Fatalf("got %v", err)
	}
}

func TestCompileErrorsNameTheRulesAsWritten(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "bad.rego", `# METADATA
# title: Bad
# description: Refers to nothing.
# custom: {enforcement: warn, rules: {r: {enforcement: warn, summary: s}}}
package podgate.policies.bad

violation contains {"rule": "r", "msg": missing} if true
`)
	err := engine.New().Load(t.Context(), engine.Sources{PolicyDir: dir})
	if err == nil || !strings.Contains(err.Error(), "bad.rego:7:") || strings.Contains(err.Error(), "__podgate") {
		t.Fatalf("got %v", err)
	}
}
