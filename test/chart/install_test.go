package chart

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// serviceAccount is the user the chart's webhook runs as.
const serviceAccount = "system:serviceaccount:" + namespace + ":" + release

// TestHelmInstallInEveryTLSMode installs the chart as docs/install.md does
// (`helm install podgate charts/podgate -n podgate-system`), with Helm 3
// and Helm 4, in each TLS mode, checks what the API server stored, and
// uninstalls it the documented way. One release at a time: a release's
// webhook configurations (failurePolicy Fail, no webhook running) would
// block the other tests' workloads.
func TestHelmInstallInEveryTLSMode(t *testing.T) {
	requireCluster(t)
	ensureCertManagerCRDs(t)
	for _, helm := range []string{"helm3", "helm4"} {
		for _, mode := range []string{"cert-manager", "self", "manual"} {
			t.Run(helm+" "+mode, func(t *testing.T) {
				install(t, requireHelms(t)[helm], tlsModes(t)[mode])
				checkStoredWebhooks(t, mode)
				checkRBAC(t, mode)
				if mode == "cert-manager" {
					for _, name := range []string{"podgate-selfsigned", "podgate-ca"} {
						getCR(t, "Issuer", name)
					}
					for _, name := range []string{"podgate-ca", "podgate-serving"} {
						getCR(t, "Certificate", name)
					}
				}
				if mode != "manual" {
					checkUpgradeKeepsCertificates(t, requireHelms(t)[helm], mode)
				}
			})
		}
	}
}

// install runs helm install and returns what it printed (NOTES included);
// when t ends, it uninstalls as docs/install.md says: webhook
// configurations first, so the API server never calls a webhook whose
// Service is gone, then the release; and checks that nothing cluster-wide is
// left.
func install(t *testing.T, bin string, v values, extra ...string) string {
	t.Helper()
	args := append([]string{"install", release, chartDir(), "--namespace", namespace, "--create-namespace"}, extra...)
	out, stderr, err := runHelm(t, bin, v, args...)
	if err != nil {
		t.Fatalf("helm install: %v\n%s%s", err, out, stderr)
	}
	if !strings.Contains(out, "STATUS: deployed") || !strings.Contains(out, "rollout status deployment/podgate") {
		t.Errorf("helm install printed no deployed status and NOTES:\n%s", out)
	}
	t.Cleanup(func() {
		// t.Context() is done by now: its values without its end.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		if _, stderr, err := bed.Kubectl(ctx, nil, "delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration",
			"-l", "app.kubernetes.io/instance="+release); err != nil {
			t.Errorf("delete webhook configurations: %v\n%s", err, stderr)
		}
		if out, stderr, err := runHelmCtx(ctx, t, bin, "uninstall", release, "--namespace", namespace); err != nil {
			t.Errorf("helm uninstall: %v\n%s%s", err, out, stderr)
		}
		for _, kind := range []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations", "clusterroles", "clusterrolebindings"} {
			out, _, err := bed.Kubectl(ctx, nil, "get", kind, "-l", "app.kubernetes.io/instance="+release, "-o", "name")
			if err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("after uninstall, %s left: %q (%v)", kind, out, err)
			}
		}
	})
	return out
}

