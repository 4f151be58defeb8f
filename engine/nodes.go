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

// markNodeReaders sets readsNodes on each policy whose violation or
// mutation rules read data.podgate.inventory, directly or through any rule
// or function they depend on (the compiler's dependency graph). A ref that
// may reach the inventory through a variable (data[x], data.podgate[x])
// counts as reading it: a policy wrongly taken for a reader costs time, one
// wrongly taken for a non-reader would make Revalidate wrong.
func markNodeReaders(c *ast.Compiler, policies []*Policy) {
	byRef := map[string]*Policy{}
	for _, p := range policies {
		byRef[p.ref] = p
	}
	for _, m := range c.Modules { // the compiled rules, which the graph knows
		p := byRef[m.Package.Path.String()]
		if p == nil {
			continue
		}
		for _, r := range m.Rules {
			switch r.Head.Ref().String() {
			case "violation", "mutation":
				if reaches(c, r) {
					p.ReadsNodes = true
				}
			}
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
// no violation), and only the policies that read the inventory are
// evaluated again, on the object as prev mutated it. ok is false when prev
// cannot be reused so: the policy set or the exceptions changed since, a
// mutating policy reads the inventory, or req is not a CREATE; the caller
// then calls Decide.
func (e *Engine) Revalidate(ctx context.Context, req *Request, prev *Decision) (d *Decision, ok bool, err error) {
	s := e.current.Load()
	exceptions := e.exceptionsGen.Load()
	if s == nil || s.mutationsReadNodes || req.Operation != OperationCreate ||
		prev != nil && (prev.generation != s.generation || prev.exceptions != exceptions) {
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
			if !s.readsNodes(v.Policy) {
				d.Violations = append(d.Violations, v)
			}
		}
		if len(prev.Patch) > 0 {
			if validated, err = patched(req, prev.Patch); err != nil {
				return nil, false, err
			}
		}
	}
	if s.nodeViolations != nil {
		vs, err := e.violations(ctx, s, validated, s.nodeViolations)
		if err != nil {
			return nil, false, err
		}
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

// readsNodes says whether the named policy reads the inventory.
func (s *set) readsNodes(policy string) bool {
	i := slices.IndexFunc(s.policies, func(p *Policy) bool { return p.Name == policy })
	return i < 0 || s.policies[i].ReadsNodes
}
