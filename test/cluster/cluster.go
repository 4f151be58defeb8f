// Package cluster runs a real control plane with podgate in it, on loopback,
// for the real-cluster tests (test/e2e) and the demo (test/demo):
//
//   - etcd and kube-apiserver, built by test/tools/build.sh at the versions
//     test/tools pins and started through controller-runtime's envtest, with
//     an admin kubeconfig (system:masters);
//   - four Nodes shaped like a small cluster (see Nodes);
//   - optionally the webhook binary built from ./cmd/webhook, serving with
//     certificates from the certs package and registered as the
//     MutatingWebhookConfiguration and ValidatingWebhookConfiguration
//     "podgate", checked to be called by the API server before Start returns;
//   - optionally (Options.Simulated) a whole simulated cluster:
//     kube-controller-manager and kube-scheduler from the same pinned
//     k8s.io/kubernetes, and kwok (sigs.k8s.io/kwok) keeping the Nodes Ready
//     and marking the Pods bound to them Running and Ready, so Deployments
//     roll and Pods are scheduled for real.
//
// Start brings it all up and Stop takes it all down, scratch dir included.
// Nothing outlives the process that called Start, even when it never calls
// Stop (a panic, go test's -timeout, SIGKILL): a reaper process kills what
// is left and removes the scratch dir (see reaper). A program that wants a
// clean stop on Ctrl-C cancels Start's context and calls Stop; the webhook
// and the control plane run in process groups of their own, so the
// terminal's SIGINT reaches only that program.
//
// Everything is Linux-first (the reaper finds envtest's processes in /proc)
// and needs Go and bash, as the rest of the repository's tooling does.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	// startTimeout bounds starting the cluster once its binaries are built
	// (building takes as long as it takes: about 7 minutes for
	// kube-apiserver on a cold machine). A healthy start takes seconds.
	startTimeout = 5 * time.Minute
	// logTail is how much of each log WriteLogTails prints: enough for the
	// last few hundred lines, short enough to read in a CI log.
	logTail = 64 << 10
	// module is what FindRoot looks for in go.mod: test/tools holds go.mod
	// files of its own, which are not the repository root.
	module = "github.com/podgate/podgate"
)

// Options says what Start brings up.
type Options struct {
	// Root is the repository root (examples/, test/tools/, cmd/webhook);
	// empty means FindRoot from the working directory.
	Root string
	// Webhook builds, starts and registers the podgate webhook; without it
	// there are only the API server and the Nodes.
	Webhook bool
	// BuildWebhook builds the webhook without starting it, for a suite
	// that starts it later (StartWebhook), e.g. after creating objects it
	// has never seen. Webhook implies it.
	BuildWebhook bool
	// Config and PolicyDir, when set, are passed to the webhook as --config
	// and --policy-dir.
	Config, PolicyDir string
	// WebhookArgs are more flags of the webhook, e.g. --audit.
	WebhookArgs []string
	// WebhookEnv is added to the webhook's environment, e.g. the chart's
	// GOMEMLIMIT for memory figures of a deployed webhook.
	WebhookEnv []string
	// ReloadSources, when Config and PolicyDir are empty, gives the webhook
	// an empty config file and an empty policy directory of the scratch
	// dir (ConfigFile, PolicyDir), so that a person can try hot reload on
	// a running cluster (`make cluster`).
	ReloadSources bool
	// Simulated also runs kube-controller-manager, kube-scheduler and kwok
	// (see startControllers); the Nodes are then kwok's and Ready, and the
	// API server runs the admission plugins it runs in a real cluster.
	Simulated bool
	// NoNodes leaves out the four Nodes of Nodes(), for a caller that
	// creates its own with CreateNodes.
	NoNodes bool
	// NoCRDs leaves out podgate's CRDs (PolicyException, Report), which
	// Start installs otherwise, as the chart does (InstallCRDs).
	NoCRDs bool
	// FeatureGates, when set, is passed as --feature-gates to
	// kube-apiserver and, in a simulated cluster, to
	// kube-controller-manager and kube-scheduler, e.g.
	// "TaintTolerationComparisonOperators=true".
	FeatureGates string
	// Log receives progress ("cluster up in 3.1s"), build notices and,
	// when Start fails, the end of every log; nil means os.Stderr, so a
	// failed start is never silent.
	Log io.Writer
}

// Cluster is a running control plane, its Nodes and, if asked for, the
// webhook. Its methods are safe for concurrent use.
type Cluster struct {
	root       string
	dir        string // scratch dir: kubeconfig, certs, logs, state, binaries
	log        io.Writer
	env        *envtest.Environment
	config     *rest.Config  // admin
	client     client.Client // admin
	kubeconfig string        // admin kubeconfig file
	kubectl    string        // kubectl binary
	webhook    *webhook      // the registered webhook; nil without one
	webhooks   []*webhook    // every webhook started, the registered one included
	binary     string        // the webhook binary, when built
	opts       Options       // what Start was asked for
	simulated  bool          // Options.Simulated
	procs      []*process    // controller-manager, scheduler, kwok
	reaper     *reaper
	logs       []*os.File // control plane logs, closed by Stop
	stopOnce   sync.Once
	stopErr    error
}

