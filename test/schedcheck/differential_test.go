package schedcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/inventory"
	"github.com/podgate/podgate/policies"
)

const (
	namespace = "schedcheck"
	// defaultSeed makes the random cases the same on every run.
	defaultSeed = 20260801
	// randomPerLayout random pods per layout, on top of the table.
	randomPerLayout = 100
	// decideTimeout bounds the wait for the scheduler to bind or give up
	// on every pod of a layout; it takes a few seconds.
	decideTimeout = 3 * time.Minute
)

// result is one pod's two verdicts.
type result struct {
	layout, name string
	spec         corev1.PodSpec
	podgate      bool   // podgate: some node runs it
	scheduler    bool   // the scheduler bound it
	message      string // the scheduler's FailedScheduling message, or the node
}

func TestPodgateSchedulablePredictsWhatKubeSchedulerDoes(t *testing.T) {
	if bed == nil {
		t.Skip("schedcheck: no cluster in -short mode")
	}
	seed := seedFromEnv(t)
	r := rand.New(rand.NewPCG(seed, seed))
	createNamespace(t)
	layouts := map[string][]*corev1.Node{
		"a-notes": notesLayout("a-"), "b-tainted": taintedLayout("b-"),
		"c-random": randomLayout(r, "c-"), "d-random": randomLayout(r, "d-"),
	}
	var all []result
	for _, name := range []string{"a-notes", "b-tainted", "c-random", "d-random"} {
		all = append(all, runLayout(t, r, name, layouts[name])...)
	}
	agree, bound := 0, 0
	for _, res := range all {
		if res.scheduler {
			bound++
		}
		if res.podgate == res.scheduler {
			agree++
			continue
		}
		spec, _ := json.Marshal(res.spec)
		t.Errorf("disagreement on layout %s, pod %s: podgate schedulable=%v, kube-scheduler bound=%v (%s)\n  spec: %s\n  nodes: %s",
			res.layout, res.name, res.podgate, res.scheduler, res.message, spec, describeLayout(layouts[res.layout]))
	}
	report := fmt.Sprintf("podgate's schedulable agreed with kube-scheduler on %d of %d pods (%.1f%%); the scheduler bound %d and found no node for %d",
		agree, len(all), 100*float64(agree)/float64(len(all)), bound, len(all)-bound)
	t.Log(report)
	fmt.Fprintln(os.Stderr, "schedcheck: "+report)
}

