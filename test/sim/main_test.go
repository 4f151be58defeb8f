// Package sim runs the source notes' story on a whole simulated cluster:
// TestMain starts test/cluster in its Simulated mode (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok running four fake Nodes,
// and the podgate webhook), so Deployments roll, Pods are scheduled and
// marked Running, and `kubectl rollout undo` has history to go back to.
// Each test works in a namespace of its own.
//
// `go test -short` skips the package.
package sim

import (
	"context"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podgate/podgate/test/cluster"
)

// waitTimeout bounds every wait on the controllers: a rollout of three
// kwok Pods takes a few seconds.
const waitTimeout = 2 * time.Minute

// bed is the cluster TestMain started; nil in -short mode.
var bed *cluster.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(cluster.RunSuite(m, "sim", cluster.Options{Webhook: true, Simulated: true}, func(c *cluster.Cluster) { bed = c }))
}

// requireBed returns the cluster, or skips t in -short mode.
func requireBed(t testing.TB) *cluster.Cluster {
	t.Helper()
	if bed == nil {
		t.Skip("sim: no cluster in -short mode")
	}
	return bed
}

// kubectl runs kubectl as the admin user, in the repository root, and
// returns stdout and stderr together, as a terminal shows them.
func kubectl(t testing.TB, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	t.Logf("kubectl %s", strings.Join(args, " "))
	stdout, stderr, err := requireBed(t).Kubectl(t.Context(), stdin, args...)
	return stdout + stderr, err
}

// mustKubectl is kubectl that fails the test when kubectl fails.
func mustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := kubectl(t, nil, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// testNamespace creates a namespace for t, waits for its "default"
// ServiceAccount (Pods are refused without it) and deletes it at the end.
func testNamespace(t *testing.T) string {
	t.Helper()
	c := requireBed(t).Client()
	name := "sim-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	name = strings.TrimRight(name, "-")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(t.Context(), ns); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	// t.Context() is cancelled when cleanups run: its values without its end.
	t.Cleanup(func() { _ = c.Delete(context.WithoutCancel(t.Context()), ns) })
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		var sa corev1.ServiceAccount
		return c.Get(ctx, types.NamespacedName{Namespace: name, Name: "default"}, &sa) == nil, nil
	})
	if err != nil {
		t.Fatalf("wait for ServiceAccount %s/default: %v", name, err)
	}
	return name
}
