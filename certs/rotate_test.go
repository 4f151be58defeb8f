package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

var secretKey = types.NamespacedName{Namespace: "podgate", Name: "podgate-tls"}

// webhookConfigurations are a mutating configuration with one webhook and
// a validating one with two, none with a caBundle yet.
func webhookConfigurations() []client.Object {
	url := "https://127.0.0.1:9443/x"
	cc := admissionregistrationv1.WebhookClientConfig{URL: &url}
	return []client.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "podgate"},
			Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "mutate.podgate.dev", ClientConfig: cc}},
		},
		&admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "podgate"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{
				{Name: "validate.podgate.dev", ClientConfig: cc},
				{Name: "other.podgate.dev", ClientConfig: cc},
			},
		},
	}
}

func newRotator(t *testing.T, c client.Client) *Rotator {
	t.Helper()
	return &Rotator{
		Client:             c,
		Secret:             secretKey,
		DNSNames:           append(ServiceNames("podgate", "podgate"), "localhost"),
		IPs:                []net.IP{net.IPv4(127, 0, 0, 1)},
		MutatingWebhooks:   []string{"podgate"},
		ValidatingWebhooks: []string{"podgate"},
		CertDir:            filepath.Join(t.TempDir(), "certs"),
		CAValidity:         3 * time.Hour,
		Validity:           time.Hour,
		Log:                logr.Discard(),
	}
}

func ensure(t *testing.T, r *Rotator) {
	t.Helper()
	if err := r.Ensure(t.Context()); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
}

func getSecret(t *testing.T, c client.Client) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(t.Context(), secretKey, s); err != nil {
		t.Fatalf("get Secret: %v", err)
	}
	return s
}

// caBundles returns the caBundle of every webhook of both configurations.
func caBundles(t *testing.T, c client.Client) [][]byte {
	t.Helper()
	ctx := t.Context()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: "podgate"}, m); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "podgate"}, v); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, w := range m.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	for _, w := range v.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

func leaf(t *testing.T, data map[string][]byte) *x509.Certificate {
	t.Helper()
	certs := parseBundle(data[CertFile])
	if len(certs) != 1 {
		t.Fatalf("tls.crt holds %d certificates, want 1", len(certs))
	}
	return certs[0]
}

