// Package chart tests charts/podgate with the real Helm 3 and Helm 4 CLIs,
// built from their Go modules by test/tools/build.sh (helm3, helm4):
//
//   - lint and template in every TLS mode, with both Helm versions;
//   - values.schema.json rejecting bad values;
//   - every rendered object through podgate's own policies;
//   - helm install against a real API server (test/cluster) in every TLS
//     mode, cert-manager's CRDs applied first, and the stored objects and
//     RBAC checked;
//   - the self-managed TLS mode end to end, with the webhook out of cluster
//     acting as the chart's ServiceAccount: Secret, caBundle, admission
//     through the API server, and certificate rotation without a failed
//     request.
//
// With -short there is no API server, and the Helm tests run only when the
// Helm binaries are already built (test/tools/build.sh helm3 helm4).
package chart

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/podgate/podgate/test/cluster"
)

var (
	// root is the repository root.
	root string
	// helms are the Helm CLIs by name ("helm3", "helm4"); empty when they
	// are not built in -short mode.
	helms = map[string]string{}
	// bed is the API server for the install tests; nil in -short mode.
	bed *cluster.Cluster
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	if root, err = cluster.FindRoot("."); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		return 1
	}
	if err := findHelms(); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		return 1
	}
	if testing.Short() {
		return m.Run()
	}
	// No CRDs: the chart installs them.
	if bed, err = cluster.Start(context.Background(), cluster.Options{Root: root, NoCRDs: true}); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		bed.WriteLogTails(os.Stderr, true)
	}
	if err := bed.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "chart: stop the API server:", err)
		code = 1
	}
	return code
}

// findHelms builds both Helm CLIs (cached in bin/), or in -short mode uses
// them only if they are there already.
func findHelms() error {
	links := filepath.Join(root, "bin", "testbin")
	if !testing.Short() {
		cmd := exec.Command("bash", filepath.Join(root, "test", "tools", "build.sh"), "helm3", "helm4")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr // "building ..." notices
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build helm3 and helm4 with test/tools/build.sh: %w", err)
		}
	}
	for _, name := range []string{"helm3", "helm4"} {
		path := filepath.Join(links, name)
		if _, err := os.Stat(path); err == nil {
			helms[name] = path
		} else if !testing.Short() || !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// requireHelms returns the Helm CLIs, or skips t when they are not built.
func requireHelms(t *testing.T) map[string]string {
	t.Helper()
	if len(helms) < 2 {
		t.Skip("helm3 and helm4 are not built (-short): run test/tools/build.sh helm3 helm4")
	}
	return helms
}

// requireCluster returns the API server, or skips t in -short mode.
func requireCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	if bed == nil {
		t.Skip("no API server in -short mode")
	}
	return bed
}
