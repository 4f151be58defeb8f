package engine

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// describePolicies finds every package under podgate.policies and reads
// its METADATA: title, description, custom.enforcement, custom.kinds,
// custom.mutationKinds and custom.rules; defs are each package's violation
// and mutation definitions (splitDefinitions), which it links to their
// policy.
func describePolicies(c *ast.Compiler, modules map[string]*ast.Module, defs map[string][]*definition) ([]*Policy, error) {
	byRef := map[string]*Policy{}
	for _, file := range slices.Sorted(maps.Keys(modules)) {
		m := modules[file]
		ref := m.Package.Path.String()
		if !strings.HasPrefix(ref, policyPrefix) {
			continue
		}
		p := byRef[ref]
		if p == nil {
			p = &Policy{ref: ref, File: file, Name: policyName(m.Package.Path)}
			byRef[ref] = p
		}
		if len(m.Package.Path) != 4 {
			return nil, fmt.Errorf("%s:%d: package %s: a policy package is podgate.policies.<name>",
				file, m.Package.Location.Row, strings.TrimPrefix(ref, "data."))
		}
		if a := c.GetAnnotationSet().GetPackageScope(m.Package); a != nil && p.Title == "" {
			if err := p.readMetadata(a, file); err != nil {
				return nil, err
			}
		}
	}
	policies := slices.SortedFunc(maps.Values(byRef), func(a, b *Policy) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range policies {
		if p.Title == "" {
			return nil, fmt.Errorf("%s: policy %s: its package needs a # METADATA block with title, description and custom.enforcement", p.File, p.Name)
		}
		var reported []*ast.Term
		for _, d := range defs[p.ref] {
			d.policy = p
			p.defs = append(p.defs, d)
			if d.rule == "violation" {
				reported = append(reported, ruleIDs(d.parsed)...)
			}
		}
		if err := p.checkReported(reported); err != nil {
			return nil, err
		}
	}
	return policies, nil
}

// ruleIDs finds the rule ids a violation rule reports as literals: every
// {"rule": "<id>", ...} object written in its head or body. An id computed
// at evaluation time is not seen here.
func ruleIDs(r *ast.Rule) []*ast.Term {
	var out []*ast.Term
	ast.WalkTerms(r, func(t *ast.Term) bool {
		if obj, ok := t.Value.(ast.Object); ok {
			if id := obj.Get(ast.StringTerm("rule")); id != nil {
				if _, ok := id.Value.(ast.String); ok {
					out = append(out, id)
				}
			}
		}
		return false
	})
	return out
}

// checkReported rejects a rule id the policy reports but its METADATA does
// not declare: config could not override it (a rules entry for it is
// refused as unknown), and it would take the policy's enforcement unseen.
func (p *Policy) checkReported(ids []*ast.Term) error {
	var errs []error
	seen := map[string]bool{}
	for _, t := range ids {
		id := string(t.Value.(ast.String))
		if _, ok := p.Rules[id]; ok || seen[id] {
			continue
		}
		seen[id] = true
		where := p.File
		if t.Location != nil {
			where = fmt.Sprintf("%s:%d:%d", t.Location.File, t.Location.Row, t.Location.Col)
		}
		errs = append(errs, fmt.Errorf("%s: policy %s reports rule %q, which its METADATA does not declare; add it under custom.rules with its enforcement and summary (declared: %s)",
			where, p.Name, id, strings.Join(slices.Sorted(mapKeys(p.Rules)), ", ")))
	}
	return errors.Join(errs...)
}

// policyName is the package's last segment with _ written as -.
func policyName(path ast.Ref) string {
	last := path[len(path)-1].Value
	s, ok := last.(ast.String)
	if !ok {
		return last.String()
	}
	return strings.ReplaceAll(string(s), "_", "-")
}

func (p *Policy) readMetadata(a *ast.Annotations, file string) error {
	where := fmt.Sprintf("%s:%d: policy %s: METADATA", file, a.Location.Row, p.Name)
	if a.Title == "" || a.Description == "" {
		return fmt.Errorf("%s needs a title and a description", where)
	}
	p.Title, p.Description = a.Title, strings.TrimSpace(a.Description)
	e, err := parseEnforcement(a.Custom["enforcement"])
	if err != nil {
		return fmt.Errorf("%s custom.enforcement: %w", where, err)
	}
	p.Enforcement = e
	if p.Kinds, err = readKinds(a.Custom["kinds"], where+" custom.kinds"); err != nil {
		return err
	}
	if p.MutationKinds, err = readKinds(a.Custom["mutationKinds"], where+" custom.mutationKinds"); err != nil {
		return err
	}
	p.Rules = map[string]Rule{}
	rules, ok := a.Custom["rules"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s custom.rules: want a mapping of rule id to {enforcement, summary}", where)
	}
	for id, v := range rules {
		r, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s custom.rules.%s: want {enforcement, summary}", where, id)
		}
		e, err := parseEnforcement(r["enforcement"])
		if err != nil {
			return fmt.Errorf("%s custom.rules.%s: %w", where, id, err)
		}
		summary, _ := r["summary"].(string)
		kinds, err := readKinds(r["kinds"], fmt.Sprintf("%s custom.rules.%s.kinds", where, id))
		if err != nil {
			return err
		}
		p.Rules[id] = Rule{Enforcement: e, Summary: summary, Kinds: kinds}
	}
	return nil
}

// readKinds reads a METADATA list of kinds: nil when absent (every kind),
// else workload kinds only, so that a misspelt kind is an error rather
// than a rule that is never evaluated.
func readKinds(v any, where string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("%s: want a list of kinds, e.g. [Deployment, StatefulSet]", where)
	}
	kinds := make([]string, 0, len(list))
	for _, k := range list {
		s, _ := k.(string)
		if !slices.Contains(WorkloadKinds, s) {
			return nil, fmt.Errorf("%s: %v is not a kind podgate checks%s; the kinds are %s",
				where, k, didYouMean(s, WorkloadKinds), strings.Join(WorkloadKinds, ", "))
		}
		kinds = append(kinds, s)
	}
	return kinds, nil
}

// enforcement resolves a violation's level: a config override of the rule
// wins; otherwise the weaker of the policy's level (config, else METADATA)
// and the rule's own default (the violation's, else METADATA's). So an
// operator can turn a whole policy down to warn, and a warn-only rule stays
// a warning when the policy denies.
func (p *Policy) enforcement(pc PolicyConfig, rule string, own Enforcement) Enforcement {
	if e, ok := pc.Rules[rule]; ok {
		return e
	}
	policy := p.Enforcement
	if pc.Enforcement != "" {
		policy = pc.Enforcement
	}
	ruleDefault := policy
	if r, ok := p.Rules[rule]; ok {
		ruleDefault = r.Enforcement
	}
	if own != "" {
		ruleDefault = own
	}
	return weaker(policy, ruleDefault)
}

func mapKeys[V any](m map[string]V) iter.Seq[string] { return maps.Keys(m) }
