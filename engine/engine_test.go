package engine_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

const customPolicy = `# METADATA
# title: Team label
# description: Every Deployment names its owning team.
# custom:
#   enforcement: deny
#   rules:
#     team-label: {enforcement: deny, summary: Deployments carry a team label}
#     owner-hint: {enforcement: warn, summary: a hint}
package podgate.policies.team_label

violation contains {"rule": "team-label", "msg": "no team label; add metadata.labels.team", "field": "metadata.labels"} if {
	input.request.kind.kind == "Deployment"
	not input.request.object.metadata.labels.team
}

violation contains {"rule": "owner-hint", "msg": "hint", "field": "metadata"} if input.request.kind.kind == "Deployment"
`

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var deployment = &engine.Request{
	UID: "1", Operation: "CREATE", Namespace: "team-a",
	Kind:   engine.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
	Object: []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{}}`),
}

func rules(vs []engine.Violation) map[string]engine.Enforcement {
	out := map[string]engine.Enforcement{}
	for _, v := range vs {
		out[v.Policy+"/"+v.Rule] = v.Enforcement
	}
	return out
}

func TestCustomPolicyIsLoadedNextToTheBuiltInOnes(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "team.rego", customPolicy)
	e := engine.New()
	if err := e.Load(t.Context(), engine.Sources{Builtin: policies.FS, PolicyDir: dir}); err != nil {
		t.Fatal(err)
	}
	vs, err := e.Violations(t.Context(), deployment)
	if err != nil {
		t.Fatal(err)
	}
	got := rules(vs)
	if got["team-label/team-label"] != engine.Deny || got["team-label/owner-hint"] != engine.Warn {
		t.Fatalf("custom rules with their METADATA enforcement: got %v", got)
	}
}

func TestConfigOverridesEnforcementAndExcludesNamespaces(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "team.rego", customPolicy)
	for name, tc := range map[string]struct {
		config string
		want   map[string]engine.Enforcement
	}{
		"policy turned down to warn keeps warn rules warn": {
			"policies:\n  team-label:\n    enforcement: warn\n",
			map[string]engine.Enforcement{"team-label/team-label": engine.Warn, "team-label/owner-hint": engine.Warn}},
		"policy at dryrun makes every rule dryrun": {
			"policies:\n  team-label:\n    enforcement: dryrun\n",
			map[string]engine.Enforcement{"team-label/team-label": engine.DryRun, "team-label/owner-hint": engine.DryRun}},
		"a rule override wins over the policy level": {
			"policies:\n  team-label:\n    enforcement: warn\n    rules:\n      owner-hint: deny\n",
			map[string]engine.Enforcement{"team-label/team-label": engine.Warn, "team-label/owner-hint": engine.Deny}},
		"a rule turned off is not reported": {
			"policies:\n  team-label:\n    rules:\n      owner-hint: off\n",
			map[string]engine.Enforcement{"team-label/team-label": engine.Deny}},
		"an excluded namespace sees nothing of the policy": {
			"policies:\n  team-label:\n    excludedNamespaces: [team-a]\n",
			map[string]engine.Enforcement{}},
		"a globally excluded namespace sees nothing at all": {
			"excludedNamespaces: [team-a]\n",
			map[string]engine.Enforcement{}},
	} {
		t.Run(name, func(t *testing.T) {
			e := engine.New()
			cfg := write(t, t.TempDir(), "config.yaml", tc.config)
			if err := e.Load(t.Context(), engine.Sources{Builtin: policies.FS, PolicyDir: dir, ConfigFile: cfg}); err != nil {
				t.Fatal(err)
			}
			vs, err := e.Violations(t.Context(), deployment)
			if err != nil {
				t.Fatal(err)
			}
			got := rules(vs)
			for k := range got {
				if !strings.HasPrefix(k, "team-label/") {
					delete(got, k)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestBadConfigIsRejectedWithFileLineAndKey(t *testing.T) {
	for name, tc := range map[string]struct{ config, want string }{
		"unknown top-level key":                  {"excludedNamespace: [a]\n", "config.yaml:1:1: excludedNamespace: unknown key"},
		"unknown key of a policy":                {"policies:\n  rollout:\n    minAvailablePercents: 50\n", "config.yaml:3:5: policies.rollout.minAvailablePercents: unknown key"},
		"value of the wrong type":                {"policies:\n  rollout:\n    minAvailablePercent: half\n", "config.yaml:3:26: policies.rollout.minAvailablePercent: want a number, got a string"},
		"bad enforcement":                        {"policies:\n  probes:\n    enforcement: block\n", "config.yaml:3:18: policies.probes.enforcement: enforcement block: want one of deny, warn, dryrun, off"},
		"bad rule enforcement":                   {"policies:\n  probes:\n    rules: {identical: never}\n", "config.yaml:3:24: policies.probes.rules.identical: enforcement never: want one of deny, warn, dryrun, off"},
		"rule the policy lacks":                  {"policies:\n  probes:\n    rules:\n      readyness: warn\n", "config.yaml:4:7: policies.probes.rules.readyness: the policy has no such rule"},
		"policy that is not loaded":              {"policies:\n  nosuch:\n    enforcement: warn\n", "config.yaml:2:3: policies.nosuch: no such policy; the loaded policies are placement, probes, rollout, stateful-volumes, tolerations"},
		"misspelt policy name":                   {"policies:\n  rolout:\n    minRevisionHistory: 3\n", "config.yaml:2:3: policies.rolout: no such policy (did you mean rollout?)"},
		"excluded namespaces not a list":         {"excludedNamespaces: kube-system\n", "config.yaml:1:21: excludedNamespaces: want a list, got a string"},
		"a controller user not a string":         {"controllerUsers: [{name: ci}]\n", "config.yaml:1:18: controllerUsers: want a list of strings"},
		"policy excluded namespaces not strings": {"policies:\n  myown:\n    excludedNamespaces: [1]\n", "config.yaml:3:25: policies.myown.excludedNamespaces: want a list of strings"},
		"not YAML":                               {"policies: [\n", "config.yaml"},
		"list where a map is wanted":             {"policies: []\n", "policies: want a mapping, got a list"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := write(t, t.TempDir(), "config.yaml", tc.config)
			err := engine.New().Load(t.Context(), engine.Sources{Builtin: policies.FS, ConfigFile: cfg})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestBrokenPolicyIsRejectedAndTheLastGoodSetKeepsServing(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "team.rego", customPolicy)
	e := engine.New()
	ctx := t.Context()
	if err := e.Load(ctx, engine.Sources{Builtin: policies.FS, PolicyDir: dir}); err != nil {
		t.Fatal(err)
	}
	hash := e.Hash()
	for name, src := range map[string]string{
		"syntax error":         "package podgate.policies.x\nviolation contains v if {\n",
		"unsafe variable":      "# METADATA\n# title: x\n# description: x\n# custom:\n#   enforcement: deny\n#   rules: {}\npackage podgate.policies.x\n\nviolation contains v if input.x == y\n",
		"missing METADATA":     "package podgate.policies.x\n\nviolation contains {\"rule\": \"r\", \"msg\": \"m\"} if false\n",
		"package outside ours": "package kubernetes.admission\n\ndeny contains \"x\" if false\n",
	} {
		t.Run(name, func(t *testing.T) {
			bad := t.TempDir()
			write(t, bad, "team.rego", customPolicy)
			write(t, bad, "broken.rego", src)
			err := e.Load(ctx, engine.Sources{Builtin: policies.FS, PolicyDir: bad})
			if err == nil || !strings.Contains(err.Error(), "broken.rego") {
				t.Fatalf("want an error naming broken.rego, got %v", err)
			}
			if e.Hash() != hash {
				t.Fatal("a broken set replaced the good one")
			}
			vs, err := e.Violations(ctx, deployment)
			if err != nil || rules(vs)["team-label/team-label"] != engine.Deny {
				t.Fatalf("the last good set must keep answering: %v %v", vs, err)
			}
		})
	}
}

func TestEvaluationBeforeLoadIsAnError(t *testing.T) {
	if _, err := engine.New().Violations(t.Context(), deployment); !errors.Is(err, engine.ErrNotLoaded) {
		t.Fatalf("got %v", err)
	}
}

func TestConcurrentEvaluationsDuringReloadsAndInventoryChanges(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "team.rego", customPolicy)
	e := engine.New()
	ctx := t.Context()
	src := engine.Sources{Builtin: policies.FS, PolicyDir: dir}
	if err := e.Load(ctx, src); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 4 {
		wg.Go(func() {
			for range 50 {
				vs, err := e.Violations(ctx, deployment)
				if err != nil || rules(vs)["team-label/team-label"] != engine.Deny {
					errs <- errors.Join(err, errors.New("missing violation during reload"))
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 5 {
			if err := e.Load(ctx, src); err != nil {
				errs <- err
			}
			nodes := map[string]engine.Node{"n": {Labels: map[string]string{"i": strings.Repeat("x", i)}}}
			if err := e.SetNodes(ctx, nodes); err != nil {
				errs <- err
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if e.Generation() != 6 {
		t.Fatalf("generation %d, want 6", e.Generation())
	}
}

func TestAPolicyReportingARuleItsMETADATADoesNotDeclareIsRejectedWithFileAndLine(t *testing.T) {
	dir := t.TempDir()
	undeclared := strings.Replace(customPolicy, `violation contains {"rule": "owner-hint"`, `violation contains {"rule": "owner-hnt"`, 1)
	write(t, dir, "team.rego", undeclared)
	err := engine.New().Load(t.Context(), engine.Sources{Builtin: policies.FS, PolicyDir: dir})
	want := `team.rego:16:29: policy team-label reports rule "owner-hnt", which its METADATA does not declare`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error saying %q", err, want)
	}
}
