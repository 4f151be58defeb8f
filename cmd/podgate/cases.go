package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-openapi/jsonpointer"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// The testdata cases are judged here and nowhere else: `podgate test`,
// `make test` and the Go tests all run judgeCases. A case goes through the
// engine as admission runs it (engine.Decide: mutation, then validation of
// the mutated object, with the shipped config, namespace exclusions and the
// UPDATE rules), and its expect block must hold exactly:
//
//   - violations: exactly these rule ids of the case's policy fire (the
//     other policies' violations are theirs to test);
//   - mutations: exactly these JSON pointers are what the case's policy
//     adds, replaces or removes (notes aside), each with a msg; the patch
//     makes each of them and turns the object into the mutated one; and
//     admitting the patched object again patches nothing;
//   - skipped: the engine skips the object (an excluded namespace, say); a
//     case that is skipped without saying so tests no rule, and fails.
//
// Across the cases, every rule a policy's METADATA declares (and does not
// turn off) is expected by at least one case, and every policy has a case
// where none of its rules fire.

// caseUser is who sends a case's request: an ordinary user, whose writes
// every policy checks.
var caseUser = engine.UserInfo{Username: "tester", Groups: []string{"system:authenticated"}}

// judgeCases judges every case with eng (which holds their policies),
// writes a FAIL block for each failing case and each policy its cases
// leave untested, and returns how many failed.
func judgeCases(ctx context.Context, eng *engine.Engine, cases []policies.Case, w io.Writer, verbose bool) int {
	declared := map[string]engine.Policy{}
	for _, p := range eng.Policies() {
		declared[p.Name] = p
	}
	failedCases := 0
	for _, c := range cases {
		problems := judgeCase(ctx, eng, declared, c)
		if len(problems) > 0 {
			failedCases++
			fmt.Fprintf(w, "FAIL %s: %s\n  %s\n", c.File, c.Description, strings.Join(problems, "\n  "))
		} else if verbose {
			fmt.Fprintf(w, "PASS %s: %s\n", c.File, c.Description)
		}
	}
	untested := 0
	for _, name := range slices.Sorted(maps.Keys(declared)) {
		if problems := coverage(declared[name], cases); len(problems) > 0 {
			untested++
			fmt.Fprintf(w, "FAIL %s: policy %s\n  %s\n", declared[name].File, name, strings.Join(problems, "\n  "))
		}
	}
	fmt.Fprintf(w, "testdata: %d/%d cases pass", len(cases)-failedCases, len(cases))
	if untested > 0 {
		fmt.Fprintf(w, "; %d of %d policies lack cases", untested, len(declared))
	}
	fmt.Fprintln(w)
	return failedCases + untested
}

// judgeCase returns what is wrong with case c, or nothing.
func judgeCase(ctx context.Context, eng *engine.Engine, declared map[string]engine.Policy, c policies.Case) []string {
	if _, ok := declared[c.Policy]; !ok {
		return []string{fmt.Sprintf("no policy named %s is loaded: a case lives in <policy>/testdata/<case>/, under the folder named for its policy", c.Policy)}
	}
	nodes, err := caseNodes(c)
	if err != nil {
		return []string{err.Error()}
	}
	if err := eng.SetNodes(ctx, nodes); err != nil {
		return []string{fmt.Sprintf("nodes: %v", err)}
	}
	req, err := caseRequest(c)
	if err != nil {
		return []string{err.Error()}
	}
	dec, err := eng.Decide(ctx, req)
	if err != nil {
		return []string{fmt.Sprintf("evaluation error (the webhook would answer 500): %v", err)}
	}
	switch {
	case dec.Skipped != "" && !c.Expect.Skipped:
		return []string{fmt.Sprintf("expected the policies to judge the object, got it skipped (%s): such a case tests no rule; move it where the policies look, or say expect.skipped: true", dec.Skipped)}
	case dec.Skipped == "" && c.Expect.Skipped:
		return []string{"expected the object to be skipped (expect.skipped), got it judged"}
	}
	problems := violationProblems(c, dec)
	problems = append(problems, mutationProblems(c, dec)...)
	if len(dec.Patch) > 0 {
		problems = append(problems, patchProblems(ctx, eng, c, req, dec)...)
	}
	return problems
}

func violationProblems(c policies.Case, dec *engine.Decision) []string {
	var got []string
	var fired []string
	for _, v := range dec.Violations {
		if v.Policy == c.Policy {
			got = append(got, v.Rule)
			fired = append(fired, fmt.Sprintf("    %s %s", v.Enforcement, dec.Line(v)))
		}
	}
	got = slices.Compact(slices.Sorted(slices.Values(got)))
	want := slices.Compact(slices.Sorted(slices.Values(c.Expect.Violations)))
	if slices.Equal(got, want) {
		return nil
	}
	return append([]string{fmt.Sprintf("violations of %s: expected %s, got %s", c.Policy, list(want), list(got))}, fired...)
}

// changes are the mutations of the case's policy that change the object.
func changes(c policies.Case, dec *engine.Decision) []engine.Mutation {
	var out []engine.Mutation
	for _, m := range dec.Changes() {
		if m.Policy == c.Policy {
			out = append(out, m)
		}
	}
	return out
}

