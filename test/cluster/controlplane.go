package cluster

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
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

// BuildTestBinaries runs test/tools/build.sh, which builds kube-apiserver,
// kubectl and etcd, and the extra build.sh targets (controller-manager,
// scheduler, kwok), into bin/testbin at the pinned versions. It builds only
// what is missing (about 7 minutes for kube-apiserver on a cold machine) and
// otherwise returns at once, so running it every time keeps the binaries in
// step with the pins. Its "building ..." notices go to log.
func BuildTestBinaries(ctx context.Context, root string, log io.Writer, extra ...string) error {
	args := []string{filepath.Join(root, "test", "tools", "build.sh")}
	if len(extra) > 0 {
		args = append(args, append([]string{"apiserver", "kubectl", "etcd"}, extra...)...)
	}
	cmd := groupCommand(ctx, "bash", args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build test binaries with test/tools/build.sh: %w", err)
	}
	return nil
}

// groupCommand is exec.CommandContext for a command that starts commands of
// its own (bash running go build, go build running compile): it runs in a
// process group of its own, and cancelling ctx kills the whole group, not
// only its leader, so no compiler keeps running after a Ctrl-C.
func groupCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// startControlPlane starts etcd and kube-apiserver from bin/testbin, writes
// the admin kubeconfig and makes the admin client.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	bin := filepath.Join(c.root, "bin", "testbin")
	apiLog, err := c.createLog("kube-apiserver.log")
	if err != nil {
		return err
	}
	etcdLog, err := c.createLog("etcd.log")
	if err != nil {
		return err
	}
	// Their state goes into the scratch dir too, so removing it (or the
	// reaper removing it) leaves nothing behind.
	certDir, dataDir := filepath.Join(c.dir, "kube-apiserver"), filepath.Join(c.dir, "etcd")
	for _, dir := range []string{certDir, dataDir} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("make control plane dir: %w", err)
		}
	}
	c.kubectl = filepath.Join(bin, "kubectl")
	// Paths are set explicitly, not only through BinaryAssetsDirectory, and
	// UseExistingCluster is false: KUBEBUILDER_ASSETS, TEST_ASSET_* or
	// USE_EXISTING_CLUSTER in a developer's environment would otherwise win
	// and run against other binaries than the pinned ones, or another
	// cluster altogether.
	c.env = &envtest.Environment{
		BinaryAssetsDirectory: bin,
		UseExistingCluster:    ptr.To(false),
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{Path: filepath.Join(bin, "kube-apiserver"), CertDir: certDir,
				Out: apiLog, Err: apiLog},
			Etcd:        &envtest.Etcd{Path: filepath.Join(bin, "etcd"), DataDir: dataDir, Out: etcdLog, Err: etcdLog},
			KubectlPath: c.kubectl,
		},
		ControlPlaneStartTimeout: controlPlaneTimeout,
		ControlPlaneStopTimeout:  controlPlaneStopTimeout,
	}
	configureAPIServer(c.env.ControlPlane.GetAPIServer().Configure(), c.simulated, c.opts.FeatureGates)
	_, startErr := c.env.Start() // takes no context: ctx is checked after
	// Hand the reaper what envtest started even when Start failed half way.
	if err := c.reaper.adoptChildren(); err != nil {
		return err
	}
	if startErr != nil {
		return fmt.Errorf("start etcd and kube-apiserver (logs: %s, %s): %w", apiLog.Name(), etcdLog.Name(), startErr)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start etcd and kube-apiserver: %w", err)
	}
	return c.writeAdminKubeconfig()
}

// configureAPIServer adds to envtest's default kube-apiserver flags.
//
// Left to itself, kube-apiserver advertises the address of the interface
// holding the default route: the machine's LAN address, and an error on a
// machine that has no default route (a sandboxed CI runner). Advertising
// loopback keeps the cluster on 127.0.0.1, but kube-apiserver refuses a
// loopback advertise address while it reconciles the "kubernetes" Service's
// endpoints ("may not be in the loopback range"), so that reconciler is off:
// nothing here talks to the API server through that Service.
//
// Two admission plugins that are on by default are off, as nothing here
// would undo what they do: ServiceAccount (as envtest has it; no controller
// creates the "default" ServiceAccount a Pod would need) and
// TaintNodesByCondition, which taints every new Node
// node.kubernetes.io/not-ready:NoSchedule until a node lifecycle controller,
// seeing a kubelet report Ready, removes the taint. The Nodes here have no
// kubelet, and should look like the Ready nodes of a running cluster.
//
// A simulated cluster has both controllers (and kwok reporting Ready), so
// there every default admission plugin is on, as in a real cluster.
func configureAPIServer(args *envtest.Arguments, simulated bool, gates string) {
	args.Set("advertise-address", "127.0.0.1")
	args.Set("endpoint-reconciler-type", "none")
	if gates != "" {
		args.Set("feature-gates", gates)
	}
	if simulated {
		args.Disable("disable-admission-plugins")
		return
	}
	args.Set("disable-admission-plugins", "ServiceAccount,TaintNodesByCondition")
}

func (c *Cluster) createLog(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(c.dir, name))
	if err != nil {
		return nil, fmt.Errorf("create log: %w", err)
	}
	c.logs = append(c.logs, f)
	return f, nil
}

// writeAdminKubeconfig provisions a system:masters user, writes its
// kubeconfig for kubectl and the webhook, and makes the admin client.
func (c *Cluster) writeAdminKubeconfig() error {
	// The API server is ours alone: no need to spare it from a fast client.
	base := &rest.Config{QPS: 1000, Burst: 2000}
	admin, err := c.env.AddUser(envtest.User{Name: "podgate-admin", Groups: []string{"system:masters"}}, base)
	if err != nil {
		return fmt.Errorf("provision admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	if err := os.WriteFile(c.kubeconfig, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write admin kubeconfig: %w", err)
	}
	c.config = admin.Config()
	if c.client, err = client.New(c.config, client.Options{}); err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	return nil
}

// userKubeconfig provisions user (a client certificate the API server
// trusts, no groups: RBAC's bootstrap bindings give the well-known users
// their rights) and writes its kubeconfig as <name>.kubeconfig.
func (c *Cluster) userKubeconfig(name, user string) (string, error) {
	u, err := c.env.AddUser(envtest.User{Name: user}, &rest.Config{QPS: 1000, Burst: 2000})
	if err != nil {
		return "", fmt.Errorf("provision user %s: %w", user, err)
	}
	kubeconfig, err := u.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("kubeconfig of %s: %w", user, err)
	}
	path := filepath.Join(c.dir, name+".kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		return "", fmt.Errorf("write kubeconfig of %s: %w", user, err)
	}
	return path, nil
}

// Nodes returns new Node objects shaped like a small real cluster, for the
// policies that read the inventory (tolerations, rollout): a control plane
// tainted node-role.kubernetes.io/control-plane:NoSchedule, a plain worker,
// a GPU worker tainted dedicated=gpu:NoSchedule and a cordoned worker. Only
// the objects: no kubelet runs, so their status stays empty (kwok fills it
// in a simulated cluster); and they carry no node.kubernetes.io/not-ready
// taint (see configureAPIServer).
func Nodes() []*corev1.Node {
	node := func(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{corev1.LabelHostname: name},
		}}
		maps.Copy(n.Labels, labels)
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
