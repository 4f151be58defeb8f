package chart

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestTheChartLintsCleanInEveryTLSModeWithHelm3AndHelm4(t *testing.T) {
	for name, bin := range requireHelms(t) {
		for mode, v := range tlsModes(t) {
			t.Run(name+" "+mode, func(t *testing.T) {
				out, stderr, err := runHelm(t, bin, v, "lint", chartDir(), "--strict", "--namespace", namespace)
				if err != nil {
					t.Fatalf("helm lint --strict: %v\n%s%s", err, out, stderr)
				}
			})
		}
	}
}

// TestHelm3AndHelm4RenderTheSameObjects compares objects, not text: the
// two order kinds they do not know (cert-manager's) and blank lines
// differently.
func TestHelm3AndHelm4RenderTheSameObjects(t *testing.T) {
	h := requireHelms(t)
	for mode, v := range tlsModes(t) {
		t.Run(mode, func(t *testing.T) {
			h3, h4 := decode(t, render(t, h["helm3"], v)), decode(t, render(t, h["helm4"], v))
			if !slices.Equal(h3.keys(), h4.keys()) {
				t.Fatalf("helm3 renders %v, helm4 %v", h3.keys(), h4.keys())
			}
			for k, obj := range h3 {
				if !equality.Semantic.DeepEqual(obj.Object, h4[k].Object) {
					t.Errorf("%s differs:\nhelm3: %v\nhelm4: %v", k, obj.Object, h4[k].Object)
				}
			}
		})
	}
}

// TestTheDefaultsRenderAnHAWebhook checks what every TLS mode shares.
func TestTheDefaultsRenderAnHAWebhook(t *testing.T) {
	objs := decode(t, render(t, requireHelms(t)["helm4"], nil))

	var d appsv1.Deployment
	into(t, objs.get(t, "Deployment/podgate"), &d)
	ru := d.Spec.Strategy.RollingUpdate
	if *d.Spec.Replicas != 2 || ru == nil || ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge.IntValue() != 1 {
		t.Errorf("want 2 replicas, maxUnavailable 0, maxSurge 1; got %d replicas, %+v", *d.Spec.Replicas, ru)
	}
	pod := d.Spec.Template.Spec
	anti := pod.Affinity.PodAntiAffinity
	if anti == nil || len(anti.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
		anti.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != corev1.LabelHostname {
		t.Errorf("no anti-affinity across nodes: %+v", pod.Affinity)
	}
	checkSecurity(t, pod)
	c := pod.Containers[0]
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port != intstr.FromString("health") {
			t.Errorf("%s probe is not an httpGet on the health port: %+v", name, p)
		}
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("readiness must use /readyz and liveness /healthz")
	}
	if env := c.Env; len(env) != 1 || env[0].Name != "GOMEMLIMIT" || env[0].Value != "230MiB" {
		t.Errorf("want GOMEMLIMIT=230MiB (90%% of 256Mi) and nothing else, GOMAXPROCS least of all; got %+v", env)
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Limits.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("requests and limits must be set: %+v", c.Resources)
	}

	var pdb policyv1.PodDisruptionBudget
	into(t, objs.get(t, "PodDisruptionBudget/podgate"), &pdb)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable = %v, want 1", pdb.Spec.MaxUnavailable)
	}

	var cr rbacv1.ClusterRole
	into(t, objs.get(t, "ClusterRole/podgate"), &cr)
	want := append([]rbacv1.PolicyRule{nodesRule, exceptionsRule}, auditRules...)
	if !slices.EqualFunc(cr.Rules, want, ruleEqual) {
		t.Errorf("ClusterRole rules = %+v, want list and watch on nodes and PolicyExceptions and what the audit needs: %+v", cr.Rules, want)
	}

	m, v := webhookConfigurations(t, objs)
	if len(m.Webhooks) != 2 || m.Webhooks[0].Name != "mutate.podgate.dev" || m.Webhooks[1].Name != "rollouts.mutate.podgate.dev" ||
		len(v.Webhooks) != 2 || v.Webhooks[0].Name != "validate.podgate.dev" || v.Webhooks[1].Name != "rollouts.validate.podgate.dev" {
		t.Fatalf("want webhooks mutate.podgate.dev and rollouts.mutate.podgate.dev, validate.podgate.dev and rollouts.validate.podgate.dev")
	}
	for _, w := range m.Webhooks {
		if p := w.ReinvocationPolicy; p == nil || *p != admissionregistrationv1.IfNeededReinvocationPolicy {
			t.Errorf("mutating webhook %s reinvocationPolicy = %v, want IfNeeded", w.Name, p)
		}
	}
	for _, p := range []*admissionregistrationv1.FailurePolicyType{m.Webhooks[1].FailurePolicy, v.Webhooks[1].FailurePolicy} {
		if p == nil || *p != admissionregistrationv1.Ignore {
			t.Errorf("the rollouts webhooks' failurePolicy = %v, want Ignore", p)
		}
	}
	mw, vw := m.Webhooks[0], v.Webhooks[0]
	for _, w := range []struct {
		name   string
		common webhookCommon
	}{
		{"mutate", webhookCommon{mw.ClientConfig, mw.Rules, mw.NamespaceSelector, mw.MatchConditions, mw.SideEffects, mw.AdmissionReviewVersions, mw.FailurePolicy, mw.TimeoutSeconds}},
		{"validate", webhookCommon{vw.ClientConfig, vw.Rules, vw.NamespaceSelector, vw.MatchConditions, vw.SideEffects, vw.AdmissionReviewVersions, vw.FailurePolicy, vw.TimeoutSeconds}},
	} {
		t.Run(w.name, func(t *testing.T) { checkWebhook(t, w.common, "/"+w.name) })
	}
}

