package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSmokeKubectlSeesThePinnedServerAndTheFourNodes(t *testing.T) {
	want := pinnedKubernetesVersion(t)
	stdout, stderr, err := kubectl(t, "version", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl version: %v\n%s", err, stderr)
	}
	var version struct {
		ServerVersion struct {
			GitVersion string `json:"gitVersion"`
		} `json:"serverVersion"`
	}
	if err := json.Unmarshal([]byte(stdout), &version); err != nil {
		t.Fatalf("kubectl version printed no JSON: %v\n%s", err, stdout)
	}
	if got := version.ServerVersion.GitVersion; got != want {
		t.Errorf("server version = %q, want %q (test/tools/kube pins it)", got, want)
	}

	stdout, stderr, err = kubectl(t, "get", "nodes", "--no-headers")
	if err != nil {
		t.Fatalf("kubectl get nodes: %v\n%s", err, stderr)
	}
	// No kubelet reports a status, so every node is Unknown; cordoning
	// shows as SchedulingDisabled.
	wantRows := map[string]struct{ status, roles string }{
		"control-plane": {"Unknown", "control-plane"},
		"worker-1":      {"Unknown", "<none>"},
		"worker-2":      {"Unknown", "<none>"},
		"worker-3":      {"Unknown,SchedulingDisabled", "<none>"},
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			rows[f[0]] = f[1:3]
		}
	}
	for name, want := range wantRows {
		got, ok := rows[name]
		if !ok {
			t.Errorf("kubectl get nodes does not list %s:\n%s", name, stdout)
			continue
		}
		if got[0] != want.status || got[1] != want.roles {
			t.Errorf("node %s: STATUS %s ROLES %s, want %s and %s", name, got[0], got[1], want.status, want.roles)
		}
	}
}

// pinnedKubernetesVersion is the k8s.io/kubernetes version test/tools/kube
// pins: the one build.sh builds kube-apiserver from.
func pinnedKubernetesVersion(t *testing.T) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-m", "-f", "{{.Version}}", "k8s.io/kubernetes")
	cmd.Dir = filepath.Join(requireBed(t).root, "test", "tools", "kube")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read pinned Kubernetes version: %v", err)
	}
	return strings.TrimSpace(string(out))
}
