package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"gomodules.xyz/jsonpatch/v2"
)

// inventoryRef is where policies read the Node inventory.
var inventoryRef = ast.MustParseRef("data.podgate.inventory")

// markNodeReaders finds the definitions (violation and mutation rules)
// that read data.podgate.inventory, directly or through any rule or
// function they depend on (the compiler's dependency graph), and the
// policies that have one (ReadsNodes). A ref that may reach the inventory
// through a variable (data[x], data.podgate[x]) counts as reading it: a
// definition wrongly taken for a reader costs time, one wrongly taken for
// a non-reader would make Revalidate wrong.
func markNodeReaders(c *ast.Compiler, policies []*Policy) {
	for _, p := range policies {
		for _, d := range p.defs {
			for _, r := range c.GetRulesExact(ast.MustParseRef(d.ref())) {
				d.readsNodes = d.readsNodes || reaches(c, r)
			}
			p.ReadsNodes = p.ReadsNodes || d.readsNodes
		}
	}
}

// reaches says whether rule r, or a rule it depends on, reads the inventory.
func reaches(c *ast.Compiler, r *ast.Rule) bool {
	seen := map[*ast.Rule]bool{}
	queue := []*ast.Rule{r}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if seen[cur] {
			continue
		}
		seen[cur] = true
		if readsInventory(cur) {
			return true
		}
		for dep := range c.Graph.Dependencies(cur) {
			if d, ok := dep.(*ast.Rule); ok {
				queue = append(queue, d)
			}
		}
	}
	return false
}

func readsInventory(r *ast.Rule) bool {
	found := false
	ast.WalkRefs(r, func(ref ast.Ref) bool {
		if mayBeInventory(ref) {
			found = true
		}
		return found
	})
	return found
}

// mayBeInventory says whether ref reads the inventory or something that
// holds it (data.podgate), or may, through a variable.
func mayBeInventory(ref ast.Ref) bool {
	for i := range min(len(ref), len(inventoryRef)) {
		if i > 0 && !ref[i].IsGround() {
			return true
		}
		if !ref[i].Equal(inventoryRef[i]) {
			return false
		}
	}
	return true
}

// Revalidate is the decision on req after a change of the Node inventory,
// at a fraction of Decide's cost: prev is the decision Decide made on the
// same object under the same policy set (nil for one with no mutation and
// no violation), and only the violation rules that read the inventory
// (and those reporting the same rules) are evaluated again, on the object
// as prev mutated it. ok is false when prev cannot be reused so: the
// policy set or the exceptions changed since, a mutating rule reads the
// inventory, or req is not a CREATE; the caller then calls Decide.
func (e *Engine) Revalidate(ctx context.Context, req *Request, prev *Decision) (d *Decision, ok bool, err error) {
	s := e.current.Load()
	exceptions := e.exceptionsGen.Load()
	if s == nil || req.Operation != OperationCreate ||
		prev != nil && (prev.generation != s.generation || prev.exceptions != exceptions) {
		return nil, false, nil
	}
	p := s.plan(req.Kind.Kind)
	if p.mutationsReadNodes {
		return nil, false, nil
	}
	d = &Decision{Object: req.Describe(), Violations: []Violation{}, generation: s.generation, exceptions: exceptions}
	if d.Skipped = e.Skip(req); d.Skipped != "" {
		return d, true, nil
	}
	validated := req
	if prev != nil {
		d.Mutations, d.Patch = prev.Mutations, prev.Patch
		for _, v := range prev.Violations {
			if !p.changesWithNodes(v.Policy, v.Rule) {
				d.Violations = append(d.Violations, v)
			}
		}
		if len(prev.Patch) > 0 {
			if validated, err = patched(req, prev.Patch); err != nil {
				return nil, false, err
			}
		}
	}
	if p.nodeViolations != nil {
		vs, err := e.violations(ctx, s, validated, p.nodeViolations)
		if err != nil {
			return nil, false, err
		}
		vs = slices.DeleteFunc(vs, func(v Violation) bool { return !p.changesWithNodes(v.Policy, v.Rule) })
		e.except(s, validated, vs)
		d.Violations = append(d.Violations, vs...)
		sortViolations(d.Violations)
	}
	return d, true, nil
}

// patched is req with the patch applied to its object.
func patched(req *Request, patch []jsonpatch.JsonPatchOperation) (*Request, error) {
	obj, err := decodeObject(req.Object)
	if err != nil {
		return nil, err
	}
	for _, op := range patch {
		if err := apply(obj, op.Operation, op.Path, op.Value); err != nil {
			return nil, fmt.Errorf("reapply the mutations: %w", err)
		}
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	out := *req
	out.Object = raw
	return &out, nil
}
