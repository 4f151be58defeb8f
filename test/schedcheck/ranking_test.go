package schedcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/explain"
)

const (
	// rankingLayouts x rankingPodsPerLayout pods, each created alone.
	rankingLayouts       = 5
	rankingPodsPerLayout = 64
	rankingNodes         = 6
	// minSingledOut is how many of the bound pods must have had fewer
	// top-ranked nodes than nodes they fit: below that the test would say
	// little about the scores.
	minSingledOut = 100
	// alonePoll is how often the state of the one pod is read: the
	// scheduler binds in milliseconds, and a pod takes a few polls.
	alonePoll = 10 * time.Millisecond
)

// preferKeys are the taint keys of the ranking layouts; levelKey has
// numeric values for Gt and Lt.
var preferKeys = []string{"spot", "preemptible", "team", "dedicated", levelKey}

// ranked is one pod: what explain said before it was created, and what
// kube-scheduler did.
type ranked struct {
	name    string
	spec    corev1.PodSpec
	x       *explain.Explanation
	bound   string // the node; "" when the scheduler found none
	message string // the scheduler's Unschedulable message
}

// TestExplainRanksTheNodeKubeSchedulerBindsFirst creates each pod alone
// (the one before is gone), over Nodes of equal capacity: the resource,
// image, spread and inter-pod scores then tie on every node, and the
// scheduler's choice comes down to TaintToleration and NodeAffinity,
// which explain computes. The bound node must be one of explain's
// top-ranked nodes, and explain must find a node exactly when the
// scheduler does.
func TestExplainRanksTheNodeKubeSchedulerBindsFirst(t *testing.T) {
	if bed == nil {
		t.Skip("schedcheck: no cluster in -short mode")
	}
	seed := seedFromEnv(t)
	r := rand.New(rand.NewPCG(seed, seed+1))
	createNamespace(t)
	var all []ranked
	for l := range rankingLayouts {
		nodes := rankingLayout(r, fmt.Sprintf("r%d-", l))
		all = append(all, rankLayout(t, r, fmt.Sprintf("r%d", l), nodes)...)
	}
	fits, top, singled, unique := 0, 0, 0, 0
	for _, res := range all {
		fitting := 0
		for _, n := range res.x.Nodes {
			if n.Fits {
				fitting++
			}
		}
		best := res.x.TopRanked()
		switch {
		case res.x.Fits() != (res.bound != ""):
			t.Errorf("pod %s: explain fits=%v, kube-scheduler bound=%q (%s)\n%s", res.name, res.x.Fits(), res.bound, res.message, describe(res))
			continue
		case res.bound != "" && !slices.Contains(best, res.bound):
			t.Errorf("pod %s: kube-scheduler bound %s, explain ranks first %v\n%s", res.name, res.bound, best, describe(res))
			continue
		}
		fits++
		if res.bound == "" {
			continue
		}
		top++
		if len(best) < fitting {
			singled++
		}
		if len(best) == 1 && fitting > 1 {
			unique++
		}
	}
	bound := 0
	for _, res := range all {
		if res.bound != "" {
			bound++
		}
	}
	report := fmt.Sprintf("explain agreed with kube-scheduler on the fit of %d of %d pods (%.1f%%); of the %d it bound, the node was among explain's top-ranked for %d (%.1f%%), "+
		"%d times the scores ranked fewer nodes first than fit (%d times a single one); it found no node for %d",
		fits, len(all), 100*float64(fits)/float64(len(all)), bound, top, 100*float64(top)/float64(max(bound, 1)), singled, unique, len(all)-bound)
	t.Log(report)
	fmt.Fprintln(os.Stderr, "schedcheck: "+report)
	if singled < minSingledOut {
		t.Errorf("only %d pods had their scores decide between the nodes they fit, want %d: the generator no longer tests the ranking", singled, minSingledOut)
	}
}

// rankLayout creates the layout's Nodes, then each pod alone, and deletes
// the Nodes.
func rankLayout(t *testing.T, r *rand.Rand, layout string, nodes []*corev1.Node) []ranked {
	t.Helper()
	if err := bed.CreateNodes(t.Context(), nodes); err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	e := podgateOn(t, names)
	out := make([]ranked, 0, rankingPodsPerLayout)
	for i := range rankingPodsPerLayout {
		res := ranked{name: fmt.Sprintf("%s-%d", layout, i), spec: rankingPodSpec(r, names)}
		runAlone(t, e, &res)
		out = append(out, res)
	}
	cleanUp(t, nodes)
	return out
}

