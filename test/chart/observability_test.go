package chart

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/podgate/podgate/metrics"
)

// external are the metrics the alerts use that another exporter provides.
var external = []string{"kube_deployment_status_replicas_available"} // kube-state-metrics

var metricName = regexp.MustCompile(`\b(podgate|kube|controller_runtime|workqueue)_[a-z0-9_]+`)

// Every metric the chart's alerts and dashboard query is one the webhook
// exports: a renamed metric must not leave an alert that never fires or a
// panel that stays empty.
func TestEveryMetricTheAlertsAndDashboardNameIsExported(t *testing.T) {
	bin := requireHelms(t)["helm4"]
	v := values{"metrics": values{"prometheusRule": values{"enabled": true}, "dashboard": values{"enabled": true}}}
	if out, stderr, err := runHelm(t, bin, v, "lint", chartDir(), "--strict", "--namespace", namespace); err != nil {
		t.Fatalf("helm lint --strict: %v\n%s%s", err, out, stderr)
	}
	objs := decode(t, render(t, bin, v))

	var exprs []string
	groups, _, _ := unstructured.NestedSlice(objs.get(t, "PrometheusRule/podgate").Object, "spec", "groups")
	alerts := 0
	for _, g := range groups {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rules {
			exprs = append(exprs, r.(map[string]any)["expr"].(string))
			alerts++
		}
	}
	raw, _, _ := unstructured.NestedString(objs.get(t, "ConfigMap/podgate-dashboard").Object, "data", "podgate.json")
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(raw), &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	queries := 0
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
			queries++
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	if alerts < 10 || queries < 15 {
		t.Fatalf("%d alerts and %d dashboard queries: the chart lost some", alerts, queries)
	}
	exported := metrics.Names()
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			if !slices.Contains(exported, name) && !slices.Contains(external, name) {
				t.Errorf("%s is not a metric the webhook exports (in %q)", name, e)
			}
		}
	}
}
