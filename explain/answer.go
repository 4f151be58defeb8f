package explain

import (
	"fmt"
	"slices"
	"strings"

	"github.com/podgate/podgate/engine"
)

// schedulerReasons are the FitError reasons kube-scheduler gives for each
// filter podgate models (the plugins' ErrReason constants), so the answer
// reads like the FailedScheduling event of `kubectl describe pod`.
var schedulerReasons = map[string]string{
	"NodeUnschedulable": "node(s) were unschedulable",
	"NodeName":          "node(s) didn't match the requested node name",
	"TaintToleration":   "node(s) had untolerated taint(s)",
	"NodeAffinity":      "node(s) didn't match Pod's node affinity/selector",
	"PodTopologySpread": "node(s) didn't match pod topology spread constraints (missing required label)",
}

// maxNamed is how many nodes a sentence names before it says "and N more".
const maxNamed = 3

// answer says in one sentence where kube-scheduler puts the pods, or why
// it puts them nowhere.
func answer(p *engine.Placement, nodes []Node) string {
	pods := "this pod"
	if p.Kind != "Pod" {
		pods = "its pods"
	}
	var fitting []Node
	for _, n := range nodes {
		if n.Fits {
			fitting = append(fitting, n)
		}
	}
	switch {
	case p.NodeName != "":
		return boundAnswer(p, nodes, pods)
	case len(fitting) == 0:
		return pendingAnswer(nodes, pods)
	case p.Kind == "DaemonSet":
		return fmt.Sprintf("The DaemonSet runs one pod on each of the %d of %d nodes its pods fit: %s.", len(fitting), len(nodes), names(fitting))
	case len(fitting) == 1:
		return fmt.Sprintf("Only %s of the %d nodes can run %s, so kube-scheduler puts %s there.", fitting[0].Name, len(nodes), pods, them(pods))
	}
	return rankedAnswer(fitting, len(nodes), pods)
}

func boundAnswer(p *engine.Placement, nodes []Node, pods string) string {
	i := slices.IndexFunc(nodes, func(n Node) bool { return n.Name == p.NodeName })
	switch {
	case i < 0:
		return fmt.Sprintf("The pod spec names node %s (nodeName), which is none of the %d nodes, so %s never run.", p.NodeName, len(nodes), pods)
	case nodes[i].Fits:
		return fmt.Sprintf("The pod spec names node %s (nodeName): kube-scheduler is bypassed and the kubelet on %s runs %s.", p.NodeName, p.NodeName, them(pods))
	}
	return fmt.Sprintf("The pod spec names node %s (nodeName): kube-scheduler is bypassed, and the kubelet on %s rejects %s (%s).",
		p.NodeName, p.NodeName, them(pods), strings.Join(nodes[i].Reasons, "; "))
}

// pendingAnswer counts the nodes by their first failing filter, as
// kube-scheduler's FailedScheduling event does, and names the nodes one
// change away from taking the pods.
func pendingAnswer(nodes []Node, pods string) string {
	counts := map[string]int{}
	fewest := 0
	for _, n := range nodes {
		plugin, _, _ := strings.Cut(n.Reasons[0], ":")
		counts[schedulerReasons[plugin]]++
		if fewest == 0 || len(n.Reasons) < fewest {
			fewest = len(n.Reasons)
		}
	}
	var histogram []string
	for reason, n := range counts {
		histogram = append(histogram, fmt.Sprintf("%d %s", n, reason))
	}
	slices.Sort(histogram)
	var nearest []string
	for _, n := range nodes {
		if len(n.Reasons) == fewest {
			nearest = append(nearest, fmt.Sprintf("%s (%s)", n.Name, strings.Join(n.Reasons, "; ")))
		}
	}
	s := fmt.Sprintf("No node can run %s, so %s Pending (kube-scheduler: 0/%d nodes are available: %s)",
		pods, stays(pods), len(nodes), strings.Join(histogram, ", "))
	if fewest == 1 {
		return s + "; one change would let " + them(pods) + " onto " + orList(nearest) + "."
	}
	return fmt.Sprintf("%s; the nearest, each failing %d filters: %s.", s, fewest, orList(nearest))
}

// rankedAnswer names the best ranked nodes and says what the ranking
// leaves out.
func rankedAnswer(fitting []Node, total int, pods string) string {
	var top []Node
	for _, n := range fitting {
		if n.Rank == 1 {
			top = append(top, n)
		}
	}
	if len(top) == 1 {
		next := fitting[1]
		return fmt.Sprintf("Of the %d of %d nodes that can run %s, kube-scheduler prefers %s on taints and node affinity (%d against %d for %s); the scores this does not model (resources, images, running pods) can still change its choice.",
			len(fitting), total, pods, top[0].Name, *top[0].Score, *next.Score, next.Name)
	}
	return fmt.Sprintf("Of the %d of %d nodes that can run %s, %s tie on taints and node affinity (%d); kube-scheduler picks among them on the scores this does not model (resources, images, running pods), else at random.",
		len(fitting), total, pods, names(top), *top[0].Score)
}

func names(nodes []Node) string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return andList(out)
}

func them(pods string) string {
	if pods == "this pod" {
		return "it"
	}
	return "them"
}

func stays(pods string) string {
	if pods == "this pod" {
		return "it stays"
	}
	return "they stay"
}

func andList(items []string) string { return list(items, "and") }

func orList(items []string) string { return list(items, "or") }

// list joins items as "a", "a and b", "a, b and c", naming at most
// maxNamed of them.
func list(items []string, conj string) string {
	if len(items) > maxNamed {
		items = append(slices.Clone(items[:maxNamed]), fmt.Sprintf("%d more", len(items)-maxNamed))
	}
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " " + conj + " " + items[len(items)-1]
}
