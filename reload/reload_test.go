package reload

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

const teamPolicy = `# METADATA
# title: Team label
# description: Every Deployment names its owning team.
# custom:
#   enforcement: deny
#   rules:
#     team-label: {enforcement: deny, summary: Deployments carry a team label}
package podgate.policies.team_label

violation contains {"rule": "team-label", "msg": "no team label; add metadata.labels.team"} if {
	input.request.kind.kind == "Deployment"
	not input.request.object.metadata.labels.team
}
`

var deployment = &engine.Request{
	UID: "1", Operation: "CREATE", Namespace: "default",
	Kind:   engine.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
	Object: []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{}}`),
}

func hasTeamRule(t *testing.T, e *engine.Engine) bool {
	t.Helper()
	vs, err := e.Violations(t.Context(), deployment)
	if err != nil {
		t.Fatalf("evaluation failed: %v", err)
	}
	for _, v := range vs {
		if v.Policy == "team-label" {
			return true
		}
	}
	return false
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// A reload compiles every policy: under the race detector on a busy
	// machine, with evaluations running beside it, that takes seconds.
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// configMapDir lays out dir as a kubelet ConfigMap volume does: files are
// symlinks into ..data, itself a symlink to a timestamped folder, and an
// update swaps ..data atomically.
func configMapDir(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	version := filepath.Join(dir, ".."+time.Now().Format("2006_01_02_15_04_05.000000000"))
	if err := os.Mkdir(version, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(version, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries { // the kubelet removes the links of keys that are gone
		if _, keep := files[e.Name()]; !keep && !strings.HasPrefix(e.Name(), "..") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

func start(t *testing.T, src engine.Sources) (*engine.Engine, *Watcher) {
	t.Helper()
	e := engine.New()
	if err := e.Load(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	w := &Watcher{Engine: e, Sources: src, Log: logr.Discard(), Debounce: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	time.Sleep(50 * time.Millisecond) // let the watches be set up
	return e, w
}

func TestConfigMapUpdateIsPickedUpAndABrokenOneRejected(t *testing.T) {
	dir := t.TempDir()
	configMapDir(t, dir, map[string]string{"readme.txt": "no policy yet"})
	e, w := start(t, engine.Sources{Builtin: policies.FS, PolicyDir: dir})
	if hasTeamRule(t, e) {
		t.Fatal("no custom policy yet")
	}

	configMapDir(t, dir, map[string]string{"team.rego": teamPolicy})
	eventually(t, "the new policy serves", func() bool { return hasTeamRule(t, e) })
	good := e.Hash()

	configMapDir(t, dir, map[string]string{"team.rego": strings.Replace(teamPolicy, "if {", "if {{", 1)})
	eventually(t, "the broken change is reported", func() bool { return w.Condition() != "" })
	if c := w.Condition(); !strings.Contains(c, "team.rego:") || !strings.Contains(c, good) {
		t.Fatalf("condition %q should name the broken file and the set still served", c)
	}
	if e.Hash() != good || !hasTeamRule(t, e) {
		t.Fatal("the last good set must keep serving")
	}

	configMapDir(t, dir, map[string]string{"team.rego": teamPolicy + "\n# fixed\n"})
	eventually(t, "the fixed policy clears the condition", func() bool { return w.Condition() == "" })
}

func TestConfigFileChangeIsPickedUp(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("excludedNamespaces: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	policyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(policyDir, "team.rego"), []byte(teamPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	e, w := start(t, engine.Sources{Builtin: policies.FS, PolicyDir: policyDir, ConfigFile: cfg})
	if !hasTeamRule(t, e) {
		t.Fatal("the policy must apply in default")
	}
	// An editor's save: write a new file, rename it over the old one.
	tmp := cfg + ".swp"
	if err := os.WriteFile(tmp, []byte("excludedNamespaces: [default]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "default is excluded", func() bool { return !hasTeamRule(t, e) })
	if err := os.WriteFile(cfg, []byte("excludedNamespace: [default]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the config typo is reported", func() bool { return strings.Contains(w.Condition(), "excludedNamespace: unknown key") })
	if hasTeamRule(t, e) {
		t.Fatal("the last good config must keep serving")
	}
}

func TestNoEvaluationFailsWhileSetsAreSwapped(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "team.rego")
	if err := os.WriteFile(policy, []byte(teamPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	e, _ := start(t, engine.Sources{Builtin: policies.FS, PolicyDir: dir})
	var evaluations, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				evaluations.Add(1)
				vs, err := e.Violations(t.Context(), deployment)
				if err != nil || len(vs) == 0 {
					failures.Add(1)
				}
			}
		})
	}
	for i := range 10 {
		content := teamPolicy + strings.Repeat("\n", i+1) + "# edit\n"
		if err := os.WriteFile(policy, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		generation := e.Generation()
		eventually(t, "the edit is swapped in", func() bool { return e.Generation() > generation })
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d evaluations failed during 10 reloads", failures.Load(), evaluations.Load())
	}
	t.Logf("%d evaluations during 10 reloads, none failed", evaluations.Load())
}
