package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	// controlPlaneTimeout is how long etcd, then kube-apiserver, may take
	// to report healthy. envtest's 20s default is tight on a loaded CI
	// machine; a healthy start takes about 2s.
	controlPlaneTimeout = time.Minute
	// controlPlaneStopTimeout is how long each may take to stop on SIGTERM
	// before envtest kills it.
	controlPlaneStopTimeout = 30 * time.Second
)

// buildTestBinaries runs test/tools/build.sh, which builds kube-apiserver,
// kubectl and etcd into bin/testbin at the pinned versions. It builds only
// what is missing (about 7 minutes for kube-apiserver on a cold machine) and
// otherwise returns at once, so running it every time keeps the binaries in
// step with the pins.
func buildTestBinaries(root string) error {
	cmd := exec.Command("bash", filepath.Join(root, "test", "tools", "build.sh"))
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr // "building ..." notices
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build test binaries with test/tools/build.sh: %w", err)
	}
	return nil
}

// startControlPlane starts etcd and kube-apiserver from bin/testbin, writes
// the admin kubeconfig and makes the admin client.
func (b *testBed) startControlPlane() error {
	bin := filepath.Join(b.root, "bin", "testbin")
	apiLog, err := b.createLog("kube-apiserver.log")
	if err != nil {
		return err
	}
	etcdLog, err := b.createLog("etcd.log")
	if err != nil {
		return err
	}
	// Their state goes into the scratch dir too, so removing it (or the
	// reaper removing it) leaves nothing behind.
	certDir, dataDir := filepath.Join(b.tmp, "kube-apiserver"), filepath.Join(b.tmp, "etcd")
	for _, dir := range []string{certDir, dataDir} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("make control plane dir: %w", err)
		}
	}
	b.kubectl = filepath.Join(bin, "kubectl")
	// Paths are set explicitly, not only through BinaryAssetsDirectory:
	// KUBEBUILDER_ASSETS or TEST_ASSET_* in a developer's environment would
	// otherwise win and test against other binaries than the pinned ones.
	b.env = &envtest.Environment{
		BinaryAssetsDirectory: bin,
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{Path: filepath.Join(bin, "kube-apiserver"), CertDir: certDir,
				Out: apiLog, Err: apiLog},
			Etcd:        &envtest.Etcd{Path: filepath.Join(bin, "etcd"), DataDir: dataDir, Out: etcdLog, Err: etcdLog},
			KubectlPath: b.kubectl,
		},
		ControlPlaneStartTimeout: controlPlaneTimeout,
		ControlPlaneStopTimeout:  controlPlaneStopTimeout,
	}
	configureAPIServer(b.env.ControlPlane.GetAPIServer().Configure())
	_, startErr := b.env.Start()
	// Hand the reaper what envtest started even when Start failed half way.
	if err := b.reaper.adoptChildren(); err != nil {
		return err
	}
	if startErr != nil {
		return fmt.Errorf("start etcd and kube-apiserver (logs: %s, %s): %w", apiLog.Name(), etcdLog.Name(), startErr)
	}
	return b.writeAdminKubeconfig()
}

// configureAPIServer adds to envtest's default kube-apiserver flags.
//
// Left to itself, kube-apiserver advertises the address of the interface
// holding the default route: the machine's LAN address, and an error on a
// machine that has no default route (a sandboxed CI runner). Advertising
// loopback keeps the test bed on 127.0.0.1, but kube-apiserver refuses a
// loopback advertise address while it reconciles the "kubernetes" Service's
// endpoints ("may not be in the loopback range"), so that reconciler is off:
// nothing in these tests talks to the API server through that Service.
//
// Two admission plugins that are on by default are off, as nothing here
// would undo what they do: ServiceAccount (as envtest has it; no controller
// creates the "default" ServiceAccount a Pod would need) and
// TaintNodesByCondition, which taints every new Node
// node.kubernetes.io/not-ready:NoSchedule until a node lifecycle controller,
// seeing a kubelet report Ready, removes the taint. The Nodes here have no
// kubelet, and should look like the Ready nodes of a running cluster.
func configureAPIServer(args *envtest.Arguments) {
	args.Set("advertise-address", "127.0.0.1")
	args.Set("endpoint-reconciler-type", "none")
	args.Set("disable-admission-plugins", "ServiceAccount,TaintNodesByCondition")
}