var (
	nodesRule      = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list", "watch"}}
	exceptionsRule = rbacv1.PolicyRule{APIGroups: []string{"podgate.dev"}, Resources: []string{"policyexceptions"}, Verbs: []string{"list", "watch"}}
	auditRules     = []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs", "cronjobs"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"openreports.io"}, Resources: []string{"reports"}, Verbs: []string{"get", "list", "watch", "create", "patch", "delete"}},
	}
)

func TestTheAuditIsOnByDefaultAndOffWhenAskedWithItsRightsAndCRD(t *testing.T) {
	bin := requireHelms(t)["helm4"]
	on := decode(t, render(t, bin, nil))
	var d appsv1.Deployment
	into(t, on.get(t, "Deployment/podgate"), &d)
	args := d.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--audit", "--audit-interval=1h", "--audit-max-results=50", "--audit-write-qps=50", "--audit-workers=0", "--leader-election-namespace=" + namespace} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	if slices.Contains(args, "--audit-pass-results") {
		t.Error("pass results are off by default")
	}
	var role rbacv1.Role
	into(t, on.get(t, "Role/podgate-audit-lease"), &role)
	if len(role.Rules) != 3 || !slices.Equal(role.Rules[1].ResourceNames, []string{"podgate-audit"}) {
		t.Errorf("the lease Role: %+v", role.Rules)
	}
	crd := on.get(t, "CustomResourceDefinition/reports.openreports.io")
	field(t, crd, "keep", "metadata", "annotations", "helm.sh/resource-policy")

	off := decode(t, render(t, bin, values{"audit": values{"enabled": false, "installReportCRD": false}}))
	into(t, off.get(t, "Deployment/podgate"), &d)
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(a, "--audit") || strings.HasPrefix(a, "--leader-election") {
			t.Errorf("audit off, yet %s", a)
		}
	}
	var cr rbacv1.ClusterRole
	into(t, off.get(t, "ClusterRole/podgate"), &cr)
	if !slices.EqualFunc(cr.Rules, []rbacv1.PolicyRule{nodesRule, exceptionsRule}, ruleEqual) {
		t.Errorf("audit off: ClusterRole rules %+v, want only list and watch on nodes and PolicyExceptions", cr.Rules)
	}
	for _, k := range []string{"Role/podgate-audit-lease", "CustomResourceDefinition/reports.openreports.io"} {
		if off[k] != nil {
			t.Errorf("%s rendered with the audit off and installReportCRD false", k)
		}
	}
}

