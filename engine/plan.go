package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// WorkloadKinds are the kinds podgate's webhooks are registered for, the
// ones a policy's METADATA may restrict it (or a rule) to.
var WorkloadKinds = []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}

// plan is what the engine evaluates for a request of one kind: only the
// definitions that can report something for that kind under the set's
// config. A definition is left out when config turns off its policy or
// every rule it reports, or when the policy's METADATA restricts the
// policy, or every rule it reports, to other kinds.
type plan struct {
	violations *query
	mutations  *query
	// nodeViolations are the definitions Revalidate evaluates again after
	// a Node change (nil when none); nodeRules are the rules whose
	// violations they replace (see revalidated).
	nodeViolations *query
	nodeRules      map[string]map[string]bool
	// mutationsReadNodes: a mutation of this kind may change with the
	// Nodes, so Revalidate cannot reuse an earlier mutation.
	mutationsReadNodes bool
}

// admission are the queries admission runs for the kind, those it has:
// the violations and the mutations.
func (p *plan) admission() []*query {
	var out []*query
	for _, q := range []*query{p.violations, p.mutations} {
		if q != nil {
			out = append(out, q)
		}
	}
	return out
}

// query is one prepared query over several definitions: its result is an
// array whose i-th element is the set that defs[i] reports.
type query struct {
	pq   *rego.PreparedEvalQuery
	defs []*definition
	// body is the query; ir its plan, made on first use (ir.go).
	body ast.Body
	ir   planned
}

// anyRule in nodeRules stands for every rule of a policy.
const anyRule = "*"

// plans prepares a plan for each workload kind and one, under "", for
// any other kind. Plans that evaluate the same definitions share their
// prepared queries.
func plans(ctx context.Context, c *ast.Compiler, store storage.Store, defs []*definition, cfg *Config) (map[string]*plan, error) {
	prepared := map[string]*query{}
	prepare := func(list []*definition) (*query, error) {
		if len(list) == 0 {
			return nil, nil
		}
		terms := make([]string, len(list))
		for i, d := range list {
			terms[i] = d.ref()
		}
		text := "x := [" + strings.Join(terms, ", ") + "]"
		if q, ok := prepared[text]; ok {
			return q, nil
		}
		body, err := ast.ParseBody(text)
		if err != nil {
			return nil, fmt.Errorf("build query: %w", err)
		}
		pq, err := rego.New(rego.ParsedQuery(body), rego.Compiler(c), rego.Store(store),
			rego.GenerateJSON(keepTerm)).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("prepare query: %w", err)
		}
		q := &query{pq: &pq, defs: list, body: body}
		q.ir.done = make(chan struct{})
		prepared[text] = q
		return q, nil
	}
	out := map[string]*plan{}
	for _, kind := range append(slices.Clone(WorkloadKinds), "") {
		var violations, mutations []*definition
		for _, d := range defs {
			if d.off(cfg.Policies[d.policy.Name]) || !d.appliesTo(kind) {
				continue
			}
			if d.rule == "mutation" {
				mutations = append(mutations, d)
			} else {
				violations = append(violations, d)
			}
		}
		p := &plan{nodeRules: nodeRules(violations)}
		for _, d := range mutations {
			p.mutationsReadNodes = p.mutationsReadNodes || d.readsNodes
		}
		var again []*definition
		for _, d := range violations {
			if p.revalidated(d) {
				again = append(again, d)
			}
		}
		var err error
		if p.violations, err = prepare(violations); err != nil {
			return nil, err
		}
		if p.mutations, err = prepare(mutations); err != nil {
			return nil, err
		}
		if p.nodeViolations, err = prepare(again); err != nil {
			return nil, err
		}
		out[kind] = p
	}
	return out, nil
}

// keepTerm hands the query's result over as the AST term it is: the
// engine reads the violations and mutations from it directly instead of
// converting the whole result to Go values first.
func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// nodeRules are the rules, per policy, whose violations may change with the
// Nodes: every rule a definition that reads the inventory reports, or all
// the policy's rules (anyRule) when such a definition may report a rule it
// does not name.
func nodeRules(defs []*definition) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, d := range defs {
		if !d.readsNodes {
			continue
		}
		rules := out[d.policy.Name]
		if rules == nil {
			rules = map[string]bool{}
			out[d.policy.Name] = rules
		}
		if d.open {
			rules[anyRule] = true
		}
		for _, id := range d.ids {
			rules[id] = true
		}
	}
	return out
}

// changesWithNodes says whether a violation of policy's rule may change
// with the Nodes: Revalidate takes it from the definitions it evaluates
// again, and keeps every other one of the earlier decision.
func (p *plan) changesWithNodes(policy, rule string) bool {
	rules := p.nodeRules[policy]
	return rules[anyRule] || rules[rule]
}

// revalidated says whether Revalidate evaluates d again: d may report a
// rule whose violations may change with the Nodes. A definition that does
// not read the inventory itself but reports such a rule too is evaluated
// again, so that no violation of that rule is lost.
func (p *plan) revalidated(d *definition) bool {
	rules := p.nodeRules[d.policy.Name]
	if len(rules) == 0 {
		return false
	}
	if rules[anyRule] || d.open {
		return true
	}
	return slices.ContainsFunc(d.ids, func(id string) bool { return rules[id] })
}

// plan is the plan for requests of kind.
func (s *set) plan(kind string) *plan {
	if p, ok := s.plans[kind]; ok {
		return p
	}
	return s.plans[""]
}

// off says whether config turns d off: its policy, or every rule it
// reports (a violation can only raise a rule that METADATA turns off by
// its own enforcement key, never one config turns off).
func (d *definition) off(pc PolicyConfig) bool {
	level := d.policy.Enforcement
	if pc.Enforcement != "" {
		level = pc.Enforcement
	}
	if level == Off {
		return true
	}
	if d.rule == "mutation" || d.open {
		return false
	}
	for _, id := range d.ids {
		if pc.Rules[id] != Off {
			return false
		}
	}
	return true
}

// appliesTo says whether d may report something for an object of kind:
// its policy's METADATA kinds include it and, for a violation rule, so do
// those of some rule it reports. An empty list of kinds means every kind,
// workload or not.
func (d *definition) appliesTo(kind string) bool {
	p := d.policy
	if d.rule == "mutation" {
		if p.MutationKinds != nil {
			return includes(p.MutationKinds, kind)
		}
		return includes(p.Kinds, kind)
	}
	if !includes(p.Kinds, kind) {
		return false
	}
	if d.open {
		return true
	}
	return slices.ContainsFunc(d.ids, func(id string) bool { return includes(p.Rules[id].Kinds, kind) })
}

func includes(kinds []string, kind string) bool {
	return kinds == nil || slices.Contains(kinds, kind)
}
