package chart

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestOptionalValuesRenderWhatTheySay(t *testing.T) {
	bin := requireHelms(t)["helm4"]
	digest := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		values values
		check  func(t *testing.T, objs objects)
	}{
		{"a ServiceMonitor scrapes the Service's metrics port", values{"metrics": values{"serviceMonitor": values{"enabled": true, "labels": values{"release": "prom"}}}},
			func(t *testing.T, objs objects) {
				sm := objs.get(t, "ServiceMonitor/podgate")
				endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
				if len(endpoints) != 1 || endpoints[0].(map[string]any)["port"] != "metrics" {
					t.Errorf("endpoints %v, want the metrics port", endpoints)
				}
				if sm.GetLabels()["release"] != "prom" {
					t.Errorf("labels %v lack release=prom", sm.GetLabels())
				}
				var svc corev1.Service
				into(t, objs.get(t, "Service/podgate"), &svc)
				if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "metrics" }) {
					t.Error("the Service has no metrics port")
				}
			}},
		{"no ServiceMonitor by default", nil, func(t *testing.T, objs objects) {
			if objs["ServiceMonitor/podgate"] != nil {
				t.Error("ServiceMonitor rendered though not enabled")
			}
		}},
		{"extra excluded namespaces reach the namespaceSelector and the config", values{"excludedNamespaces": []string{"legacy"}},
			func(t *testing.T, objs objects) {
				m, _ := webhookConfigurations(t, objs)
				if !slices.Contains(m.Webhooks[0].NamespaceSelector.MatchExpressions[0].Values, "legacy") {
					t.Errorf("namespaceSelector %+v does not exclude legacy", m.Webhooks[0].NamespaceSelector)
				}
				if cfg := str(t, objs.get(t, "ConfigMap/podgate-config"), "data", "config.yaml"); !strings.Contains(cfg, "- legacy") {
					t.Errorf("config.yaml does not exclude legacy:\n%s", cfg)
				}
			}},
		{"extra matchConditions follow the chart's own", values{"webhook": values{"extraMatchConditions": []values{{"name": "not-ci", "expression": "request.userInfo.username != 'ci'"}}}},
			func(t *testing.T, objs objects) {
				_, v := webhookConfigurations(t, objs)
				for _, w := range v.Webhooks {
					if mc := w.MatchConditions; len(mc) < 2 || mc[len(mc)-1].Name != "not-ci" {
						t.Errorf("%s: matchConditions %+v, want the chart's own then not-ci", w.Name, mc)
					}
				}
			}},
		{"extra controller users reach the matchCondition and the config", values{"controllerUsers": []string{"system:serviceaccount:argo-rollouts:argo-rollouts"}},
			func(t *testing.T, objs objects) {
				m, v := webhookConfigurations(t, objs)
				for _, expr := range []string{m.Webhooks[0].MatchConditions[0].Expression, v.Webhooks[0].MatchConditions[0].Expression} {
					if !strings.Contains(expr, `"system:kube-controller-manager"`) || !strings.Contains(expr, `"system:serviceaccount:argo-rollouts:argo-rollouts"`) {
						t.Errorf("the controller-write condition lacks the default or the extra user:\n%s", expr)
					}
				}
				cfg := str(t, objs.get(t, "ConfigMap/podgate-config"), "data", "config.yaml")
				if !strings.Contains(cfg, "- system:serviceaccount:argo-rollouts:argo-rollouts") || !strings.Contains(cfg, "- system:kube-controller-manager") {
					t.Errorf("config.yaml lacks the controller users:\n%s", cfg)
				}
			}},
		{"rollouts during an outage can be turned off", values{"webhook": values{"rolloutsDuringOutage": false}},
			func(t *testing.T, objs objects) {
				m, v := webhookConfigurations(t, objs)
				if len(m.Webhooks) != 1 || len(v.Webhooks) != 1 || len(v.Webhooks[0].MatchConditions) != 1 {
					t.Errorf("want one webhook each with the controller-write condition alone, got %d and %d (%+v)", len(m.Webhooks), len(v.Webhooks), v.Webhooks[0].MatchConditions)
				}
			}},
		{"a digest pins the image instead of the tag", values{"image": values{"digest": digest}},
			func(t *testing.T, objs objects) {
				var d appsv1.Deployment
				into(t, objs.get(t, "Deployment/podgate"), &d)
				if got := d.Spec.Template.Spec.Containers[0].Image; got != "ghcr.io/podgate/podgate@"+digest {
					t.Errorf("image %s, want the digest", got)
				}
			}},
		{"a URL replaces the Service in both clientConfigs", values{"webhook": values{"url": "https://127.0.0.1:9443/"}},
			func(t *testing.T, objs objects) {
				m, v := webhookConfigurations(t, objs)
				for _, cc := range []admissionregistrationv1.WebhookClientConfig{m.Webhooks[0].ClientConfig, v.Webhooks[0].ClientConfig} {
					if cc.Service != nil || cc.URL == nil || !strings.HasPrefix(*cc.URL, "https://127.0.0.1:9443/") || strings.Contains(*cc.URL, "//mutate") {
						t.Errorf("clientConfig %+v, want url https://127.0.0.1:9443/<path>", cc)
					}
				}
			}},
		{"the PodDisruptionBudget can be left out", values{"podDisruptionBudget": values{"enabled": false}},
			func(t *testing.T, objs objects) {
				if objs["PodDisruptionBudget/podgate"] != nil {
					t.Error("PodDisruptionBudget rendered though disabled")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, decode(t, render(t, bin, tt.values))) })
	}
}

// TestGOMEMLIMITIsNinetyPercentOfTheMemoryLimit renders the memory limit in
// each way values.schema.json lets it be written, with both Helm versions.
func TestGOMEMLIMITIsNinetyPercentOfTheMemoryLimit(t *testing.T) {
	tests := []struct {
		memory any
		want   string
	}{
		{"256Mi", "230MiB"},  // the default: 241,591,910 bytes, down to whole MiB
		{"1Gi", "921MiB"},    // 966,367,641 bytes
		{"512M", "439MiB"},   // decimal megabytes: 460,800,000 bytes
		{"1.5Gi", "1382MiB"}, // a fraction
		{268435456, "230MiB"},
		{"300000000000m", "257MiB"}, // thousandths of a byte: 300 MB
	}
	for name, bin := range requireHelms(t) {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s %v", name, tt.memory), func(t *testing.T) {
				objs := decode(t, render(t, bin, values{"resources": values{"limits": values{"memory": tt.memory}}}))
				var d appsv1.Deployment
				into(t, objs.get(t, "Deployment/podgate"), &d)
				env := d.Spec.Template.Spec.Containers[0].Env
				if len(env) != 1 || env[0].Name != "GOMEMLIMIT" || env[0].Value != tt.want {
					t.Errorf("memory limit %v: env %+v, want GOMEMLIMIT=%s", tt.memory, env, tt.want)
				}
			})
		}
	}
}
