package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// exitErr is a real *exec.ExitError with status 1, as kubectl gives on a
// denial.
func exitErr(t *testing.T) error {
	t.Helper()
	err := exec.Command("sh", "-c", "exit 1").Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("sh -c 'exit 1': %v", err)
	}
	return err
}

func TestCheckCatchesOutputThatContradictsTheHeading(t *testing.T) {
	const denial = `Error from server (Forbidden): error when creating "x.yaml": ` + denialPrefix + `: [rollout/min-available] Deployment default/web: ...`
	fail := exitErr(t)
	tests := []struct {
		name    string
		step    step
		printed string
		runErr  error
		want    string // "" when the step holds; else a fragment of the contradiction
	}{
		{"a denial announced as denied holds", step{want: denied, says: []string{"[rollout/min-available]"}}, denial, fail, ""},
		{"an object announced as denied but created contradicts", step{want: denied}, "deployment.apps/web created\n", nil, "kubectl succeeded"},
		{"a failure announced as denied but not podgate's contradicts", step{want: denied}, "error: the server doesn't have a resource type\n", fail, "without podgate's denial"},
		{"a denial missing the announced rule contradicts", step{want: denied, says: []string{"[rollout/revision-history]"}}, denial, fail, `did not print "[rollout/revision-history]"`},
		{"a denial announced as admitted contradicts", step{want: admitted}, denial, fail, "kubectl failed"},
		{"an admission announced as warned without a warning contradicts", step{want: warned}, "pod/trainer created\n", nil, "no podgate warning"},
		{"a warning announced as warned holds", step{want: warned}, "Warning: [tolerations/schedulable] Pod default/trainer: ...\npod/trainer created\n", nil, ""},
		{"a denied object listed as stored contradicts", step{want: shown, lacks: []string{"web"}}, "NAME\ndeployment.apps/web\n", nil, "web is listed"},
		{"a name inside another name is not listed", step{want: shown, lacks: []string{"web"}}, "NAME\ndeployment.apps/webapp\n", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.step.check(tt.printed, tt.runErr)
			var c *contradiction
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("check = %v, want nil", err)
			case tt.want != "" && (!errors.As(err, &c) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("check = %v, want a contradiction saying %q", err, tt.want)
			}
		})
	}
}

func TestCheckReportsAKubectlThatDidNotRunAsAnErrorNotAContradiction(t *testing.T) {
	runErr := errors.New(`exec: "kubectl": executable file not found in $PATH`)
	err := step{want: denied}.check("", runErr)
	var c *contradiction
	if err == nil || errors.As(err, &c) {
		t.Fatalf("check = %#v, want the run error itself", err)
	}
}

func TestCommandLineQuotesWhatTheShellWouldNotTakeAsIs(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"apply", "-f", "examples/redis-pod.yaml"}, "kubectl apply -f examples/redis-pod.yaml"},
		{[]string{"set", "image", "deployment/nginx-deployment", "nginx=nginx:1.16.1"}, "kubectl set image deployment/nginx-deployment nginx=nginx:1.16.1"},
		{[]string{"-o", `jsonpath={.a\.b}{"\n"}`}, `kubectl -o 'jsonpath={.a\.b}{"\n"}'`},
		{[]string{"it's"}, `kubectl 'it'\''s'`},
		{[]string{""}, "kubectl ''"},
	}
	for _, tt := range tests {
		if got := commandLine("kubectl", tt.args...); got != tt.want {
			t.Errorf("commandLine(%q) = %s, want %s", tt.args, got, tt.want)
		}
	}
}

func TestTheStoryAppliesEveryExample(t *testing.T) {
	manifests, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	if err != nil || len(manifests) == 0 {
		t.Fatalf("no examples/*.yaml: %v", err)
	}
	var applied []string
	for _, s := range story() {
		if len(s.args) == 3 && s.args[0] == "apply" && s.args[1] == "-f" {
			applied = append(applied, s.args[2])
		}
	}
	for _, m := range manifests {
		name := "examples/" + filepath.Base(m)
		if !slices.Contains(applied, name) {
			t.Errorf("the demo does not apply %s: add a step for it to story.go", name)
		}
	}
	for _, name := range applied {
		if _, err := os.Stat(filepath.Join("..", "..", name)); err != nil {
			t.Errorf("a step applies %s: %v", name, err)
		}
	}
}

func TestKEEPTakesABoolean(t *testing.T) {
	for value, want := range map[string]bool{"": false, "1": true, "true": true, "0": false} {
		o, err := optionsFromEnv(func(string) string { return value })
		if err != nil || o.keep != want {
			t.Errorf("KEEP=%q: keep %v, err %v; want %v", value, o.keep, err, want)
		}
	}
	if _, err := optionsFromEnv(func(string) string { return "yes please" }); err == nil {
		t.Error(`KEEP="yes please" is accepted, want an error`)
	}
}
