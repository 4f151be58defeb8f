package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// KwokAnnotation marks the Nodes kwok manages in a simulated cluster:
	// it keeps them Ready and runs the Pods bound to them.
	KwokAnnotation = "kwok.x-k8s.io/node"
	kwokSelector   = KwokAnnotation + "=fake"
	// nodesReadyTimeout bounds the wait for new Nodes to be Ready and rid
	// of node.kubernetes.io/not-ready: kwok reports Ready at once and the
	// node lifecycle controller removes the taint on its next pass (5s).
	nodesReadyTimeout = 2 * time.Minute
	// controllersTimeout bounds the wait for the controller-manager to
	// create the "default" ServiceAccount Pods need.
	controllersTimeout = 2 * time.Minute
)

// simulatedBinaries are the build.sh targets a simulated cluster needs on
// top of the default ones.
var simulatedBinaries = []string{"controller-manager", "scheduler", "kwok"}

// startControllers starts kube-controller-manager, kube-scheduler and kwok
// against the running API server. The controller-manager runs as a real
// cluster's does (kubeadm's way): as system:kube-controller-manager, with
// --use-service-account-credentials, so each controller writes as its own
// service account in kube-system (the ReplicaSet controller's Pods come
// from system:serviceaccount:kube-system:replicaset-controller). That is
// what podgate's controller-write matchCondition and engine.Skip trust;
// scheduler and kwok run as the admin user.
func (c *Cluster) startControllers(ctx context.Context) error {
	certDir := filepath.Join(c.dir, "kube-apiserver")
	rootCA, err := c.writeFile("apiserver-ca.crt", c.config.CAData)
	if err != nil {
		return err
	}
	kubeconfig, err := c.userKubeconfig("kube-controller-manager", "system:kube-controller-manager")
	if err != nil {
		return err
	}
	// Every controller but nodeipam, which wants a cluster CIDR and has
	// nothing to do here: the node lifecycle controller must run, as only
	// it removes node.kubernetes.io/not-ready from a Node that turned Ready.
	if err := c.startProcess("kube-controller-manager", c.binPath("kube-controller-manager"), c.withGates(
		"--kubeconfig", kubeconfig, "--use-service-account-credentials", "--controllers", "*,-nodeipam", "--leader-elect=false",
		"--secure-port=0", "--service-account-private-key-file", filepath.Join(certDir, "sa-signer.key"),
		"--root-ca-file", rootCA, "--node-monitor-period=1s")...); err != nil {
		return err
	}
	if err := c.startProcess("kube-scheduler", c.binPath("kube-scheduler"), c.withGates(
		"--kubeconfig", c.kubeconfig, "--leader-elect=false", "--secure-port=0")...); err != nil {
		return err
	}
	stages, err := filepath.Glob(filepath.Join(c.binPath("kwok-stages"), "*.yaml"))
	if err != nil || len(stages) == 0 {
		return fmt.Errorf("kwok stage configs in %s: none found (%v)", c.binPath("kwok-stages"), err)
	}
	args := []string{"--kubeconfig", c.kubeconfig, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector", kwokSelector}
	for _, s := range stages {
		args = append(args, "--config", s)
	}
	if err := c.startProcess("kwok", c.binPath("kwok"), args...); err != nil {
		return err
	}
	return c.waitDefaultServiceAccount(ctx)
}

// withGates adds --feature-gates (Options.FeatureGates) to a component's
// arguments.
func (c *Cluster) withGates(args ...string) []string {
	if c.opts.FeatureGates == "" {
		return args
	}
	return append(args, "--feature-gates", c.opts.FeatureGates)
}

// waitDefaultServiceAccount waits for the controller-manager to create the
// ServiceAccount "default" in "default": without it Pods are refused.
func (c *Cluster) waitDefaultServiceAccount(ctx context.Context) error {
	var sa corev1.ServiceAccount
	err := wait.PollUntilContextTimeout(ctx, pollInterval, controllersTimeout, true, func(ctx context.Context) (bool, error) {
		if err := c.controllersRunning(); err != nil {
			return false, err
		}
		err := c.client.Get(ctx, types.NamespacedName{Namespace: "default", Name: "default"}, &sa)
		return err == nil, client.IgnoreNotFound(err)
	})
	if err != nil {
		return fmt.Errorf("wait for the controller-manager to create ServiceAccount default/default: %w", err)
	}
	return nil
}

// controllersRunning returns an error when a controller has exited.
func (c *Cluster) controllersRunning() error {
	for _, p := range c.procs {
		if err := p.running(); err != nil {
			return err
		}
	}
	return nil
}

// Simulated says whether controllers, a scheduler and kwok run
// (Options.Simulated).
func (c *Cluster) Simulated() bool { return c.simulated }

// CreateNodes creates nodes and, in a simulated cluster, hands them to
// kwok and waits until they are Ready and free of the not-ready taint the
// API server puts on every new Node, so the scheduler sees what the caller
// wrote. Elsewhere it checks the API server stored their taints as given.
func (c *Cluster) CreateNodes(ctx context.Context, nodes []*corev1.Node) error {
	for _, n := range nodes {
		want := slices.Clone(n.Spec.Taints)
		if c.simulated {
			if n.Annotations == nil {
				n.Annotations = map[string]string{}
			}
			n.Annotations[KwokAnnotation] = "fake"
		}
		if err := c.client.Create(ctx, n); err != nil {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
		if !c.simulated && !equality.Semantic.DeepEqual(n.Spec.Taints, want) {
			return fmt.Errorf("create node %s: stored taints %v, want %v", n.Name, n.Spec.Taints, want)
		}
	}
	if !c.simulated {
		return nil
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	return c.WaitNodesReady(ctx, names...)
}

// WaitNodesReady waits until each named Node reports Ready and carries no
// not-ready or unreachable taint.
func (c *Cluster) WaitNodesReady(ctx context.Context, names ...string) error {
	var pending []string
	err := wait.PollUntilContextTimeout(ctx, pollInterval, nodesReadyTimeout, true, func(ctx context.Context) (bool, error) {
		if err := c.controllersRunning(); err != nil {
			return false, err
		}
		pending = pending[:0]
		for _, name := range names {
			var n corev1.Node
			if err := c.client.Get(ctx, types.NamespacedName{Name: name}, &n); err != nil {
				if apierrors.IsNotFound(err) {
					pending = append(pending, name)
					continue
				}
				return false, err
			}
			if !nodeSettled(&n) {
				pending = append(pending, name)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("wait for nodes to be Ready without the not-ready taint (still waiting for %s): %w",
			strings.Join(pending, ", "), err)
	}
	return nil
}

// nodeSettled: Ready, and no taint that the node lifecycle controller
// still has to take off.
func nodeSettled(n *corev1.Node) bool {
	ready := slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
		return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	})
	transient := slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool {
		return t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable
	})
	return ready && !transient
}
