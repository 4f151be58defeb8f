package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A policy's violation (or mutation) set is the union of the rules that
// define it, one `violation contains v if {...}` each. The engine compiles
// every such definition under a name of its own and puts violation and
// mutation back as the union of them, so that it can evaluate only the
// definitions that can report something for a request: a rule that config
// turns off, or that the policy's METADATA restricts to other kinds, is not
// evaluated at all (see plan.go). Rules that read violation or mutation
// still see the whole set.

// definition is one violation or mutation rule of a policy, as written.
type definition struct {
	policy *Policy
	rule   string // "violation" or "mutation"
	name   string // the name it is compiled under
	// ids are the rule ids it reports as literals ({"rule": "<id>", ...});
	// open says it may report others (an id computed at evaluation time).
	ids  []string
	open bool
	// readsNodes: the definition, or a rule or function it depends on,
	// reads data.podgate.inventory (markNodeReaders).
	readsNodes bool
	parsed     *ast.Rule // as written, for the rule ids' locations
}

// ref is the definition's compiled rule.
func (d *definition) ref() string { return d.policy.ref + "." + d.name }

// definitionPrefix starts the name a definition is compiled under:
// __podgate_violation_0, __podgate_mutation_2. A policy's own rule names
// cannot clash with it, as long as none starts with it (checked).
const definitionPrefix = "__podgate_"

// splitDefinitions returns copies of the policy modules in which every
// violation and mutation rule of a podgate.policies package is renamed
// to a definition of its own, and violation and mutation are defined as
// the union of their definitions; the library modules are returned as
// they are. The definitions are listed per package, in file order.
func splitDefinitions(modules map[string]*ast.Module) (map[string]*ast.Module, map[string][]*definition, error) {
	out := make(map[string]*ast.Module, len(modules))
	defs := map[string][]*definition{}
	for _, file := range slices.Sorted(maps.Keys(modules)) {
		m := modules[file]
		pkg := m.Package.Path.String()
		if !strings.HasPrefix(pkg, policyPrefix) {
			out[file] = m
			continue
		}
		cp := m.Copy()
		var unions []*ast.Rule
		for i, r := range cp.Rules {
			name := r.Head.Ref().String()
			if strings.HasPrefix(name, definitionPrefix) {
				return nil, nil, fmt.Errorf("%s:%d: rule %s: names starting with %s are podgate's own", file, r.Location.Row, name, definitionPrefix)
			}
			if name != "violation" && name != "mutation" {
				continue
			}
			own := fmt.Sprintf("%s%s_%d", definitionPrefix, name, len(defs[pkg]))
			ids, open := literalIDs(m.Rules[i])
			defs[pkg] = append(defs[pkg], &definition{rule: name, name: own, ids: ids, open: open, parsed: m.Rules[i]})
			r.Head.Name = ast.Var(own)
			r.Head.Reference = ast.Ref{ast.VarTerm(own)}
			union, err := ast.ParseRuleWithOpts(fmt.Sprintf("%s contains x if some x in %s", name, own), ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", file, err)
			}
			union.Module = cp
			setLocation(union, r.Location)
			unions = append(unions, union)
		}
		cp.Rules = append(cp.Rules, unions...)
		out[file] = cp
	}
	return out, defs, nil
}

// setLocation gives the generated union rule the location of the
// definition it stands for, so that errors point at what the author wrote.
func setLocation(r *ast.Rule, loc *ast.Location) {
	ast.WalkTerms(r, func(t *ast.Term) bool {
		t.Location = loc
		return false
	})
	r.Location, r.Head.Location = loc, loc
	for _, e := range r.Body {
		e.Location = loc
	}
}

// literalIDs are the rule ids a violation rule reports as literals: every
// {"rule": "<id>", ...} object written in its head or body. open says that
// it may report an id it does not write so: one of its "rule" keys holds
// something else than a string, or it writes no "rule" key at all.
func literalIDs(r *ast.Rule) (ids []string, open bool) {
	keys := 0
	ast.WalkTerms(r, func(t *ast.Term) bool {
		obj, ok := t.Value.(ast.Object)
		if !ok {
			return false
		}
		id := obj.Get(ast.InternedTerm("rule"))
		if id == nil {
			return false
		}
		keys++
		if s, ok := id.Value.(ast.String); ok {
			ids = append(ids, string(s))
		} else {
			open = true
		}
		return false
	})
	slices.Sort(ids)
	return slices.Compact(ids), open || keys == 0
}