// Start builds what is missing, starts the control plane, creates the Nodes
// and, with o.Webhook, starts the webhook and waits until the API server
// calls it. Cancelling ctx stops the builds and the waits; Start then stops
// whatever it started and returns an error, as it does on any failure. A
// failure it was not asked for, it explains first: it writes the end of
// every log to o.Log.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	c := &Cluster{log: o.Log}
	if c.log == nil {
		c.log = os.Stderr
	}
	var err error
	if c.reaper, err = startReaper(); err != nil {
		return nil, err
	}
	if err = c.start(ctx, o); err != nil {
		if ctx.Err() != nil {
			// Asked to stop: the logs would only say so.
			err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
		} else {
			c.WriteLogTails(c.log, true)
		}
		if stopErr := c.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop after a failed start: %w", stopErr))
		}
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, o Options) error {
	var err error
	if c.root = o.Root; c.root == "" {
		if c.root, err = FindRoot("."); err != nil {
			return err
		}
	}
	if c.dir, err = os.MkdirTemp("", "podgate-cluster-"); err != nil {
		return fmt.Errorf("make scratch dir: %w", err)
	}
	if err := c.reaper.removeDir(c.dir); err != nil {
		return err
	}
	c.simulated = o.Simulated
	var extra []string
	if o.Simulated {
		extra = simulatedBinaries
	}
	if err := BuildTestBinaries(ctx, c.root, c.log, extra...); err != nil {
		return err
	}
	c.opts = o
	if o.Webhook || o.BuildWebhook {
		if c.binary, err = c.buildWebhook(ctx); err != nil {
			return err
		}
		if o.ReloadSources && o.Config == "" && o.PolicyDir == "" {
			if c.opts.Config, c.opts.PolicyDir, err = c.reloadSources(); err != nil {
				return err
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	up := c.step("cluster up")
	if err := c.startControlPlane(ctx); err != nil {
		return err
	}
	if o.Simulated {
		if err := c.startControllers(ctx); err != nil {
			return err
		}
	}
	if !o.NoNodes {
		if err := c.CreateNodes(ctx, Nodes()); err != nil {
			return err
		}
	}
	if !o.NoCRDs {
		if err := c.InstallCRDs(ctx); err != nil {
			return err
		}
	}
	if o.Webhook {
		if _, err := c.StartWebhook(ctx, nil, true); err != nil {
			return err
		}
	}
	up()
	return nil
}

// Stop stops the webhook and the control plane and removes the scratch
// dir. It runs once, however often and from however many goroutines it is
// called; every call returns the first one's error. The error says so when
// the webhook had exited before Stop: a crash the caller should hear about.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		for _, p := range slices.Backward(c.procs) {
			errs = append(errs, p.stop())
		}
		for _, w := range slices.Backward(c.webhooks) {
			errs = append(errs, w.stop(c.log))
		}
		if c.env != nil {
			if err := c.env.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop etcd and kube-apiserver: %w", err))
			}
		}
		for _, f := range c.logs {
			_ = f.Close()
		}
		if c.dir != "" {
			if err := os.RemoveAll(c.dir); err != nil {
				errs = append(errs, fmt.Errorf("remove scratch dir: %w", err))
			}
		}
		// Everything stopped: the reaper has nothing left to do. If
		// something did not stop, let it kill what is left.
		errs = append(errs, c.reaper.finish(errors.Join(errs...) == nil))
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// Root is the repository root.
func (c *Cluster) Root() string { return c.root }

// Dir is the scratch dir that holds the kubeconfig, certificates, logs and
// the control plane's state; Stop removes it.
func (c *Cluster) Dir() string { return c.dir }

// Kubeconfig is the path of the admin kubeconfig (system:masters).
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// KubectlPath is the pinned kubectl binary, in bin/testbin.
func (c *Cluster) KubectlPath() string { return c.kubectl }

// RESTConfig is a copy of the admin user's client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.config) }

// Client is a client with admin rights, for creating fixtures and reading
// back what the API server stored.
func (c *Cluster) Client() client.Client { return c.client }

// ConfigFile is the webhooks' --config file; "" when they have none.
func (c *Cluster) ConfigFile() string { return c.opts.Config }

// PolicyDir is the webhooks' --policy-dir; "" when they have none.
func (c *Cluster) PolicyDir() string { return c.opts.PolicyDir }

// HasWebhook says whether the webhook runs (Options.Webhook).
func (c *Cluster) HasWebhook() bool { return c.webhook != nil }

// step prints how long a step of the start took, when the returned function
// is called at its end.
func (c *Cluster) step(what string) func() {
	start := time.Now()
	return func() { c.logf("%s in %s", what, time.Since(start).Round(time.Millisecond)) }
}

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.log, "cluster: "+format+"\n", args...)
}

// FindRoot finds the repository root at or above dir: the folder whose
// go.mod declares module github.com/podgate/podgate.
func FindRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && declaresModule(data) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("find repository root: no go.mod of %s at or above %s", module, abs)
		}
	}
}

func declaresModule(gomod []byte) bool {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == module
		}
	}
	return false
}
