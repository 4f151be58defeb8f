package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// teamLabel is a custom policy for the config cases that name one.
const teamLabel = `# METADATA
# title: Team label
# description: Every Deployment names its owning team.
# custom:
#   enforcement: warn
#   rules:
#     team-label: {enforcement: warn, summary: Deployments carry a team label}
package podgate.policies.team_label

violation contains {"rule": "team-label", "msg": "no team label; add metadata.labels.team"} if {
	input.request.kind.kind == "Deployment"
	not input.request.object.metadata.labels.team
}
`

// The chart refuses the `config:` values the webhook would refuse (so a
// `helm upgrade` fails before anything rolls out, instead of every new
// replica staying unready) and takes the ones it takes: both are asked
// about the same configs, and must agree.
func TestTheChartRefusesTheConfigsTheWebhookRefuses(t *testing.T) {
	bin := requireHelms(t)["helm4"]
	for _, tt := range []struct {
		name   string
		config string // YAML of the chart's config value and of the webhook's config file
		custom bool   // with the custom policy team-label
		ok     bool
	}{
		{"the defaults", "{}", false, true},
		{"a parameter and a rule of built-in policies", "policies: {rollout: {minRevisionHistory: 3}, probes: {rules: {identical: 'off'}}}", false, true},
		{"a whole policy turned to warn", "policies: {stateful-volumes: {enforcement: warn, excludedNamespaces: [legacy]}}", false, true},
		{"a nested parameter", "policies: {probes: {inject: {startup: false}, readiness: {periodSeconds: 5}}}", false, true},
		{"a custom policy's section", "policies: {team-label: {enforcement: deny, rules: {team-label: warn}, teams: [a, b]}}", true, true},
		{"a misspelt policy", "policies: {rolout: {minRevisionHistory: 3}}", false, false},
		{"a section for a custom policy that is not there", "policies: {team-label: {enforcement: deny}}", false, false},
		{"a misspelt parameter", "policies: {rollout: {minRevisionHistorys: 3}}", false, false},
		{"a misspelt nested parameter", "policies: {probes: {inject: {readyness: false}}}", false, false},
		{"a parameter of the wrong type", "policies: {rollout: {minRevisionHistory: '3'}}", false, false},
		{"a list where a number belongs", "policies: {rollout: {minAvailablePercent: [75]}}", false, false},
		{"an unknown enforcement", "policies: {probes: {enforcement: block}}", false, false},
		{"an unknown enforcement of a rule", "policies: {probes: {rules: {identical: never}}}", false, false},
		{"a misspelt rule", "policies: {probes: {rules: {readyness: warn}}}", false, false},
		{"a section that is not a mapping", "policies: {rollout: [minRevisionHistory]}", false, false},
		{"an unknown top-level key", "policy: {}", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var config map[string]any
			if err := yaml.Unmarshal([]byte(tt.config), &config); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(file, []byte(tt.config), 0o644); err != nil {
				t.Fatal(err)
			}
			v := values{"config": config}
			src := engine.Sources{Builtin: policies.FS, ConfigFile: file}
			if tt.custom {
				v["customPolicies"] = values{"team_label.rego": teamLabel}
				if err := os.WriteFile(filepath.Join(dir, "team_label.rego"), []byte(teamLabel), 0o644); err != nil {
					t.Fatal(err)
				}
				src.PolicyDir = dir
			}
			webhookErr := engine.New().Load(t.Context(), src)
			_, stderr, helmErr := runHelm(t, bin, v, "template", release, chartDir(), "--namespace", namespace)
			switch {
			case (webhookErr == nil) != tt.ok:
				t.Fatalf("the webhook: %v; want ok=%v", webhookErr, tt.ok)
			case (helmErr == nil) != tt.ok:
				t.Fatalf("helm template: %v\n%s\nwant ok=%v, as the webhook (%v)", helmErr, stderr, tt.ok, webhookErr)
			case !tt.ok && !strings.Contains(stderr, "config"):
				t.Errorf("helm's error does not name the config:\n%s", stderr)
			}
		})
	}
}