// seedFromEnv is the random generators' seed: PODGATE_SCHEDCHECK_SEED, or
// defaultSeed.
func seedFromEnv(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(defaultSeed)
	if s := os.Getenv("PODGATE_SCHEDCHECK_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("PODGATE_SCHEDCHECK_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (PODGATE_SCHEDCHECK_SEED=%d reproduces this run)", seed, seed)
	return seed
}

// runLayout creates the layout's Nodes, one pod per table case and
// randomPerLayout random pods, waits for the scheduler's verdicts, then
// deletes the pods and the Nodes.
func runLayout(t *testing.T, r *rand.Rand, layout string, nodes []*corev1.Node) []result {
	t.Helper()
	ctx := t.Context()
	if err := bed.CreateNodes(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	e := podgateOn(t, names)
	var results []result
	for i, c := range table {
		results = append(results, result{layout: layout, name: fmt.Sprintf("%s-table-%d", layout, i), spec: c.spec(names)})
	}
	for i := range randomPerLayout {
		results = append(results, result{layout: layout, name: fmt.Sprintf("%s-random-%d", layout, i), spec: randomPodSpec(r, names)})
	}
	createPods(t, e, results)
	waitDecided(t, results)
	cleanUp(t, nodes)
	return results
}

// podgateOn loads the built-in policies, with podgateConfig, and the live
// Nodes as inventory.
func podgateOn(t *testing.T, names []string) *engine.Engine {
	t.Helper()
	nodes := map[string]engine.Node{}
	for _, name := range names {
		var n corev1.Node
		if err := bed.Client().Get(t.Context(), types.NamespacedName{Name: name}, &n); err != nil {
			t.Fatalf("get node %s: %v", name, err)
		}
		nodes[name] = inventory.Facts(&n)
	}
	config := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(config, []byte(podgateConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	e := engine.New()
	if err := e.Load(t.Context(), engine.Sources{Builtin: policies.FS, ConfigFile: config}); err != nil {
		t.Fatalf("load policies: %v", err)
	}
	if err := e.SetNodes(t.Context(), nodes); err != nil {
		t.Fatalf("set nodes: %v", err)
	}
	return e
}

// createPods asks podgate about each pod and creates it, eight at a time.
func createPods(t *testing.T, e *engine.Engine, results []result) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(results))
	sem := make(chan struct{}, 8)
	for i := range results {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- createPod(t.Context(), e, &results[i])
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// newPod is a pod of spec that requests nothing, in namespace.
func newPod(name string, spec corev1.PodSpec) *corev1.Pod {
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       spec,
	}
	pod.Spec.Containers = []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}
	return pod
}

// request is the admission request for creating obj, as podgate sees it.
func request(obj any, kind engine.GroupVersionKind, name string) (*engine.Request, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("marshal %s %s: %w", kind.Kind, name, err)
	}
	return &engine.Request{Kind: kind, Namespace: namespace, Name: name, Operation: "CREATE", Object: raw}, nil
}

var podKind = engine.GroupVersionKind{Version: "v1", Kind: "Pod"}

func createPod(ctx context.Context, e *engine.Engine, res *result) error {
	pod := newPod(res.name, res.spec)
	req, err := request(pod, podKind, res.name)
	if err != nil {
		return err
	}
	vs, err := e.Violations(ctx, req)
	if err != nil {
		return fmt.Errorf("podgate on pod %s: %w", res.name, err)
	}
	res.podgate = true
	for _, v := range vs {
		if v.Policy == "tolerations" && v.Rule == "schedulable" {
			res.podgate = false
		}
	}
	if err := bed.Client().Create(ctx, pod); err != nil {
		return fmt.Errorf("create pod %s: %w", res.name, err)
	}
	return nil
}

// waitDecided waits until the scheduler bound every pod or marked it
// Unschedulable, and records which.
func waitDecided(t *testing.T, results []result) {
	t.Helper()
	byName := map[string]*result{}
	for i := range results {
		byName[results[i].name] = &results[i]
	}
	var undecided int
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, decideTimeout, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := bed.Client().List(ctx, &pods, client.InNamespace(namespace)); err != nil {
			return false, err
		}
		undecided = len(results)
		for _, p := range pods.Items {
			res := byName[p.Name]
			if res == nil {
				continue
			}
			if bound, msg, ok := decision(&p); ok {
				res.scheduler, res.message = bound, msg
				undecided--
			}
		}
		return undecided == 0, nil
	})
	if err != nil {
		t.Fatalf("wait for the scheduler to decide on %d pods (%d undecided): %v", len(results), undecided, err)
	}
}

// decision: bound to a node, or found unschedulable, or not decided yet.
func decision(p *corev1.Pod) (bound bool, message string, decided bool) {
	if p.Spec.NodeName != "" {
		return true, "bound to " + p.Spec.NodeName, true
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return false, c.Message, true
		}
	}
	return false, "", false
}

// createNamespace creates the tests' namespace, once, and waits for its
// default ServiceAccount.
func createNamespace(t *testing.T) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := bed.Client().Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace: %v", err)
	}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var sa corev1.ServiceAccount
		return bed.Client().Get(ctx, types.NamespacedName{Namespace: namespace, Name: "default"}, &sa) == nil, nil
	})
	if err != nil {
		t.Fatalf("wait for ServiceAccount %s/default: %v", namespace, err)
	}
}

// cleanUp deletes every pod (at once: kwok finishes the bound ones) and
// waits until they are gone, then deletes the Nodes, so the next layout
// starts from an empty cluster.
func cleanUp(t *testing.T, nodes []*corev1.Node) {
	t.Helper()
	ctx := t.Context()
	if err := bed.Client().DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(namespace), client.GracePeriodSeconds(0)); err != nil {
		t.Fatalf("delete pods: %v", err)
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, decideTimeout, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		err := bed.Client().List(ctx, &pods, client.InNamespace(namespace))
		return err == nil && len(pods.Items) == 0, err
	})
	if err != nil {
		t.Fatalf("wait for the pods to be gone: %v", err)
	}
	for _, n := range nodes {
		if err := bed.Client().Delete(ctx, n); err != nil {
			t.Fatalf("delete node %s: %v", n.Name, err)
		}
	}
}

// describeLayout is one line per node: name, labels, taints, cordoned.
func describeLayout(nodes []*corev1.Node) string {
	var lines []string
	for _, n := range nodes {
		var taints []string
		for _, t := range n.Spec.Taints {
			taints = append(taints, t.ToString())
		}
		lines = append(lines, fmt.Sprintf("%s labels=%v taints=%v cordoned=%v", n.Name, n.Labels, taints, n.Spec.Unschedulable))
	}
	return strings.Join(lines, "\n    ")
}