// checkUpgradeKeepsCertificates fills in what cainjector or the webhook
// would (the caBundles; in self mode the Secret's data), under their own
// field manager, then runs helm upgrade with a changed value: Helm must
// leave both alone, or every upgrade would break admission until they are
// filled in again.
func checkUpgradeKeepsCertificates(t *testing.T, bin, mode string) {
	t.Helper()
	ctx := t.Context()
	bundle := manualCA(t)
	owner := client.FieldOwner("podgate-test-injector")
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	for _, obj := range []client.Object{m, v} {
		if err := bed.Client().Get(ctx, client.ObjectKey{Name: release}, obj); err != nil {
			t.Fatal(err)
		}
	}
	mBase, vBase := m.DeepCopy(), v.DeepCopy()
	m.Webhooks[0].ClientConfig.CABundle, v.Webhooks[0].ClientConfig.CABundle = bundle, bundle
	if err := errors.Join(bed.Client().Patch(ctx, m, client.StrategicMergeFrom(mBase), owner),
		bed.Client().Patch(ctx, v, client.StrategicMergeFrom(vBase), owner)); err != nil {
		t.Fatalf("inject caBundle: %v", err)
	}
	secret := &corev1.Secret{}
	if mode == "self" {
		if err := bed.Client().Get(ctx, client.ObjectKey{Namespace: namespace, Name: "podgate-tls"}, secret); err != nil {
			t.Fatal(err)
		}
		secret.Data = map[string][]byte{"ca.crt": bundle}
		if err := bed.Client().Update(ctx, secret, owner); err != nil {
			t.Fatalf("fill the Secret: %v", err)
		}
	}

	out, stderr, err := runHelm(t, bin, nil, "upgrade", release, chartDir(), "--namespace", namespace, "--reuse-values", "--set", "replicaCount=3")
	if err != nil {
		t.Fatalf("helm upgrade: %v\n%s%s", err, out, stderr)
	}
	d := &appsv1.Deployment{}
	if err := bed.Client().Get(ctx, client.ObjectKey{Namespace: namespace, Name: release}, d); err != nil || *d.Spec.Replicas != 3 {
		t.Fatalf("the upgrade did not reach the Deployment (err %v)", err)
	}
	for _, obj := range []client.Object{m, v} {
		if err := bed.Client().Get(ctx, client.ObjectKey{Name: release}, obj); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(m.Webhooks[0].ClientConfig.CABundle, bundle) || !bytes.Equal(v.Webhooks[0].ClientConfig.CABundle, bundle) {
		t.Error("helm upgrade wiped the injected caBundle")
	}
	if mode == "self" {
		if err := bed.Client().Get(ctx, client.ObjectKey{Namespace: namespace, Name: "podgate-tls"}, secret); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(secret.Data["ca.crt"], bundle) {
			t.Error("helm upgrade wiped the webhook's certificates from the Secret")
		}
	}
}

// runHelmCtx is runHelm for cleanups, whose t.Context() is already done.
func runHelmCtx(ctx context.Context, t *testing.T, bin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cmd.Environ(), "KUBECONFIG="+bed.Kubeconfig(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// checkStoredWebhooks checks the configurations as the API server stored
// them: cert-manager's cainjector is told where the CA is, or the caBundle
// is there; self mode leaves it to the webhook.
func checkStoredWebhooks(t *testing.T, mode string) {
	t.Helper()
	ctx := t.Context()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	for _, obj := range []client.Object{m, v} {
		if err := bed.Client().Get(ctx, client.ObjectKey{Name: release}, obj); err != nil {
			t.Fatalf("get %T: %v", obj, err)
		}
		switch ann := obj.GetAnnotations()["cert-manager.io/inject-ca-from"]; {
		case mode == "cert-manager" && ann != namespace+"/podgate-serving":
			t.Errorf("%T: inject-ca-from = %q, want %s/podgate-serving", obj, ann, namespace)
		case mode != "cert-manager" && ann != "":
			t.Errorf("%T: inject-ca-from %q in %s mode", obj, ann, mode)
		}
	}
	bundles := [][]byte{m.Webhooks[0].ClientConfig.CABundle, v.Webhooks[0].ClientConfig.CABundle}
	for _, b := range bundles {
		if want := mode == "manual"; want != bytes.Equal(b, manualCA(t)) || (!want && len(b) > 0) {
			t.Errorf("%s mode: stored caBundle %.40q", mode, b)
		}
	}
	if p := m.Webhooks[0].FailurePolicy; p == nil || *p != admissionregistrationv1.Fail {
		t.Errorf("stored failurePolicy %v, want Fail", p)
	}
	if len(m.Webhooks[0].MatchConditions) == 0 || len(v.Webhooks[0].MatchConditions) == 0 {
		t.Error("the API server dropped the matchConditions")
	}
}

// checkRBAC asks the API server what the webhook's ServiceAccount may do:
// list and watch Nodes; for the audit, list and watch the workloads it
// judges, write Reports and hold its Lease; in self mode get and update
// its own Secret and get and patch its own webhook configurations;
// nothing else.
func checkRBAC(t *testing.T, mode string) {
	t.Helper()
	self := mode == "self"
	tests := []struct {
		verb, resource string
		want           bool
	}{
		{"list", "nodes", true},
		{"watch", "nodes", true},
		{"get", "nodes/worker-1", false},
		{"update", "nodes/worker-1", false},
		{"create", "pods", false},
		{"list", "secrets", false},
		{"create", "secrets", false},
		{"get", "secrets/podgate-tls", self},
		{"update", "secrets/podgate-tls", self},
		{"delete", "secrets/podgate-tls", false},
		{"get", "secrets/podgate-ca", false},
		{"get", "mutatingwebhookconfigurations/podgate", self},
		{"patch", "mutatingwebhookconfigurations/podgate", self},
		{"patch", "validatingwebhookconfigurations/podgate", self},
		{"update", "validatingwebhookconfigurations/podgate", false},
		{"delete", "validatingwebhookconfigurations/podgate", false},
		{"patch", "validatingwebhookconfigurations/someone-else", false},
		{"list", "validatingwebhookconfigurations", false},
		{"watch", "pods", true},
		{"list", "deployments.apps", true},
		{"watch", "cronjobs.batch", true},
		{"get", "pods/some-pod", false},
		{"delete", "pods/some-pod", false},
		{"update", "deployments.apps/web", false},
		{"create", "reports.openreports.io", true},
		{"patch", "reports.openreports.io/deployment-web", true},
		{"delete", "reports.openreports.io/deployment-web", true},
		{"update", "reports.openreports.io/deployment-web", false},
		{"create", "leases.coordination.k8s.io", true},
		{"update", "leases.coordination.k8s.io/podgate-audit", true},
		{"update", "leases.coordination.k8s.io/kube-scheduler", false},
		{"list", "configmaps", false},
		{"watch", "policyexceptions.podgate.dev", true},
		{"create", "policyexceptions.podgate.dev", false},
		{"delete", "policyexceptions.podgate.dev/x", false},
	}
	for _, tt := range tests {
		out, stderr, err := bed.Kubectl(t.Context(), nil, "auth", "can-i", tt.verb, tt.resource, "--namespace", namespace, "--as", serviceAccount)
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("kubectl auth can-i: %v\n%s", err, stderr)
		}
		if got := strings.TrimSpace(out) == "yes"; got != tt.want {
			t.Errorf("%s mode: can %s %s = %v, want %v", mode, tt.verb, tt.resource, got, tt.want)
		}
	}
}

// getCR fails t unless the cert-manager resource is stored.
func getCR(t *testing.T, kind, name string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: kind})
	if err := bed.Client().Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			t.Errorf("%s %s not stored", kind, name)
			return
		}
		t.Fatalf("get %s %s: %v", kind, name, err)
	}
}

