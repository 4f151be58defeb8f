package chart

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/certs"
)

const (
	// servingValidity is the self-mode certificate's validity in this test:
	// renewed when a third is left, so every 20 seconds.
	servingValidity = "30s"
	// renewals is how many renewals the test sees served under load.
	renewals = 2
	// rotationTimeout bounds the wait for them.
	rotationTimeout = 2 * time.Minute
)

// TestSelfManagedTLS installs the chart in self mode with its webhooks
// pointing at 127.0.0.1, then runs two webhook replicas out of cluster with
// the arguments of the chart's Deployment, as the chart's ServiceAccount.
func TestSelfManagedTLS(t *testing.T) {
	requireCluster(t)
	binary := buildWebhook(t, t.TempDir())
	port := freePorts(t, 1)[0]
	notes := install(t, requireHelms(t)["helm4"], values{
		"tls":     values{"mode": "self", "self": values{"certValidity": servingValidity}},
		"webhook": values{"url": "https://" + loopback(port)},
	})
	args := localArgs(t)
	// Both replicas at once: they race for the empty Secret.
	a := startReplica(t, binary, "a", port, args)
	b := startReplica(t, binary, "b", freePorts(t, 1)[0], args)
	a.waitReady(t)
	b.waitReady(t)

	secret := &corev1.Secret{}
	if err := bed.Client().Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "podgate-tls"}, secret); err != nil {
		t.Fatal(err)
	}
	bundle := secret.Data[certs.SecretCABundle]
	for _, key := range []string{certs.CertFile, certs.KeyFile, certs.SecretCABundle, certs.SecretCAKey} {
		if len(secret.Data[key]) == 0 {
			t.Errorf("the webhook did not fill %s of the Secret", key)
		}
	}
	checkCABundles(t, bundle)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(bundle)
	for _, r := range []*replica{a, b} {
		if _, err := r.servedCert(roots); err != nil {
			t.Errorf("replica %s does not serve a certificate of the Secret's CA: %v", r.name, err)
		}
	}

	t.Run("admission goes through the webhook with that CA", func(t *testing.T) { checkAdmission(t) })
	t.Run("the checks NOTES.txt prints pass", func(t *testing.T) { checkNotes(t, notes) })
	t.Run("renewals under load fail no request", func(t *testing.T) { checkRotation(t, a, roots, bundle) })
}

// localArgs are the arguments of the Deployment the chart installed, with
// what only makes sense in a pod replaced: the ConfigMaps' contents as
// local files, an impersonating kubeconfig, the loopback names, a fast
// certificate check. Ports and cert dir are each replica's.
func localArgs(t *testing.T) []string {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := bed.Client().Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: release}, d); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := bed.Client().Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "podgate-config"}, cm); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(config, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--kubeconfig=" + impersonatingKubeconfig(t, serviceAccount), "--config=" + config,
		"--policy-dir=" + t.TempDir(), "--tls-hosts=localhost,127.0.0.1", "--tls-check-interval=1s"}
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		switch strings.SplitN(a, "=", 2)[0] {
		case "--port", "--cert-dir", "--metrics-bind-address", "--health-probe-bind-address", "--config", "--policy-dir":
		default:
			args = append(args, a)
		}
	}
	t.Logf("webhook arguments: %v", args)
	return args
}

func checkCABundles(t *testing.T, bundle []byte) {
	t.Helper()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	for _, obj := range []client.Object{m, v} {
		if err := bed.Client().Get(t.Context(), client.ObjectKey{Name: release}, obj); err != nil {
			t.Fatal(err)
		}
	}
	for _, cc := range []admissionregistrationv1.WebhookClientConfig{m.Webhooks[0].ClientConfig, v.Webhooks[0].ClientConfig} {
		if !bytes.Equal(cc.CABundle, bundle) {
			t.Errorf("caBundle of %s is not the Secret's ca.crt", *cc.URL)
		}
	}
}

// checkAdmission applies a Deployment the mutating webhook completes and a
// Pod the validating webhook denies, through kubectl.
func checkAdmission(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "self-tls-"}}
	if err := bed.Client().Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	const web = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - {name: web, image: "nginx:1.27", ports: [{containerPort: 80}]}
`
	out, stderr, err := bed.Kubectl(t.Context(), strings.NewReader(web), "apply", "-f", "-", "-n", ns.Name)
	if err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	d := &appsv1.Deployment{}
	if err := bed.Client().Get(t.Context(), client.ObjectKey{Namespace: ns.Name, Name: "web"}, d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Spec.Containers[0].ReadinessProbe == nil || d.Annotations["podgate.dev/mutations"] == "" {
		t.Errorf("the stored Deployment has no injected probes: /mutate was not called")
	}
	const redis = `apiVersion: v1
