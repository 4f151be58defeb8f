package load

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/podgate/podgate/test/cluster"
	"github.com/podgate/podgate/test/load/loadgen"
)

// gatekeeperPath is where Gatekeeper's validating webhook listens.
const gatekeeperPath = "/v1/admit"

// constraintCRD is the CRD Gatekeeper creates from the template.
const constraintCRD = "k8srequiredprobes.constraints.gatekeeper.sh"

// gatekeeperNamespace is the namespace Gatekeeper believes it runs in.
const gatekeeperNamespace = "gatekeeper-system"

// startGatekeeper runs Gatekeeper out of cluster as the validating webhook
// (--operation=webhook, and generate for the constraint CRD) on port, with
// t's certificate: its CRDs and the k8srequiredprobes template and
// constraint, which test/tools/build.sh copies from its module next to the
// binary (crds/, policy/), are applied to the control plane first. It
// returns once Gatekeeper denies pod, that is once the constraint is in
// force.
func (t *tester) startGatekeeper(ctx context.Context, c *cluster.Cluster, port, health int, pod loadgen.Request) (*server, error) {
	files := filepath.Dir(t.o.Gatekeeper)
	for _, args := range [][]string{
		{"apply", "--server-side", "-f", filepath.Join(files, "crds")},
		{"wait", "--for", "condition=established", "--timeout", "60s", "-f", filepath.Join(files, "crds")},
		{"create", "namespace", gatekeeperNamespace},
		{"apply", "-f", filepath.Join(files, "policy", "template_k8srequiredprobes.yaml")},
	} {
		if _, stderr, err := c.Kubectl(ctx, nil, args...); err != nil {
			return nil, fmt.Errorf("gatekeeper: kubectl %v: %w: %s", args, err, stderr)
		}
	}
	s, err := startServer("gatekeeper", t.o.Gatekeeper, t.dir, "https://"+loopback(port),
		[]string{"KUBECONFIG=" + c.Kubeconfig(), "POD_NAMESPACE=" + gatekeeperNamespace},
		// generate creates the constraint CRD from the template, which in a
		// cluster Gatekeeper's audit Pod does; it is idle afterwards. Out of
		// cluster there is no Pod of its own to own its status objects.
		"--operation=webhook", "--operation=generate", "--disable-cert-rotation", "--debug-use-fake-pod",
		"--cert-dir", t.pki.dir,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--health-addr", loopback(health),
		"--metrics-addr", "0", "--shutdown-delay", "0",
		// Warnings and errors only, as for the other servers.
		"--log-level", "WARNING")
	if err != nil {
		return nil, err
	}
	// The constraint's kind is a CRD Gatekeeper creates from the template:
	// it can be applied only once Gatekeeper has done so.
	constraint := filepath.Join(files, "policy", "constraint_k8srequiredprobes.yaml")
	attempt := 0
	err = retry(ctx, 2*time.Minute, func() error {
		attempt++
		select {
		case <-s.exited:
			return fmt.Errorf("gatekeeper exited: %v (log %s)", s.waitErr, s.logPath)
		default:
		}
		if _, stderr, err := c.Kubectl(ctx, nil, "get", "crd", constraintCRD); err != nil {
			return fmt.Errorf("no constraint CRD yet: %w: %s", err, stderr)
		}
		// A fresh discovery cache each time: the one kubectl keeps
		// predates the CRD, and an attempt's may predate its serving.
		cache := filepath.Join(t.dir, fmt.Sprintf("kube-cache-gatekeeper-%d", attempt))
		if _, stderr, err := c.Kubectl(ctx, nil, "--cache-dir", cache, "apply", "-f", constraint); err != nil {
			return fmt.Errorf("kubectl apply %s: %w: %s", constraint, err, stderr)
		}
		a, err := post(ctx, t.pki.client(), s.url+gatekeeperPath, pod.Body)
		if err != nil {
			return err
		}
		if a.Allowed {
			return errors.New("the redis Pod is still allowed: the constraint is not in force yet")
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("gatekeeper: %w; its log ends:\n%s", err, logTail(s.logPath, 30))
	}
	return s, nil
}

// logTail is the last n lines of the file at path.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// retry calls f every half second until it succeeds or within is over.
func retry(ctx context.Context, within time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