// A bad `config:` value must fail `helm upgrade` itself, before any object
// changes: once the ConfigMap is rolled out, every replica that restarts
// stays unready until it is fixed.
func TestHelmUpgradeWithABadConfigFailsBeforeAnythingRollsOut(t *testing.T) {
	requireCluster(t)
	bin := requireHelms(t)["helm4"]
	manual := tlsModes(t)["manual"]
	install(t, bin, manual)
	ctx := t.Context()
	var cm corev1.ConfigMap
	var d appsv1.Deployment
	if err := errors.Join(bed.Client().Get(ctx, client.ObjectKey{Namespace: namespace, Name: "podgate-config"}, &cm),
		bed.Client().Get(ctx, client.ObjectKey{Namespace: namespace, Name: "podgate"}, &d)); err != nil {
		t.Fatal(err)
	}
	for name, config := range map[string]values{
		"a misspelt policy":    {"policies": values{"rolout": values{"minRevisionHistory": 3}}},
		"a misspelt parameter": {"policies": values{"rollout": values{"minRevisionHistorys": 3}}},
		"a misspelt rule":      {"policies": values{"probes": values{"rules": values{"readyness": "warn"}}}},
	} {
		t.Run(name, func(t *testing.T) {
			bad := values{"config": config}
			for k, v := range manual {
				bad[k] = v
			}
			out, stderr, err := runHelm(t, bin, bad, "upgrade", release, chartDir(), "--namespace", namespace)
			if err == nil {
				t.Fatalf("helm upgrade succeeded:\n%s", out)
			}
			if !strings.Contains(stderr, "config") {
				t.Errorf("helm upgrade's error does not name the config:\n%s", stderr)
			}
			var cmAfter corev1.ConfigMap
			var dAfter appsv1.Deployment
			if err := errors.Join(bed.Client().Get(ctx, client.ObjectKey{Namespace: namespace, Name: "podgate-config"}, &cmAfter),
				bed.Client().Get(ctx, client.ObjectKey{Namespace: namespace, Name: "podgate"}, &dAfter)); err != nil {
				t.Fatal(err)
			}
			if cmAfter.ResourceVersion != cm.ResourceVersion || dAfter.Generation != d.Generation {
				t.Errorf("the failed upgrade changed the ConfigMap (resourceVersion %s -> %s) or the Deployment (generation %d -> %d)",
					cm.ResourceVersion, cmAfter.ResourceVersion, d.Generation, dAfter.Generation)
			}
		})
	}
}