// Granting exceptions is a role of its own, not part of the built-in admin
// and edit roles unless a value says so; reading them is part of view.
func TestWhoMayGrantExceptionsIsAValuesDecision(t *testing.T) {
	bin := requireHelms(t)["helm4"]
	for _, aggregate := range []bool{false, true} {
		objs := decode(t, render(t, bin, values{"exceptions": values{"aggregateToAdmin": aggregate}}))
		manager := objs.get(t, "ClusterRole/podgate-exception-manager")
		if got := manager.GetLabels()["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"; got != aggregate {
			t.Errorf("aggregateToAdmin=%v: the manager role aggregates to admin: %v", aggregate, got)
		}
		for _, l := range []string{"aggregate-to-edit", "aggregate-to-view"} {
			if _, ok := manager.GetLabels()["rbac.authorization.k8s.io/"+l]; ok {
				t.Errorf("the manager role aggregates to %s", l)
			}
		}
		viewer := objs.get(t, "ClusterRole/podgate-exception-viewer")
		var cr rbacv1.ClusterRole
		into(t, viewer, &cr)
		if viewer.GetLabels()["rbac.authorization.k8s.io/aggregate-to-view"] != "true" ||
			!slices.Equal(cr.Rules[0].Verbs, []string{"get", "list", "watch"}) {
			t.Errorf("the viewer role: %v %+v", viewer.GetLabels(), cr.Rules)
		}
	}
	m, v := webhookConfigurations(t, decode(t, render(t, bin, nil)))
	has := func(rules []admissionregistrationv1.RuleWithOperations) bool {
		return slices.ContainsFunc(rules, func(r admissionregistrationv1.RuleWithOperations) bool {
			return slices.Contains(r.Resources, "policyexceptions")
		})
	}
	if !has(v.Webhooks[0].Rules) || has(m.Webhooks[0].Rules) {
		t.Error("PolicyExceptions go to the validating webhook, and only to it")
	}
}

func TestEachTLSModeRendersItsCertificatePlumbing(t *testing.T) {
	bin := requireHelms(t)["helm4"]
	modes := tlsModes(t)

	t.Run("cert-manager chains a self-signed Issuer, a CA, a CA Issuer and the serving Certificate", func(t *testing.T) {
		objs := decode(t, render(t, bin, modes["cert-manager"]))
		ca := objs.get(t, "Certificate/podgate-ca")
		field(t, ca, "true", "spec", "isCA")
		field(t, ca, "podgate-selfsigned", "spec", "issuerRef", "name")
		field(t, objs.get(t, "Issuer/podgate-selfsigned"), "map[]", "spec", "selfSigned")
		field(t, objs.get(t, "Issuer/podgate-ca"), str(t, ca, "spec", "secretName"), "spec", "ca", "secretName")
		serving := objs.get(t, "Certificate/podgate-serving")
		field(t, serving, "podgate-ca", "spec", "issuerRef", "name")
		if names, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames"); !slices.Contains(names, "podgate.podgate-system.svc") {
			t.Errorf("serving Certificate dnsNames %v lack the Service's name", names)
		}
		checkMountedSecret(t, objs, str(t, serving, "spec", "secretName"))
		m, v := webhookConfigurations(t, objs)
		for _, ann := range []map[string]string{m.Annotations, v.Annotations} {
			if got := ann["cert-manager.io/inject-ca-from"]; got != "podgate-system/podgate-serving" {
				t.Errorf("inject-ca-from = %q, want podgate-system/podgate-serving", got)
			}
		}
		checkNoSelfTLS(t, objs)
	})

	t.Run("self creates an empty Secret, may touch only it and the two configurations, and passes the flags", func(t *testing.T) {
		objs := decode(t, render(t, bin, modes["self"]))
		if data := objs.get(t, "Secret/podgate-tls").Object["data"]; data != nil {
			t.Errorf("the self-mode Secret must be rendered empty (the webhook fills it), has %v", data)
		}
		var role rbacv1.Role
		into(t, objs.get(t, "Role/podgate-tls"), &role)
		want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"podgate-tls"}, Verbs: []string{"get", "update"}}}
		if !slices.EqualFunc(role.Rules, want, ruleEqual) {
			t.Errorf("Role rules = %+v, want get and update of the Secret podgate-tls only", role.Rules)
		}
		var cr rbacv1.ClusterRole
		into(t, objs.get(t, "ClusterRole/podgate-webhook-configurations"), &cr)
		want = []rbacv1.PolicyRule{{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"}, ResourceNames: []string{"podgate"}, Verbs: []string{"get", "patch"}}}
		if !slices.EqualFunc(cr.Rules, want, ruleEqual) {
			t.Errorf("ClusterRole rules = %+v, want get and patch of this release's configurations only", cr.Rules)
		}
		var d appsv1.Deployment
		into(t, objs.get(t, "Deployment/podgate"), &d)
		args := d.Spec.Template.Spec.Containers[0].Args
		for _, a := range []string{"--tls-mode=self", "--tls-secret=podgate-tls", "--tls-namespace=podgate-system", "--tls-service=podgate", "--webhook-configurations=podgate"} {
			if !slices.Contains(args, a) {
				t.Errorf("args %v lack %s", args, a)
			}
		}
		if v := volume(t, d, "certs"); v.EmptyDir == nil {
			t.Errorf("the cert dir must be a writable emptyDir in self mode, is %+v", v.VolumeSource)
		}
		m, v := webhookConfigurations(t, objs)
		if m.Annotations != nil || v.Annotations != nil || m.Webhooks[0].ClientConfig.CABundle != nil {
			t.Error("self mode: no inject annotation and no caBundle in the chart; the webhook fills it")
		}
	})

	t.Run("manual mounts the given Secret and puts the given caBundle on both webhooks", func(t *testing.T) {
		objs := decode(t, render(t, bin, modes["manual"]))
		checkMountedSecret(t, objs, "podgate-manual-tls")
		m, v := webhookConfigurations(t, objs)
		for _, cc := range []admissionregistrationv1.WebhookClientConfig{m.Webhooks[0].ClientConfig, v.Webhooks[0].ClientConfig} {
			if !bytes.Equal(cc.CABundle, manualCA(t)) {
				t.Errorf("caBundle is not the given CA")
			}
		}
		checkNoSelfTLS(t, objs)
		for _, k := range objs.keys() {
			if strings.HasPrefix(k, "Certificate/") || strings.HasPrefix(k, "Issuer/") {
				t.Errorf("manual mode renders %s", k)
			}
		}
	})
}