func (b *testBed) createLog(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(b.tmp, name))
	if err != nil {
		return nil, fmt.Errorf("create log: %w", err)
	}
	b.logs = append(b.logs, f)
	return f, nil
}

// writeAdminKubeconfig provisions a system:masters user, writes its
// kubeconfig for kubectl and the webhook, and makes the test client.
func (b *testBed) writeAdminKubeconfig() error {
	// The API server is ours alone: no need to spare it from a fast client.
	base := &rest.Config{QPS: 1000, Burst: 2000}
	admin, err := b.env.AddUser(envtest.User{Name: "e2e-admin", Groups: []string{"system:masters"}}, base)
	if err != nil {
		return fmt.Errorf("provision admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	b.kubeconfig = filepath.Join(b.tmp, "kubeconfig")
	if err := os.WriteFile(b.kubeconfig, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write admin kubeconfig: %w", err)
	}
	if b.client, err = client.New(admin.Config(), client.Options{}); err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	return nil
}

// clusterNodes are Node objects shaped like a small real cluster, for the
// policies that read the inventory (tolerations, rollout). Only the objects:
// no kubelet runs, so their status stays empty; and they carry no
// node.kubernetes.io/not-ready taint (see configureAPIServer).
func clusterNodes() []*corev1.Node {
	node := func(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{corev1.LabelHostname: name},
		}}
		for k, v := range labels {
			n.Labels[k] = v
		}
		n.Spec.Taints = taints
		return n
	}
	cordoned := node("worker-3", nil)
	cordoned.Spec.Unschedulable = true
	return []*corev1.Node{
		node("control-plane", map[string]string{"node-role.kubernetes.io/control-plane": ""},
			corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}),
		node("worker-1", nil),
		node("worker-2", map[string]string{"gpu": "true"},
			corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}),
		cordoned,
	}
}

// createNodes creates clusterNodes and checks the API server stored their
// taints as given: an admission plugin that adds one would change what every
// tolerations test means.
func createNodes(ctx context.Context, c client.Client) error {
	for _, n := range clusterNodes() {
		want := slices.Clone(n.Spec.Taints)
		if err := c.Create(ctx, n); err != nil {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
		if !equality.Semantic.DeepEqual(n.Spec.Taints, want) {
			return fmt.Errorf("create node %s: stored taints %v, want %v", n.Name, n.Spec.Taints, want)
		}
	}
	return nil
}

// testNamespace creates a namespace for t, named after the test plus a
// random suffix (so -count=2 and reruns get fresh ones), and deletes it when
// t ends. No namespace controller runs here: the deleted namespace stays
// Terminating with its objects until the run ends, which no test sees.
func testNamespace(t testing.TB) string {
	t.Helper()
	c := apiClient(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(t.Name())}}
	if err := c.Create(t.Context(), ns); err != nil {
		t.Fatalf("create namespace for %s: %v", t.Name(), err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	t.Logf("namespace %s", ns.Name)
	if w := requireBed(t).webhook; w != nil {
		w.logOnFailure(t)
	}
	return ns.Name
}

var notDNSLabel = regexp.MustCompile(`[^a-z0-9]+`)

// namespacePrefix turns a test name into a DNS label prefix ending in "-",
// leaving room for the 5-character suffix GenerateName adds. A name too long
// keeps its start and a hash of the whole, so prefixes stay distinct.
func namespacePrefix(testName string) string {
	const maxPrefix = 63 - 5 - 1 // label length, generated suffix, trailing "-"
	name := strings.Trim(notDNSLabel.ReplaceAllString(strings.ToLower(testName), "-"), "-")
	if len(name) > maxPrefix {
		sum := sha256.Sum256([]byte(testName))
		hash := hex.EncodeToString(sum[:])[:8]
		name = strings.TrimRight(name[:maxPrefix-len(hash)-1], "-") + "-" + hash
	}
	if name == "" {
		name = "e2e"
	}
	return name + "-"
}
