package chart

import (
	"strings"
	"testing"
)

// TestBadValuesAreRejected runs helm template with one bad value at a time;
// both Helm versions must refuse it and name what is wrong.
func TestBadValuesAreRejected(t *testing.T) {
	tests := []struct {
		name   string
		values values
		want   string
	}{
		{"an unknown top-level key is rejected", values{"replicas": 3}, "additional properties 'replicas' not allowed"},
		{"an unknown nested key is rejected", values{"webhook": values{"failurePolicyy": "Fail"}}, "failurePolicyy"},
		{"an unknown TLS mode is rejected", values{"tls": values{"mode": "vault"}}, "/tls/mode"},
		{"zero replicas are rejected", values{"replicaCount": 0}, "/replicaCount"},
		{"a failurePolicy other than Fail or Ignore is rejected", values{"webhook": values{"failurePolicy": "Sometimes"}}, "/webhook/failurePolicy"},
		{"a timeout above the API server's 30 seconds is rejected", values{"webhook": values{"timeoutSeconds": 31}}, "/webhook/timeoutSeconds"},
		{"an evaluation deadline not below the webhook timeout is rejected", values{"webhook": values{"timeoutSeconds": 3, "evalTimeoutSeconds": 3}}, "must be below webhook.timeoutSeconds"},
		{"the image tag latest is rejected", values{"image": values{"tag": "latest"}}, "/image/tag"},
		{"a revision history too short to roll back is rejected", values{"revisionHistoryLimit": 1}, "/revisionHistoryLimit"},
		{"resources without a memory limit are rejected", values{"resources": values{"limits": values{"memory": nil}}}, "/resources/limits"},
		{"a memory limit too small to run the webhook is rejected", values{"resources": values{"limits": values{"memory": "48Mi"}}}, "podgate needs at least 64Mi"},
		{"the manual mode without a caBundle is rejected", values{"tls": values{"mode": "manual", "manual": values{"secretName": "tls"}}}, "caBundle"},
		{"excluded namespaces inside config are rejected", values{"config": values{"excludedNamespaces": []string{"x"}}}, "excludedNamespaces"},
		{"controller users inside config are rejected", values{"config": values{"controllerUsers": []string{"ci"}}}, "controllerUsers"},
		{"a controller user that is not a string is rejected", values{"controllerUsers": []any{3}}, "/controllerUsers/0"},
		{"a custom policy file not ending in .rego is rejected", values{"customPolicies": values{"team.txt": "package x"}}, "team.txt"},
	}
	for name, bin := range requireHelms(t) {
		for _, tt := range tests {
			t.Run(name+" "+tt.name, func(t *testing.T) {
				out, stderr, err := runHelm(t, bin, tt.values, "template", release, chartDir(), "--namespace", namespace)
				if err == nil {
					t.Fatalf("accepted; rendered %d bytes", len(out))
				}
				if !strings.Contains(stderr, tt.want) {
					t.Errorf("error does not mention %q:\n%s", tt.want, stderr)
				}
			})
		}
	}
}
