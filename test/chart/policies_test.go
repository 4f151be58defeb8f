package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/internal/testenv"
	"github.com/podgate/podgate/inventory"
	"github.com/podgate/podgate/policies"
	"github.com/podgate/podgate/review"
	"github.com/podgate/podgate/test/cluster"
)

// workloadKinds are the kinds podgate's policies look at.
var workloadKinds = []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}

// TestTheChartObeysPodgatesOwnPolicies runs every workload the chart
// renders, in every TLS mode, through the built-in policies with the
// default configuration (in which the release namespace is not excluded)
// and the test cluster's Nodes plus a second plain worker: no deny, no
// warning, and nothing for the mutating webhook to add. (With the test
// cluster's one plain worker, any two replicas fit only that node, and
// placement/single-node would say so of every Deployment: a fact about
// that cluster, not about the chart.)
func TestTheChartObeysPodgatesOwnPolicies(t *testing.T) {
	bin := requireHelms(t)["helm4"]
	eng := testenv.Engine(t, "")
	nodes := map[string]engine.Node{"worker-4": {Labels: map[string]string{"kubernetes.io/hostname": "worker-4"}}}
	for _, n := range cluster.Nodes() {
		nodes[n.Name] = inventory.Facts(n)
	}
	if err := eng.SetNodes(t.Context(), nodes); err != nil {
		t.Fatal(err)
	}
	for mode, v := range tlsModes(t) {
		t.Run(mode, func(t *testing.T) {
			checked := 0
			for key, obj := range decode(t, render(t, bin, v)) {
				if !slices.Contains(workloadKinds, obj.GetKind()) {
					continue
				}
				checked++
				raw, err := json.Marshal(obj.Object)
				if err != nil {
					t.Fatal(err)
				}
				req := review.EngineRequest(testenv.Request(t, "CREATE", namespace, raw, nil))
				if reason := eng.Skip(req); reason != "" {
					t.Fatalf("%s skipped (%s): the check would prove nothing", key, reason)
				}
				d, err := eng.Decide(t.Context(), req)
				if err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				for _, v := range d.Violations {
					if v.Enforcement == engine.Deny || v.Enforcement == engine.Warn {
						t.Errorf("%s breaks %s/%s (%s): %s", key, v.Policy, v.Rule, v.Enforcement, v.Message)
					}
				}
				ms, err := eng.Mutations(t.Context(), req)
				if err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				for _, m := range ms {
					if m.Op != engine.OpNote {
						t.Errorf("%s: the mutating webhook would change it: %s %s (%s)", key, m.Op, m.Path, m.Message)
					}
				}
			}
			if checked == 0 {
				t.Fatal("no workload rendered")
			}
		})
	}
}

// TestTheRenderedConfigAndCustomPoliciesLoadInTheEngine renders a config
// and a custom policy through the chart's values and loads the two
// ConfigMaps' files as the webhook would read them from their mounts.
func TestTheRenderedConfigAndCustomPoliciesLoadInTheEngine(t *testing.T) {
	objs := decode(t, render(t, requireHelms(t)["helm4"], values{
		"excludedNamespaces": []string{"legacy"},
		"config":             values{"policies": values{"rollout": values{"minRevisionHistory": 3}, "probes": values{"rules": values{"identical": "off"}}}},
		"customPolicies":     values{"team_label.rego": teamLabel},
	}))
	dir := t.TempDir()
	configDir, policyDir := filepath.Join(dir, "config"), filepath.Join(dir, "policies")
	for cm, d := range map[string]string{"ConfigMap/podgate-config": configDir, "ConfigMap/podgate-policies": policyDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		data, _ := objs.get(t, cm).Object["data"].(map[string]any)
		for name, content := range data {
			if err := os.WriteFile(filepath.Join(d, name), []byte(content.(string)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	eng := engine.New()
	src := engine.Sources{Builtin: policies.FS, PolicyDir: policyDir, ConfigFile: filepath.Join(configDir, "config.yaml")}
	if err := eng.Load(t.Context(), src); err != nil {
		t.Fatalf("the webhook would reject the chart's config or policies: %v", err)
	}
	if !slices.ContainsFunc(eng.Policies(), func(p engine.Policy) bool { return p.Name == "team-label" }) {
		t.Errorf("custom policy not loaded; policies: %v", eng.Policies())
	}
	for _, ns := range []string{"kube-system", "kube-node-lease", namespace, "legacy"} {
		if reason := eng.Skip(&engine.Request{Namespace: ns, Operation: engine.OperationCreate, Kind: engine.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}}); !strings.Contains(reason, "namespace "+ns+" is excluded") {
			t.Errorf("namespace %s is not excluded by the rendered config", ns)
		}
	}
}