kind: Pod
metadata: {name: redis}
spec:
  containers:
    - name: redis
      image: redis:7.2
      ports: [{containerPort: 6379}]
      readinessProbe: {tcpSocket: {port: 6379}}
      livenessProbe: {tcpSocket: {port: 6379}, periodSeconds: 20}
      volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
`
	_, stderr, err = bed.Kubectl(t.Context(), strings.NewReader(redis), "apply", "-f", "-", "-n", ns.Name)
	if err == nil || !strings.Contains(stderr, `admission webhook "validate.podgate.dev" denied the request`) {
		t.Errorf("redis with an emptyDir: err %v, stderr %q; want a denial by validate.podgate.dev", err, stderr)
	}
}

// checkNotes runs the `kubectl run` lines of the NOTES helm install
// printed, as a user would paste them into a shell: the nginx one prints an
// injected probe, the redis one is denied.
func checkNotes(t *testing.T, notes string) {
	var ran int
	for _, line := range strings.Split(notes, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "kubectl run ") {
			continue
		}
		ran++
		cmd := exec.CommandContext(t.Context(), "bash", "-o", "pipefail", "-c", line)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+bed.Kubeconfig(),
			"PATH="+filepath.Dir(bed.KubectlPath())+string(filepath.ListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		denied := strings.Contains(string(out), `admission webhook "validate.podgate.dev" denied the request`)
		switch wantDenied := strings.Contains(line, "redis"); {
		case wantDenied && (err == nil || !denied):
			t.Errorf("%s: want a denial, got (err %v):\n%s", line, err, out)
		case !wantDenied && (err != nil || !strings.Contains(string(out), "readinessProbe")):
			t.Errorf("%s: want the injected readinessProbe, got (err %v):\n%s", line, err, out)
		}
	}
	if ran != 2 {
		t.Errorf("NOTES hold %d kubectl run checks, want 2:\n%s", ran, notes)
	}
}

// checkRotation sends admission requests through the API server without
// pause while the replicas renew their certificate, and wants every one
// answered, and each new certificate served.
func checkRotation(t *testing.T, a *replica, roots *x509.CertPool, bundle []byte) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var sent, failed atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "load-", Namespace: metav1.NamespaceDefault},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27",
					Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}},
			}
			err := bed.Client().Create(ctx, pod, client.DryRunAll)
			if ctx.Err() != nil {
				return
			}
			sent.Add(1)
			if err != nil || pod.Spec.Containers[0].ReadinessProbe == nil {
				failed.Add(1)
				t.Errorf("request %d during rotation: %v (probe injected: %v)", sent.Load(), err, pod.Spec.Containers[0].ReadinessProbe != nil)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	seen := map[string]bool{}
	deadline := time.Now().Add(rotationTimeout)
	for len(seen) <= renewals && time.Now().Before(deadline) && !t.Failed() {
		cert, err := a.servedCert(roots)
		if err != nil {
			t.Fatalf("after %d certificates: %v", len(seen), err)
		}
		if serial := cert.SerialNumber.String(); !seen[serial] {
			seen[serial] = true
			t.Logf("serving certificate %d: serial %.12s..., expires %s", len(seen), serial, cert.NotAfter.Format(time.TimeOnly))
		}
		time.Sleep(250 * time.Millisecond)
	}
	cancel()
	<-done
	if len(seen) <= renewals {
		t.Fatalf("saw %d certificates in %s, want %d renewals", len(seen), rotationTimeout, renewals)
	}
	t.Logf("%d admission requests during %d renewals, %d failed", sent.Load(), renewals, failed.Load())
	// What the chart's resources are sized by: logged, not asserted.
	if body, _, err := get(t.Context(), "http://"+loopback(a.metrics)+"/metrics"); err == nil {
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "process_resident_memory_bytes ") || strings.HasPrefix(line, "go_memstats_heap_inuse_bytes ") {
				t.Logf("webhook a after the load: %s", line)
			}
		}
	}
	if sent.Load() < 100 {
		t.Errorf("only %d requests were sent: the load proves little", sent.Load())
	}
	secret := &corev1.Secret{}
	if err := bed.Client().Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "podgate-tls"}, secret); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if !bytes.Equal(secret.Data[certs.SecretCABundle], bundle) {
		t.Error("the CA changed, though only the serving certificate was due")
	}
}