// webhookCommon is what the two webhook types share.
type webhookCommon struct {
	clientConfig    admissionregistrationv1.WebhookClientConfig
	rules           []admissionregistrationv1.RuleWithOperations
	selector        *metav1.LabelSelector
	matchConditions []admissionregistrationv1.MatchCondition
	sideEffects     *admissionregistrationv1.SideEffectClass
	reviewVersions  []string
	failurePolicy   *admissionregistrationv1.FailurePolicyType
	timeoutSeconds  *int32
}

func checkWebhook(t *testing.T, w webhookCommon, path string) {
	t.Helper()
	svc := w.clientConfig.Service
	if svc == nil || svc.Name != "podgate" || svc.Namespace != namespace || svc.Path == nil || *svc.Path != path || svc.Port == nil || *svc.Port != 443 {
		t.Errorf("clientConfig.service = %+v, want podgate.%s:443%s", svc, namespace, path)
	}
	covered := map[string]bool{}
	for _, r := range w.rules {
		if !slices.Equal(r.Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}) {
			t.Errorf("rule %v: operations %v, want CREATE and UPDATE", r.Resources, r.Operations)
		}
		for _, res := range r.Resources {
			covered[r.APIGroups[0]+"/"+r.APIVersions[0]+"/"+res] = true
		}
	}
	for _, want := range []string{"/v1/pods", "apps/v1/deployments", "apps/v1/statefulsets", "apps/v1/daemonsets", "apps/v1/replicasets", "batch/v1/jobs", "batch/v1/cronjobs"} {
		if !covered[want] {
			t.Errorf("rules do not cover %s", want)
		}
	}
	var excluded []string
	for _, e := range w.selector.MatchExpressions {
		if e.Key == corev1.LabelMetadataName && e.Operator == metav1.LabelSelectorOpNotIn {
			excluded = append(excluded, e.Values...)
		}
	}
	for _, ns := range []string{"kube-system", "kube-node-lease", namespace} {
		if !slices.Contains(excluded, ns) {
			t.Errorf("namespaceSelector %+v does not exclude %s", w.selector, ns)
		}
	}
	if len(w.matchConditions) == 0 || !strings.Contains(w.matchConditions[0].Expression, "ownerReferences") ||
		!strings.Contains(w.matchConditions[0].Expression, "system:serviceaccount:kube-system:replicaset-controller") {
		t.Errorf("matchConditions %+v: want the one that keeps the controllers' writes for their owners away", w.matchConditions)
	}
	if *w.sideEffects != admissionregistrationv1.SideEffectClassNone || !slices.Equal(w.reviewVersions, []string{"v1"}) {
		t.Errorf("sideEffects %v, admissionReviewVersions %v; want None and [v1]", *w.sideEffects, w.reviewVersions)
	}
	if *w.failurePolicy != admissionregistrationv1.Fail || *w.timeoutSeconds != 10 {
		t.Errorf("failurePolicy %v, timeoutSeconds %d; want the documented defaults Fail and 10", *w.failurePolicy, *w.timeoutSeconds)
	}
}