func TestEnsureCreatesTheSecretWritesTheFilesAndFillsEveryCABundle(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(webhookConfigurations()...).Build()
	r := newRotator(t, c)
	if err := r.ReadyCheck(nil); err == nil {
		t.Fatal("ready before the first pass")
	}
	ensure(t, r)

	data := getSecret(t, c).Data
	for _, key := range []string{CertFile, KeyFile, SecretCABundle, SecretCAKey} {
		if len(data[key]) == 0 {
			t.Errorf("Secret has no %s", key)
		}
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(data[SecretCABundle])
	for _, host := range append(r.DNSNames, "127.0.0.1") {
		if _, err := leaf(t, data).Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("serving certificate does not verify for %s: %v", host, err)
		}
	}
	for i, b := range caBundles(t, c) {
		if !bytes.Equal(b, data[SecretCABundle]) {
			t.Errorf("webhook %d: caBundle is not the Secret's ca.crt", i)
		}
	}
	for _, name := range []string{CertFile, KeyFile, CAFile} {
		got, err := os.ReadFile(filepath.Join(r.CertDir, name))
		if err != nil || !bytes.Equal(got, data[name]) {
			t.Errorf("%s in the cert dir is not the Secret's (err %v)", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(r.CertDir, SecretCAKey)); !os.IsNotExist(err) {
		t.Errorf("the CA key must not be written to the cert dir (stat: %v)", err)
	}
	if err := r.ReadyCheck(nil); err != nil {
		t.Errorf("not ready after a good pass: %v", err)
	}
}

func TestASecondPassChangesNothing(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(webhookConfigurations()...).Build()
	r := newRotator(t, c)
	ensure(t, r)
	before := getSecret(t, c).ResourceVersion
	info, err := os.Stat(filepath.Join(r.CertDir, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a rewrite would show in the modification time
	ensure(t, r)
	if after := getSecret(t, c).ResourceVersion; after != before {
		t.Errorf("Secret rewritten: resourceVersion %s -> %s", before, after)
	}
	again, err := os.Stat(filepath.Join(r.CertDir, CertFile))
	if err != nil || !again.ModTime().Equal(info.ModTime()) {
		t.Errorf("tls.crt rewritten though nothing changed (err %v)", err)
	}
}

func TestServingCertificateRenewal(t *testing.T) {
	tests := []struct {
		name    string
		after   time.Duration // clock moved forward after the first pass
		names   []string      // DNS names of the second pass (nil: unchanged)
		renewed bool
	}{
		{"a certificate with half its validity left is kept", 30 * time.Minute, nil, false},
		{"a certificate with less than a third of its validity left is renewed", 45 * time.Minute, nil, true},
		{"an expired certificate is renewed", 70 * time.Minute, nil, true},
		// Another replica's clock runs ahead: replacing its certificate
		// would make the replicas take turns replacing each other's.
		{"a certificate not valid yet on a clock that runs behind is kept", -10 * time.Minute, nil, false},
		{"a certificate that lacks a new name is renewed", 0, []string{"podgate.example"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithObjects(webhookConfigurations()...).Build()
			r := newRotator(t, c)
			ensure(t, r)
			first := getSecret(t, c).Data
			r.now = func() time.Time { return time.Now().Add(tt.after) }
			if tt.names != nil {
				r.DNSNames = append(r.DNSNames, tt.names...)
			}
			ensure(t, r)
			second := getSecret(t, c).Data
			if renewed := !leaf(t, first).Equal(leaf(t, second)); renewed != tt.renewed {
				t.Errorf("renewed = %v, want %v", renewed, tt.renewed)
			}
			if !bytes.Equal(first[SecretCABundle], second[SecretCABundle]) {
				t.Error("the CA changed, but only the serving certificate was due")
			}
			served, err := os.ReadFile(filepath.Join(r.CertDir, CertFile))
			if err != nil || !bytes.Equal(served, second[CertFile]) {
				t.Errorf("tls.crt in the cert dir is not the Secret's (err %v)", err)
			}
		})
	}
}

// TestCARotationKeepsTheOldCATrustedUntilTheNewOneHasPropagated starts from
// a Secret whose CA has less than a third of its validity left and whose
// serving certificate is still good.
func TestCARotationKeepsTheOldCATrustedUntilTheNewOneHasPropagated(t *testing.T) {
	oldCA, err := NewCA("old", 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithObjects(webhookConfigurations()...).Build()
	r := newRotator(t, c) // CA validity 3h: 30 minutes left is due
	pair, err := oldCA.Issue(r.DNSNames, r.IPs, 25*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	oldKey, err := oldCA.keyPEM()
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretKey.Name, Namespace: secretKey.Namespace},
		Data: map[string][]byte{CertFile: pair.CertPEM, KeyFile: pair.KeyPEM, SecretCABundle: oldCA.CertPEM, SecretCAKey: oldKey}}
	if err := c.Create(t.Context(), secret); err != nil {
		t.Fatal(err)
	}

	ensure(t, r)
	data := getSecret(t, c).Data
	bundle := parseBundle(data[SecretCABundle])
	if len(bundle) != 2 || bundle[0].Equal(oldCA.cert) || !bundle[1].Equal(oldCA.cert) {
		t.Fatalf("bundle after CA rotation: %d certificates; want the new CA, then the old one", len(bundle))
	}
	if !bytes.Equal(data[CertFile], pair.CertPEM) {
		t.Error("the serving certificate was replaced before the new CA could reach the API server")
	}
	for i, b := range caBundles(t, c) {
		if !bytes.Equal(b, data[SecretCABundle]) {
			t.Errorf("webhook %d: caBundle lacks the new CA", i)
		}
	}

	r.now = func() time.Time { return time.Now().Add(DefaultCAPropagation + time.Minute) }
	ensure(t, r)
	data = getSecret(t, c).Data
	if err := leaf(t, data).CheckSignatureFrom(bundle[0]); err != nil {
		t.Errorf("once the new CA has propagated, the serving certificate is still not its own: %v", err)
	}
	if got := parseBundle(data[SecretCABundle]); len(got) != 2 {
		t.Errorf("the old CA left the bundle before it expired: %d certificates", len(got))
	}
}

func TestAGarbledSecretIsReplacedWithANewCA(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(webhookConfigurations()...).WithObjects(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretKey.Name, Namespace: secretKey.Namespace},
		Data:       map[string][]byte{CertFile: []byte("junk"), SecretCABundle: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
	}).Build()
	r := newRotator(t, c)
	ensure(t, r)
	data := getSecret(t, c).Data
	if bundle := parseBundle(data[SecretCABundle]); len(bundle) != 1 || !bundle[0].IsCA {
		t.Fatalf("bundle holds %d certificates, want one new CA", len(bundle))
	}
	if err := leaf(t, data).CheckSignatureFrom(parseBundle(data[SecretCABundle])[0]); err != nil {
		t.Errorf("serving certificate not signed by the new CA: %v", err)
	}
}

func TestAWipedCABundleIsRestored(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(webhookConfigurations()...).Build()
	r := newRotator(t, c)
	ensure(t, r)
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(t.Context(), client.ObjectKey{Name: "podgate"}, v); err != nil {
		t.Fatal(err)
	}
	v.Webhooks[1].ClientConfig.CABundle = nil // as a Helm upgrade of an old chart might
	if err := c.Update(t.Context(), v); err != nil {
		t.Fatal(err)
	}
	ensure(t, r)
	want := getSecret(t, c).Data[SecretCABundle]
	for i, b := range caBundles(t, c) {
		if !bytes.Equal(b, want) {
			t.Errorf("webhook %d: caBundle not restored", i)
		}
	}
}

func TestAMissingWebhookConfigurationKeepsTheFilesButNotReadiness(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	r := newRotator(t, c)
	err := r.Ensure(t.Context())
	if err == nil || !strings.Contains(err.Error(), "MutatingWebhookConfiguration podgate") {
		t.Fatalf("Ensure = %v, want an error naming the missing configuration", err)
	}
	if !r.FilesReady() {
		t.Error("the files must be written even when a configuration is missing, so the server can start")
	}
	if err := r.ReadyCheck(nil); err == nil || !strings.Contains(err.Error(), "caBundle") {
		t.Errorf("ReadyCheck = %v, want not ready for want of a caBundle", err)
	}
	for _, obj := range webhookConfigurations() {
		if err := c.Create(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
	}
	ensure(t, r)
	if err := r.ReadyCheck(nil); err != nil {
		t.Errorf("ReadyCheck = %v once the configurations exist", err)
	}
}

// TestTwoReplicasRacingForTheSecretEndWithOneCA lets replica b create the
// Secret between replica a's read and a's create: a gets AlreadyExists,
// re-reads and adopts b's certificates instead of overwriting them.
func TestTwoReplicasRacingForTheSecretEndWithOneCA(t *testing.T) {
	var b *Rotator
	raced := false
	base := fake.NewClientBuilder().WithObjects(webhookConfigurations()...).Build()
	c := interceptor.NewClient(base, interceptor.Funcs{
		Get: func(ctx context.Context, cl client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			err := cl.Get(ctx, key, obj, opts...)
			if _, ok := obj.(*corev1.Secret); ok && !raced {
				raced = true
				if err := b.Ensure(ctx); err != nil {
					t.Errorf("replica b: %v", err)
				}
			}
			return err
		},
	})
	a := newRotator(t, c)
	b = newRotator(t, base)
	ensure(t, a)
	if !raced {
		t.Fatal("the race was not staged")
	}
	want := getSecret(t, base).Data
	for name, r := range map[string]*Rotator{"a": a, "b": b} {
		got, err := os.ReadFile(filepath.Join(r.CertDir, CertFile))
		if err != nil || !bytes.Equal(got, want[CertFile]) {
			t.Errorf("replica %s serves another certificate than the Secret's (err %v)", name, err)
		}
	}
}
