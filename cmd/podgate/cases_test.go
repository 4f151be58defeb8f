package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The testdata judge runs here over the repository's own policies, so that
// `go test ./...` alone judges every case, as `make test` does with
// `podgate test`.
func TestEveryTestdataCaseOfTheBuiltInAndExamplePoliciesPasses(t *testing.T) {
	for _, dir := range []string{repo("policies"), repo("examples", "policies")} {
		t.Run(filepath.Base(filepath.Dir(dir))+"/"+filepath.Base(dir), func(t *testing.T) {
			code, out, errOut := podgate(t, "", "test", dir)
			if code != exitOK {
				t.Fatalf("exit %d:\n%s%s", code, out, errOut)
			}
			// The count is that of the files on disk, so a judge that finds
			// no case cannot pass.
			n := countCases(t, repo("policies"))
			if dir != repo("policies") {
				n += countCases(t, dir)
			}
			if want := fmt.Sprintf("testdata: %d/%d cases pass\n", n, n); !strings.Contains(out, want) {
				t.Fatalf("output lacks %q:\n%s", want, out)
			}
		})
	}
}

func countCases(t *testing.T, dir string) int {
	t.Helper()
	files, err := fs.Glob(os.DirFS(dir), "*/testdata/*/data.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata cases in %s: %v", dir, err)
	}
	return len(files)
}

// copyTree copies a policy folder of the repository into a temporary one,
// where a test may break it.
func copyTree(t *testing.T, parts ...string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), parts[len(parts)-1])
	if err := os.CopyFS(dst, os.DirFS(repo(parts...))); err != nil {
		t.Fatal(err)
	}
	return dst
}

// edit replaces old, which must occur once, in the file dir/name.
func edit(t *testing.T, dir, name, old, replacement string) {
	t.Helper()
	p := filepath.Join(dir, name)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), old); n != 1 {
		t.Fatalf("%s holds %q %d times, want once", p, old, n)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(raw), old, replacement, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAWrongExpectationFailsTheJudgeNamingTheCaseWhatWasExpectedAndWhatWasGot(t *testing.T) {
	for _, tc := range []struct {
		name string
		// tree is the policy folder copied and broken: the built-in one,
		// tested in place of the embedded copy, or the example custom one,
		// tested next to the built-in policies.
		tree  []string
		file  string
		old   string
		new   string
		wants []string
	}{
		{
			name:  "a built-in case expecting another rule than the one that fires",
			tree:  []string{"policies"},
			file:  "rollout/testdata/nginx-latest/data.yaml",
			old:   "violations: [pinned-image]",
			new:   "violations: [recreate]",
			wants: []string{"FAIL policies/rollout/testdata/nginx-latest/data.yaml: the nginx Deployment upgraded", "violations of rollout: expected [recreate], got [pinned-image]", `warn [rollout/pinned-image] Deployment default/nginx-deployment: container nginx uses image "nginx:latest"`},
		},
		{
			name: "a built-in case expecting fewer mutations than are made",
			tree: []string{"policies"},
			file: "probes/testdata/nginx-deployment-gets-tcp-probes/data.yaml",
			old:  "  - /spec/template/spec/containers/0/startupProbe\n",
			new:  "",
			wants: []string{
				"FAIL policies/probes/testdata/nginx-deployment-gets-tcp-probes/data.yaml: ",
				"mutations of probes: expected [/spec/template/spec/containers/0/livenessProbe, /spec/template/spec/containers/0/readinessProbe], got [/spec/template/spec/containers/0/livenessProbe, /spec/template/spec/containers/0/readinessProbe, /spec/template/spec/containers/0/startupProbe]",
			},
		},
		{
			name:  "a built-in case that the engine skips without saying so",
			tree:  []string{"policies"},
			file:  "tolerations/testdata/wildcard-toleration-in-kube-system/data.yaml",
			old:   "  skipped: true\n",
			new:   "",
			wants: []string{"FAIL policies/tolerations/testdata/wildcard-toleration-in-kube-system/data.yaml: ", "expected the policies to judge the object, got it skipped (namespace kube-system is excluded)"},
		},
		{
			name:  "a rule declared in METADATA that no case expects",
			tree:  []string{"policies"},
			file:  "rollout/rollout.rego",
			old:   "#   rules:\n",
			new:   "#   rules:\n#     never-reported:\n#       enforcement: warn\n#       summary: declared and never tested\n",
			wants: []string{"FAIL policies/rollout/rollout.rego: policy rollout\n  rule never-reported, declared in its METADATA, is expected by no testdata case"},
		},
		{
			name:  "a custom policy's case expecting a rule that does not fire",
			tree:  []string{"examples", "policies"},
			file:  "resources/testdata/job-without-requests-is-denied/data.yaml",
			old:   "violations: [requests, memory-limit]",
			new:   "violations: [requests]",
			wants: []string{"/policies/resources/testdata/job-without-requests-is-denied/data.yaml: ", "violations of resources: expected [requests], got [memory-limit, requests]", "deny [resources/memory-limit] "},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyTree(t, tc.tree...)
			edit(t, dir, tc.file, tc.old, tc.new)
			code, out, errOut := podgate(t, "", "test", dir)
			if code != exitFailed {
				t.Fatalf("exit %d, want %d:\n%s%s", code, exitFailed, out, errOut)
			}
			for _, want := range tc.wants {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Count(out, "FAIL ") != 1 {
				t.Errorf("want the one broken case or policy to fail, and only it:\n%s", out)
			}
		})
	}
}

// restless adds a label whose value depends on the labels there are: the
// patched object draws another patch.
const restless = `# METADATA
# title: Restless
# description: counts the labels into a label
# custom:
#   enforcement: warn
#   rules: {}
package podgate.policies.restless

mutation contains {"op": "add", "path": "/metadata/labels/count", "value": sprintf("%d", [count(labels)]), "msg": "counted the labels"} if input.request.kind.kind == "Pod"

labels := object.get(input.request.object.metadata, "labels", {})
`

func TestAMutationThatChangesTheMutatedObjectAgainFailsTheJudge(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "restless/restless.rego", restless)
	write(t, dir, "restless/testdata/pod/data.yaml", "description: a pod gets its labels counted\n"+
		"object: {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: default}, spec: {containers: [{name: c, image: 'a:1'}]}}\n"+
		"expect: {violations: [], mutations: [/metadata/labels/count]}\n")
	code, out, errOut := podgate(t, "", "test", dir)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d:\n%s%s", code, exitFailed, out, errOut)
	}
	for _, want := range []string{
		"FAIL " + filepath.Join(dir, "restless/testdata/pod/data.yaml") + ": a pod gets its labels counted",
		`admitting the patched object again: expected no patch, got [{"op":"replace","path":"/metadata/labels/count","value":"1"}]`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
