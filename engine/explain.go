package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// explainQuery is what Explain evaluates: the Rego library shared with the
// policies, so explain and the placement and tolerations policies cannot
// disagree on which nodes fit.
const explainQuery = "x := data.podgate.lib.explain.result"

// Placement is how the pods of one object fit the nodes of the inventory,
// as data.podgate.lib.explain computes it with the policies' node fit.
type Placement struct {
	// Kind is the object's kind; Replicas its spec.replicas (1 when it
	// has none).
	Kind     string `json:"kind"`
	Replicas int64  `json:"replicas"`
	// NodeName is the pod spec's nodeName: the scheduler is bypassed.
	NodeName string `json:"nodeName,omitempty"`
	// Nodes are every node of the inventory, by name.
	Nodes []NodeFit `json:"nodes"`
}

// NodeFit is one node's verdict for the pods of an object.
type NodeFit struct {
	Name string `json:"name"`
	// Fits says the scheduler's filters that podgate models let the pods
	// onto the node.
	Fits bool `json:"fits"`
	// Reasons are the failing filters, in the default profile's order:
	// "TaintToleration: untolerated taint dedicated=gpu:NoSchedule". The
	// first is the one kube-scheduler reports.
	Reasons []string `json:"reasons"`
	// Scores, Score and Rank are set when the pods fit: the
	// TaintToleration and NodeAffinity scores, their weighted sum, and its
	// rank among the nodes that fit (1 is the best; ties share a rank).
	Scores []PluginScore `json:"scores,omitempty"`
	Score  int64         `json:"score"`
	Rank   int           `json:"rank,omitempty"`
}

// PluginScore is one score plugin's verdict on a node.
type PluginScore struct {
	Plugin string `json:"plugin"`
	// Raw is the plugin's Score: intolerable PreferNoSchedule taints, or
	// the matched preferred terms' weights.
	Raw int64 `json:"raw"`
	// Normalized is Raw after NormalizeScore, 0 to 100.
	Normalized int64 `json:"normalized"`
	// Weight is the plugin's weight in the default profile.
	Weight int64 `json:"weight"`
}

// Weighted is the plugin's share of the node's score.
func (s PluginScore) Weighted() int64 { return s.Normalized * s.Weight }

// ErrNoPodSpec is returned by Explain for an object without a pod spec.
var ErrNoPodSpec = errors.New("the object has no pod spec")

// Explain says how the pods of req's object fit each node of the
// inventory. It ignores the scope rules (excluded namespaces, controlled
// pods): where a pod can run does not depend on them.
func (e *Engine) Explain(ctx context.Context, req *Request) (*Placement, error) {
	s := e.current.Load()
	if s == nil {
		return nil, ErrNotLoaded
	}
	s.explainOnce.Do(func() {
		s.prepareMu.Lock()
		defer s.prepareMu.Unlock()
		body := ast.MustParseBody(explainQuery)
		pq, err := rego.New(rego.ParsedQuery(body), rego.Compiler(s.compiler), rego.Store(s.store)).PrepareForEval(ctx)
		if err != nil {
			s.explainErr = fmt.Errorf("prepare explain query: %w", err)
			return
		}
		s.explain = &pq
	})
	if s.explainErr != nil {
		return nil, s.explainErr
	}
	input, _, err := req.input()
	if err != nil {
		return nil, err
	}
	rs, err := s.explain.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, fmt.Errorf("evaluate explain: %w", err)
	}
	if len(rs) == 0 {
		return nil, ErrNoPodSpec
	}
	raw, err := json.Marshal(rs[0].Bindings["x"])
	if err != nil {
		return nil, fmt.Errorf("explain result: %w", err)
	}
	var p Placement
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("explain result: %w", err)
	}
	return &p, nil
}