func mutationProblems(c policies.Case, dec *engine.Decision) []string {
	var problems, got []string
	for _, m := range changes(c, dec) {
		got = append(got, m.Path)
		if m.Message == "" {
			problems = append(problems, fmt.Sprintf("mutation %s %s has no msg: the podgate.dev/mutations annotation would not say why it was made", m.Op, m.Path))
		}
	}
	got = slices.Compact(slices.Sorted(slices.Values(got)))
	want := slices.Compact(slices.Sorted(slices.Values(c.Expect.Mutations)))
	if !slices.Equal(got, want) {
		problems = append([]string{fmt.Sprintf("mutations of %s: expected %s, got %s", c.Policy, list(want), list(got))}, problems...)
	}
	return problems
}

// patchProblems applies the decision's patch to the object, as the API
// server does, and admits the result again, which must change nothing.
func patchProblems(ctx context.Context, eng *engine.Engine, c policies.Case, req *engine.Request, dec *engine.Decision) []string {
	patched, err := applyPatch(c.Object, dec.Patch)
	if err != nil {
		return []string{fmt.Sprintf("the patch does not apply to the object: %v (patch %s)", err, mustJSON(dec.Patch))}
	}
	mutated, err := dec.Mutated()
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	if !sameJSON(patched, mutated) {
		problems = append(problems, fmt.Sprintf("the patch does not turn the object into the mutated one: patched %s, mutated %s", patched, mutated))
	}
	before, after := decodeObject(c.Object), decodeObject(patched)
	for _, m := range changes(c, dec) {
		switch {
		case m.Op == engine.OpAdd && has(before, m.Path):
			problems = append(problems, fmt.Sprintf("mutation add %s: the object already has it; a mutation is made only when the object lacks what it adds", m.Path))
		case m.Op != engine.OpRemove && !has(after, m.Path):
			problems = append(problems, fmt.Sprintf("mutation %s %s: the patched object lacks it (patch %s)", m.Op, m.Path, mustJSON(dec.Patch)))
		case m.Op == engine.OpRemove && has(after, m.Path):
			problems = append(problems, fmt.Sprintf("mutation remove %s: the patched object still has it", m.Path))
		}
	}
	again := *req
	again.Object = patched
	dec2, err := eng.Decide(ctx, &again)
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("admitting the patched object again: evaluation error: %v", err))
	case len(dec2.Patch) > 0:
		problems = append(problems, fmt.Sprintf("admitting the patched object again: expected no patch, got %s (a mutation must be made only when the object lacks it)", mustJSON(dec2.Patch)))
	}
	return problems
}

// caseRequest is the admission request the API server would send for c.
func caseRequest(c policies.Case) (*engine.Request, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(c.Object, &meta); err != nil {
		return nil, fmt.Errorf("object: %w", err)
	}
	if meta.APIVersion == "" || meta.Kind == "" {
		return nil, fmt.Errorf("object: no apiVersion or kind")
	}
	gv, err := schema.ParseGroupVersion(meta.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("object: %w", err)
	}
	req := &engine.Request{
		UID:       "podgate-test-" + c.Name,
		Kind:      engine.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: meta.Kind},
		Namespace: c.Namespace,
		Name:      meta.Metadata.Name,
		Operation: c.Operation,
		UserInfo:  caseUser,
		Object:    c.Object,
	}
	if c.Operation == engine.OperationUpdate {
		req.OldObject = c.OldObject
	}
	return req, nil
}

// coverage returns what a policy's cases leave untested: a rule its
// METADATA declares that no case expects, or no case where it stays
// silent.
func coverage(p engine.Policy, cases []policies.Case) []string {
	expected := map[string]bool{}
	allowed := false
	for _, c := range cases {
		if c.Policy != p.Name || c.Expect.Skipped {
			continue
		}
		for _, r := range c.Expect.Violations {
			expected[r] = true
		}
		allowed = allowed || len(c.Expect.Violations) == 0
	}
	var problems []string
	for _, rule := range slices.Sorted(maps.Keys(p.Rules)) {
		if !expected[rule] && weakest(p.Enforcement, p.Rules[rule].Enforcement) != engine.Off {
			problems = append(problems, fmt.Sprintf("rule %s, declared in its METADATA, is expected by no testdata case: add a case that fires it", rule))
		}
	}
	if !allowed {
		problems = append(problems, "no testdata case expects none of its rules to fire: add an object it allows")
	}
	return problems
}

func weakest(a, b engine.Enforcement) engine.Enforcement {
	if a == engine.Off || b == engine.Off {
		return engine.Off
	}
	return b
}

func caseNodes(c policies.Case) (map[string]engine.Node, error) {
	nodes := make(map[string]engine.Node, len(c.Nodes))
	for name, raw := range c.Nodes {
		var n engine.Node
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, fmt.Errorf("nodes: %s: %w", name, err)
		}
		nodes[name] = n
	}
	return nodes, nil
}

func applyPatch(obj []byte, ops any) ([]byte, error) {
	p, err := jsonpatch.DecodePatch([]byte(mustJSON(ops)))
	if err != nil {
		return nil, err
	}
	return p.Apply(obj)
}

// has reports whether the JSON pointer p names something in doc.
func has(doc any, p string) bool {
	ptr, err := jsonpointer.New(p)
	if err != nil {
		return false
	}
	_, _, err = ptr.Get(doc)
	return err == nil
}

func decodeObject(raw []byte) map[string]any {
	var obj map[string]any
	_ = json.Unmarshal(raw, &obj) // caseRequest reports what is missing
	return obj
}

func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func mustJSON(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}

// list shows rule ids or paths as a case's YAML writes them.
func list(items []string) string { return "[" + strings.Join(items, ", ") + "]" }
