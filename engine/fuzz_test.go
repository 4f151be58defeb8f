package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// FuzzConfig loads arbitrary YAML as the config file: it is either taken
// or rejected with an error naming the file; never a panic, and a rejected
// config never replaces the one being served.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"", "excludedNamespaces: [a]\n", "policies:\n  rollout:\n    minAvailablePercent: 50\n",
		"policies:\n  probes:\n    rules: {identical: off}\n", "policies: []\n", "a: [\n", "policies:\n  x:\n    enforcement: warn\n",
		"excludedNamespaces: &a [*a]\n", "? [a]\n: b\n", "policies:\n  rollout: null\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	e := engine.New()
	if err := e.Load(f.Context(), engine.Sources{Builtin: policies.FS}); err != nil {
		f.Fatal(err)
	}
	good := e.Hash()
	f.Fuzz(func(t *testing.T, config string) {
		if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		fresh := engine.New()
		err := fresh.Load(t.Context(), engine.Sources{Builtin: policies.FS, ConfigFile: cfg})
		if err != nil && !strings.Contains(err.Error(), "config.yaml") && !strings.Contains(err.Error(), "policies.") && !strings.Contains(err.Error(), "excludedNamespaces") {
			t.Fatalf("config error does not say where: %v", err)
		}
		if _, err := e.Reload(t.Context(), engine.Sources{Builtin: policies.FS, ConfigFile: cfg}); err != nil && e.Hash() != good {
			t.Fatal("a rejected config replaced the served one")
		}
		// Back to the defaults for the next input.
		if _, err := e.Reload(t.Context(), engine.Sources{Builtin: policies.FS}); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzRequestObject evaluates and mutates arbitrary bytes as the admitted
// object of every kind: an error or a result, never a panic.
func FuzzRequestObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `[]`, `{"spec":5}`, `{"spec":{"containers":"x"}}`, `{"spec":{"template":{"spec":{"containers":[{"ports":"80"}]}}}}`,
		`{"metadata":{"name":1,"annotations":{"probes.podgate.dev/http":"x:y"}},"spec":{"containers":[{"name":"c","ports":[{"containerPort":"a"}]}]}}`,
		`{"spec":{"tolerations":[{"operator":5}],"nodeSelector":[]}}`, strings.Repeat(`{"a":`, 500) + "1" + strings.Repeat("}", 500),
	} {
		f.Add(s, "Pod")
		f.Add(s, "Deployment")
	}
	e := engine.New()
	if err := e.Load(f.Context(), engine.Sources{Builtin: policies.FS}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, object, kind string) {
		req := &engine.Request{UID: "u", Operation: "CREATE", Namespace: "default",
			Kind: engine.GroupVersionKind{Group: "apps", Version: "v1", Kind: kind}, Object: []byte(object)}
		_, _ = e.Violations(t.Context(), req)
		_, _ = e.Mutations(t.Context(), req)
		if d, err := e.Mutate(t.Context(), req); err == nil {
			if _, err := d.Mutated(); err != nil {
				t.Errorf("mutated object: %v", err)
			}
		}
	})
}