// runAlone asks explain about the pod, creates it, waits for the
// scheduler's verdict, deletes it and waits until it is gone, so the next
// pod finds every node empty.
func runAlone(t *testing.T, e *engine.Engine, res *ranked) {
	t.Helper()
	ctx := t.Context()
	pod := newPod(res.name, res.spec)
	req, err := request(pod, podKind, res.name)
	if err != nil {
		t.Fatal(err)
	}
	if res.x, err = explain.Explain(ctx, e, req); err != nil {
		t.Fatalf("explain pod %s: %v", res.name, err)
	}
	if err := bed.Client().Create(ctx, pod); err != nil {
		t.Fatalf("create pod %s: %v", res.name, err)
	}
	key := types.NamespacedName{Namespace: namespace, Name: res.name}
	err = wait.PollUntilContextTimeout(ctx, alonePoll, decideTimeout, true, func(ctx context.Context) (bool, error) {
		var p corev1.Pod
		if err := bed.Client().Get(ctx, key, &p); err != nil {
			return false, err
		}
		bound, msg, ok := decision(&p)
		if bound {
			res.bound = p.Spec.NodeName
		}
		res.message = msg
		return ok, nil
	})
	if err != nil {
		t.Fatalf("wait for the scheduler to decide on pod %s: %v", res.name, err)
	}
	if err := bed.Client().Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatalf("delete pod %s: %v", res.name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, alonePoll, decideTimeout, true, func(ctx context.Context) (bool, error) {
		err := bed.Client().Get(ctx, key, &corev1.Pod{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Fatalf("wait for pod %s to be gone: %v", res.name, err)
	}
}

// rankingLayout is rankingNodes Nodes with 0 to 3 taints each, most of
// them PreferNoSchedule, some labels, and one in twelve cordoned.
func rankingLayout(r *rand.Rand, prefix string) []*corev1.Node {
	effects := []corev1.TaintEffect{prefer, prefer, prefer, prefer, noSchedule, noSchedule, noExecute}
	newTaint := func() corev1.Taint {
		t := taint(pick(r, preferKeys), pick(r, taintValues), pick(r, effects))
		if t.Key == levelKey {
			t.Value = pick(r, levelValues)
		}
		return t
	}
	var nodes []*corev1.Node
	for i := range rankingNodes {
		nodes = append(nodes, randomNode(r, fmt.Sprintf("%sn%d", prefix, i), 4, 12, newTaint))
	}
	return nodes
}

// rankingPodSpec is a pod spec with 0 to 3 tolerations, 0 to 3 preferred
// node affinity terms of weights 1 to 100, one time in four a required
// term, one time in eight a nodeSelector.
func rankingPodSpec(r *rand.Rand, nodeNames []string) corev1.PodSpec {
	var spec corev1.PodSpec
	for range r.IntN(4) {
		spec.Tolerations = append(spec.Tolerations, rankingToleration(r))
	}
	var na corev1.NodeAffinity
	for range r.IntN(4) {
		term := corev1.PreferredSchedulingTerm{Weight: int32(1 + r.IntN(100)), Preference: randomTerm(r, nodeNames)}
		na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution, term)
	}
	if r.IntN(4) == 0 {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{randomTerm(r, nodeNames)}}
	}
	if len(na.PreferredDuringSchedulingIgnoredDuringExecution) > 0 || na.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		spec.Affinity = &corev1.Affinity{NodeAffinity: &na}
	}
	if r.IntN(8) == 0 {
		k := pick(r, labelKeys)
		spec.NodeSelector = map[string]string{k: pick(r, labelValues[k])}
	}
	return spec
}

// rankingToleration tolerates a key of the layouts, for one effect or
// every effect; the numeric level with Gt or Lt.
func rankingToleration(r *rand.Rand) corev1.Toleration {
	t := corev1.Toleration{Key: pick(r, preferKeys)}
	switch {
	case t.Key == levelKey:
		t.Operator, t.Value = pick(r, []corev1.TolerationOperator{corev1.TolerationOpGt, corev1.TolerationOpLt}), pick(r, levelTolerations)
	case r.IntN(2) == 0:
		t.Operator = corev1.TolerationOpExists
	default:
		t.Operator, t.Value = corev1.TolerationOpEqual, pick(r, taintValues)
	}
	if r.IntN(3) > 0 {
		t.Effect = pick(r, []corev1.TaintEffect{prefer, prefer, noSchedule})
	}
	return t
}

// describe is a failed pod's spec, explain's table and the layout.
func describe(res ranked) string {
	spec, _ := json.Marshal(res.spec)
	var b strings.Builder
	fmt.Fprintf(&b, "  spec: %s\n  explain: %s\n", spec, res.x.Answer)
	for _, n := range res.x.Nodes {
		if n.Fits {
			fmt.Fprintf(&b, "    %s rank %d score %d %+v\n", n.Name, n.Rank, *n.Score, n.Scores)
		} else {
			fmt.Fprintf(&b, "    %s: %s\n", n.Name, strings.Join(n.Reasons, "; "))
		}
	}
	var nodes corev1.NodeList
	if err := bed.Client().List(context.Background(), &nodes); err == nil {
		var layout []*corev1.Node
		for i := range nodes.Items {
			layout = append(layout, &nodes.Items[i])
		}
		fmt.Fprintf(&b, "  nodes: %s", describeLayout(layout))
	}
	return b.String()
}
