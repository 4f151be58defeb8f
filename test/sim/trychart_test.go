package sim

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podgate/podgate/test/cluster"
)

// `make try-chart` (test/demo/try-chart.sh), as docs/install.md runs it
// on `make cluster`: the chart from the working tree installs into the
// simulated cluster next to its own webhook configurations, and a bad
// Deployment is denied.
func TestMakeTryChartInstallsTheChartIntoTheSimulatedClusterAndShowsADenial(t *testing.T) {
	b := requireBed(t)
	if err := cluster.BuildTestBinaries(t.Context(), b.Root(), os.Stderr, "helm4"); err != nil {
		t.Fatal(err)
	}
	const release = "podgate-try"
	t.Cleanup(func() {
		// t.Context() is cancelled when cleanups run: its values without its end.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		_, _, _ = b.Kubectl(ctx, nil, "delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", "-l", "app.kubernetes.io/instance="+release)
		_, _, _ = b.Kubectl(ctx, nil, "delete", "namespace", release, "--wait=false")
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(b.Root(), "test", "demo", "try-chart.sh"))
	cmd.Env = append(os.Environ(), "KUBECONFIG="+b.Kubeconfig(), "RELEASE="+release,
		"HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("try-chart.sh: %v\n%s", err, out)
	}
	wantSays(t, string(out), "STATUS: deployed", "validatingwebhookconfiguration.admissionregistration.k8s.io/"+release,
		`admission webhook "validate.podgate.dev" denied the request`, "[rollout/revision-history] Deployment default/api")
	cfg := mustKubectl(t, "get", "validatingwebhookconfiguration", release, "-o", "jsonpath={.webhooks[*].name}")
	if !strings.Contains(cfg, "validate.podgate.dev") || !strings.Contains(cfg, "rollouts.validate.podgate.dev") {
		t.Errorf("the chart's configuration holds %q", cfg)
	}
}
