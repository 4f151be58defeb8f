// Package inventory keeps the Node facts that policies see as
// data.podgate.inventory.nodes: name, labels, taints and unschedulable,
// from a controller-runtime cache that stores nothing else of a Node.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/metrics"
)

// debounce is how long a burst of Node changes is gathered before the
// inventory is rebuilt: nodes join in batches (autoscalers, cordon of a
// pool) and one rebuild per batch is enough.
const debounce = 500 * time.Millisecond

// CacheOptions is what the manager's cache needs for Nodes: the transform
// that drops everything but the facts policies use, which keeps a 5,000
// Node inventory small (a Node's status, images and conditions are most
// of its size).
func CacheOptions() cache.ByObject {
	return cache.ByObject{Transform: Transform}
}

// Transform keeps only a Node's name, labels, taints and unschedulable.
func Transform(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil // tombstones and other types pass through
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels, ResourceVersion: n.ResourceVersion, UID: n.UID},
		Spec:       corev1.NodeSpec{Taints: n.Spec.Taints, Unschedulable: n.Spec.Unschedulable},
	}, nil
}

// Inventory feeds the engine with the Nodes of the cluster. It is a
// manager Runnable.
type Inventory struct {
	Cache  cache.Cache
	Engine *engine.Engine
	Log    logr.Logger

	ready atomic.Bool
	dirty chan struct{}
}

// Start watches Nodes until ctx ends.
func (inv *Inventory) Start(ctx context.Context) error {
	inv.dirty = make(chan struct{}, 1)
	informer, err := inv.Cache.GetInformer(ctx, &corev1.Node{})
	if err != nil {
		return fmt.Errorf("node informer: %w", err)
	}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { inv.markDirty() },
		DeleteFunc: func(any) { inv.markDirty() },
		UpdateFunc: func(old, cur any) {
			// Heartbeats change nothing policies see, but they show the
			// watch is alive: the staleness metric follows every event.
			metrics.InventoryLastEvent.SetToCurrentTime()
			if changed(old, cur) {
				inv.markDirty()
			}
		},
	}); err != nil {
		return fmt.Errorf("node event handler: %w", err)
	}
	if !inv.Cache.WaitForCacheSync(ctx) {
		return errors.New("node cache did not sync")
	}
	if err := inv.rebuild(ctx); err != nil {
		return err
	}
	inv.ready.Store(true)
	inv.Log.Info("node inventory synced")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-inv.dirty:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(debounce):
		}
		if err := inv.rebuild(ctx); err != nil {
			inv.Log.Error(err, "rebuilding the node inventory failed; the last one keeps serving")
		}
	}
}

func (inv *Inventory) markDirty() {
	metrics.InventoryLastEvent.SetToCurrentTime()
	select {
	case inv.dirty <- struct{}{}:
	default:
	}
}

// changed reports whether an update touched what policies see; status
// heartbeats do not.
func changed(old, cur any) bool {
	o, ok1 := old.(*corev1.Node)
	c, ok2 := cur.(*corev1.Node)
	if !ok1 || !ok2 {
		return true
	}
	return o.Spec.Unschedulable != c.Spec.Unschedulable ||
		!reflect.DeepEqual(o.Labels, c.Labels) || !reflect.DeepEqual(o.Spec.Taints, c.Spec.Taints)
}

func (inv *Inventory) rebuild(ctx context.Context) error {
	var list corev1.NodeList
	if err := inv.Cache.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	nodes := make(map[string]engine.Node, len(list.Items))
	for i := range list.Items {
		nodes[list.Items[i].Name] = Facts(&list.Items[i])
	}
	if err := inv.Engine.SetNodes(ctx, nodes); err != nil {
		return err
	}
	metrics.InventoryNodes.Set(float64(len(nodes)))
	return nil
}

// Facts converts a Node into what the engine keeps of it.
func Facts(n *corev1.Node) engine.Node {
	taints := make([]engine.Taint, len(n.Spec.Taints))
	for i, t := range n.Spec.Taints {
		taints[i] = engine.Taint{Key: t.Key, Value: t.Value, Effect: string(t.Effect)}
	}
	return engine.Node{Labels: n.Labels, Taints: taints, Unschedulable: n.Spec.Unschedulable}
}

// ReadyCheck is a readyz check: ready once the inventory has synced.
func (inv *Inventory) ReadyCheck(*http.Request) error {
	if !inv.ready.Load() {
		return errors.New("node inventory has not synced yet")
	}
	return nil
}

// RESTMapper is the manager's MapperProvider: it knows Nodes without asking
// the API server, so the webhook starts while the API server is unreachable
// (it stays unready until the inventory syncs, instead of exiting into a
// crash loop); every other kind is discovered lazily as usual.
func RESTMapper(c *rest.Config, hc *http.Client) (meta.RESTMapper, error) {
	dynamic, err := apiutil.NewDynamicRESTMapper(c, hc)
	if err != nil {
		return nil, err
	}
	static := meta.NewDefaultRESTMapper(nil)
	static.Add(corev1.SchemeGroupVersion.WithKind("Node"), meta.RESTScopeRoot)
	return staticFirst{RESTMapper: dynamic, static: static}, nil
}

type staticFirst struct {
	meta.RESTMapper
	static meta.RESTMapper
}

func (m staticFirst) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	if r, err := m.static.RESTMapping(gk, versions...); err == nil {
		return r, nil
	}
	return m.RESTMapper.RESTMapping(gk, versions...)
}

func (m staticFirst) RESTMappings(gk schema.GroupKind, versions ...string) ([]*meta.RESTMapping, error) {
	if r, err := m.static.RESTMappings(gk, versions...); err == nil {
		return r, nil
	}
	return m.RESTMapper.RESTMappings(gk, versions...)
}
