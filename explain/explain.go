// Package explain answers, for one workload or Pod, the questions a
// Pending pod raises: which nodes of the cluster its pods fit and, for the
// others, which of kube-scheduler's filters rejects them and why; and how
// the scheduler's default TaintToleration (weight 3) and NodeAffinity
// (weight 2) scores rank the nodes that fit. The node fit and the scores
// come from the engine (engine.Explain), which evaluates the same Rego
// library as the placement and tolerations policies; this package turns
// them into a one-sentence answer, a table and JSON.
package explain

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/podgate/podgate/engine"
)

// NotModelled are the plugins of kube-scheduler's default profile whose
// filters or scores podgate does not compute: they depend on running
// pods, free capacity, images or volumes, which the Node inventory does
// not hold. The ranking leaves them out.
var NotModelled = []Plugin{
	{"NodeResourcesFit", "filter and score: requests against free capacity"},
	{"NodeResourcesBalancedAllocation", "score: balance of requested resources"},
	{"ImageLocality", "score: images already on the node"},
	{"InterPodAffinity", "filter and score: pod affinity and anti-affinity against running pods"},
	{"PodTopologySpread", "filter and score: skew against running pods; a missing topology key is checked"},
	{"NodePorts", "filter: host ports in use"},
	{"VolumeBinding, VolumeRestrictions, VolumeZone, NodeVolumeLimits", "filters: volumes"},
}

// Plugin names a scheduler plugin and what it looks at.
type Plugin struct {
	Name string `json:"name"`
	What string `json:"what"`
}

// Explanation is the answer for one object.
type Explanation struct {
	Source string `json:"source,omitempty"`
	Index  int    `json:"index"`
	// Object names it as messages do: "Deployment default/web".
	Object string `json:"object"`
	// Answer says in a sentence where kube-scheduler puts the pods, or
	// why it puts them nowhere.
	Answer string `json:"answer"`
	// Nodes are every node: those the pods fit first, best ranked first,
	// then the others by name.
	Nodes []Node `json:"nodes"`
	// Findings are podgate's placement and tolerations warnings and
	// denials for the object, as admission would print them.
	Findings []string `json:"findings,omitempty"`
	// NotModelled are the plugins the ranking leaves out.
	NotModelled []Plugin `json:"notModelled"`
}

// Node is one node's verdict.
type Node struct {
	Name    string   `json:"name"`
	Fits    bool     `json:"fits"`
	Reasons []string `json:"reasons"`
	// Score is the weighted sum of the modelled scores, nil when the pods
	// do not fit; Rank its rank among the nodes that fit (ties share it).
	Score  *int64  `json:"score"`
	Rank   int     `json:"rank,omitempty"`
	Scores []Score `json:"scores,omitempty"`
}

// Score is one plugin's share of a node's score.
type Score struct {
	Plugin     string `json:"plugin"`
	Raw        int64  `json:"raw"`
	Normalized int64  `json:"normalized"`
	Weight     int64  `json:"weight"`
	Weighted   int64  `json:"weighted"`
}

// Explain asks the engine how req's object fits the inventory and what
// podgate's placement and tolerations policies say about it.
func Explain(ctx context.Context, eng *engine.Engine, req *engine.Request) (*Explanation, error) {
	p, err := eng.Explain(ctx, req)
	if err != nil {
		return nil, err
	}
	if len(p.Nodes) == 0 {
		return nil, fmt.Errorf("the Node inventory is empty: there is nothing to explain")
	}
	d := &engine.Decision{Object: req.Describe()}
	vs, err := eng.Violations(ctx, req)
	if err != nil {
		return nil, err
	}
	x := &Explanation{Object: d.Object, Nodes: nodes(p), NotModelled: NotModelled}
	for _, v := range vs {
		if v.Policy == "placement" || v.Policy == "tolerations" {
			x.Findings = append(x.Findings, string(v.Enforcement)+" "+d.Line(v))
		}
	}
	x.Answer = answer(p, x.Nodes)
	return x, nil
}

// nodes orders the verdicts: the nodes that fit by rank, then the others,
// each group by name.
func nodes(p *engine.Placement) []Node {
	out := make([]Node, 0, len(p.Nodes))
	for _, n := range p.Nodes {
		node := Node{Name: n.Name, Fits: n.Fits, Reasons: n.Reasons, Rank: n.Rank}
		if node.Reasons == nil {
			node.Reasons = []string{}
		}
		if n.Fits {
			score := n.Score
			node.Score = &score
			for _, s := range n.Scores {
				node.Scores = append(node.Scores, Score{s.Plugin, s.Raw, s.Normalized, s.Weight, s.Weighted()})
			}
		}
		out = append(out, node)
	}
	slices.SortStableFunc(out, func(a, b Node) int {
		if a.Fits != b.Fits {
			if a.Fits {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Rank, b.Rank), strings.Compare(a.Name, b.Name))
	})
	return out
}

// TopRanked are the names of the nodes that share the best rank.
func (x *Explanation) TopRanked() []string {
	var top []string
	for _, n := range x.Nodes {
		if n.Fits && n.Rank == 1 {
			top = append(top, n.Name)
		}
	}
	return top
}

// Fits says whether the pods fit some node.
func (x *Explanation) Fits() bool { return len(x.TopRanked()) > 0 }