func webhookConfigurations(t *testing.T, objs objects) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	t.Helper()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	into(t, objs.get(t, "MutatingWebhookConfiguration/podgate"), m)
	into(t, objs.get(t, "ValidatingWebhookConfiguration/podgate"), v)
	return m, v
}

func checkSecurity(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	psc, sc := pod.SecurityContext, pod.Containers[0].SecurityContext
	switch {
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("container securityContext %+v: want readOnlyRootFilesystem", sc)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("container securityContext: want allowPrivilegeEscalation false")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("container capabilities %+v: want all dropped, none added", sc.Capabilities)
	}
}

// checkMountedSecret checks the serving certificate Secret is mounted in
// the cert dir the webhook reads.
func checkMountedSecret(t *testing.T, objs objects, secret string) {
	t.Helper()
	var d appsv1.Deployment
	into(t, objs.get(t, "Deployment/podgate"), &d)
	if v := volume(t, d, "certs"); v.Secret == nil || v.Secret.SecretName != secret {
		t.Errorf("certs volume = %+v, want the Secret %s", v.VolumeSource, secret)
	}
	c := d.Spec.Template.Spec.Containers[0]
	for _, m := range c.VolumeMounts {
		if m.Name == "certs" && !slices.Contains(c.Args, "--cert-dir="+m.MountPath) {
			t.Errorf("certs mounted at %s, but args %v read another --cert-dir", m.MountPath, c.Args)
		}
	}
}

func checkNoSelfTLS(t *testing.T, objs objects) {
	t.Helper()
	for _, k := range []string{"Role/podgate-tls", "ClusterRole/podgate-webhook-configurations"} {
		if objs[k] != nil {
			t.Errorf("%s rendered outside the self TLS mode: the webhook needs no such rights", k)
		}
	}
}

func volume(t *testing.T, d appsv1.Deployment, name string) corev1.Volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %s", name)
	return corev1.Volume{}
}

func ruleEqual(a, b rbacv1.PolicyRule) bool {
	return slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) &&
		slices.Equal(a.ResourceNames, b.ResourceNames) && slices.Equal(a.Verbs, b.Verbs) && len(a.NonResourceURLs) == 0
}

func str(t *testing.T, u *unstructured.Unstructured, path ...string) string {
	t.Helper()
	v, found, err := unstructured.NestedFieldNoCopy(u.Object, path...)
	if !found || err != nil {
		t.Fatalf("%s/%s has no %s", u.GetKind(), u.GetName(), strings.Join(path, "."))
	}
	return fmt.Sprint(v)
}

func field(t *testing.T, u *unstructured.Unstructured, want string, path ...string) {
	t.Helper()
	if got := str(t, u, path...); got != want {
		t.Errorf("%s/%s %s = %s, want %s", u.GetKind(), u.GetName(), strings.Join(path, "."), got, want)
	}
}
