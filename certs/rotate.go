package certs

// Self-managed TLS: the webhook keeps its own CA and serving certificate in
// a Secret, copies them into its certificate directory (where
// controller-runtime's certwatcher reloads them), puts the CA into the
// caBundle of its webhook configurations, and renews both before they
// expire. Every replica runs the same loop; the Secret is the one place
// they agree through (creation races end in AlreadyExists and updates use
// optimistic concurrency, so the loser re-reads and adopts what the winner
// wrote).
//
// Unlike the rest of this package, the rotator keeps the CA's private key:
// in the Secret, which only the webhook's ServiceAccount may read.
//
// Why not open-policy-agent/cert-controller (Gatekeeper's rotator, v0.16.0),
// which this follows: it does not cover the mode. It writes only the
// Secret and waits for the kubelet to refresh the Secret's volume, so each
// new certificate reaches the server a minute or more later, and a
// webhook run outside the cluster (the chart's self-TLS test) never gets
// one. It replaces the CA in the caBundle outright, where this keeps the
// previous CA trusted until the replicas serve the new one; meanwhile a
// replica still serving the old certificate fails every call. Its
// certificates carry DNS names only (no IP address, which --tls-hosts
// allows), and every one it issues has the same serial number (0 for a CA,
// 1 for a serving certificate), which RFC 5280 forbids.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the Secret besides CertFile and KeyFile (tls.crt, tls.key).
const (
	// SecretCABundle holds the CA certificates the webhook configurations
	// trust: the current CA first, then earlier ones that are still valid,
	// so a serving certificate of the previous CA stays trusted while the
	// replicas move to the new one.
	SecretCABundle = CAFile
	// SecretCAKey holds the current CA's private key (PKCS #8, PEM).
	SecretCAKey = "ca.key"
)

const (
	// DefaultCheckInterval is how often the rotator looks at the Secret and
	// the webhook configurations: three GETs a minute per replica is
	// nothing, and a caBundle that an upgrade or a person wiped is back
	// within a minute.
	DefaultCheckInterval = time.Minute
	// DefaultCAPropagation is how long a new CA sits in the caBundle before
	// serving certificates it signed are used: the API server reads webhook
	// configurations through an informer, so it trusts a new caBundle a
	// moment after it is written, not at once.
	DefaultCAPropagation = 5 * time.Minute
	// renewFraction: a certificate is renewed when less than this share of
	// its validity remains (cert-manager's default is the same third).
	renewFraction = 3
	// retryInterval is the wait after a failed pass, shorter than the check
	// interval so that a webhook configuration created just after the pod
	// started gets its caBundle within seconds.
	retryInterval = 5 * time.Second
	// DefaultRotatorCAName is the common name of a CA the rotator makes.
	DefaultRotatorCAName = "podgate-webhook-ca"
)

// Rotator keeps a CA and a serving certificate in a Secret, in CertDir and
// in the caBundle of the named webhook configurations. It is a
// controller-runtime Runnable that every replica runs (no leader election).
type Rotator struct {
	Client client.Client // needs get/update on the Secret, get/patch on the configurations
	Secret types.NamespacedName
	// DNSNames and IPs the serving certificate is for (ServiceNames gives
	// those of a Service).
	DNSNames []string
	IPs      []net.IP
	// MutatingWebhooks and ValidatingWebhooks name the configurations
	// whose every webhook gets the CA bundle.
	MutatingWebhooks   []string
	ValidatingWebhooks []string
	CertDir            string
	CAName             string        // DefaultRotatorCAName when empty
	CAValidity         time.Duration // DefaultCAValidity when zero
	Validity           time.Duration // of the serving certificate; DefaultServingValidity when zero
	CheckInterval      time.Duration // DefaultCheckInterval when zero
	CAPropagation      time.Duration // DefaultCAPropagation when zero
	Log                logr.Logger

	now      func() time.Time // time.Now unless a test moves the clock
	files    atomic.Bool      // CertDir holds a valid pair
	injected atomic.Bool      // every configuration has carried the bundle once
}

// ServiceNames are the DNS names a Service is reached by from inside the
// cluster, which the API server uses for a webhook's clientConfig.service.
func ServiceNames(service, namespace string) []string {
	return []string{
		service,
		service + "." + namespace,
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
	}
}

// Start checks every CheckInterval (every few seconds after a failure) until
// ctx ends. Failures are logged and retried, never fatal: the certificate
// in CertDir stays valid for months.
func (r *Rotator) Start(ctx context.Context) error {
	for {
		wait := r.checkInterval()
		if err := r.Ensure(ctx); err != nil {
			r.Log.Error(err, "certificate check failed; retrying", "in", retryInterval)
			wait = min(wait, retryInterval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// NeedLeaderElection is false: every replica serves, so every replica
// needs the files and may renew the Secret.
func (r *Rotator) NeedLeaderElection() bool { return false }

// FilesReady reports whether CertDir holds the Secret's pair, so the
// webhook server can start.
func (r *Rotator) FilesReady() bool { return r.files.Load() }

// ReadyCheck is a readiness check: not ready until the certificate files
// are in place and the caBundle has reached every configuration, so no
// replica takes traffic that the API server could not verify.
func (r *Rotator) ReadyCheck(*http.Request) error {
	switch {
	case !r.files.Load():
		return errors.New("serving certificate not written yet")
	case !r.injected.Load():
		return errors.New("caBundle not in every webhook configuration yet")
	}
	return nil
}

// Ensure makes one pass: renew what needs renewing in the Secret, write
// the files, fill the caBundles.
func (r *Rotator) Ensure(ctx context.Context) error {
	var data map[string][]byte
	// Another replica may create or update the Secret between our read and
	// our write: then re-read and plan again (usually there is nothing left
	// to do).
	conflict := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	err := retry.OnError(retry.DefaultRetry, conflict, func() error {
		var err error
		data, err = r.syncSecret(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("secret %s: %w", r.Secret, err)
	}
	if err := r.writeFiles(data); err != nil {
		return err
	}
	r.files.Store(true)
	if err := r.inject(ctx, data[SecretCABundle]); err != nil {
		return err
	}
	r.injected.Store(true)
	return nil
}

// writeFiles copies the Secret's pair and bundle into CertDir when they
// differ from what is there: rewriting unchanged files every pass would
// make the certificate watcher reload for nothing.
func (r *Rotator) writeFiles(data map[string][]byte) error {
	same := true
	for _, name := range []string{KeyFile, CertFile, CAFile} {
		old, err := os.ReadFile(filepath.Join(r.CertDir, name))
		same = same && err == nil && bytes.Equal(old, data[name])
	}
	if same {
		return nil
	}
	pair := &KeyPair{CertPEM: data[CertFile], KeyPEM: data[KeyFile]}
	// WriteDir reads only the CA's certificate, which here is the bundle.
	return WriteDir(r.CertDir, &CA{CertPEM: data[SecretCABundle]}, pair)
}

// syncSecret reads the Secret, renews what plan says, writes it back and
// returns its data.
func (r *Rotator) syncSecret(ctx context.Context) (map[string][]byte, error) {
	secret := &corev1.Secret{}
	err := r.Client.Get(ctx, r.Secret, secret)
	missing := apierrors.IsNotFound(err)
	if err != nil && !missing {
		return nil, fmt.Errorf("get: %w", err)
	}
	data, why, err := r.plan(secret.Data, r.clock())
	if err != nil {
		return nil, err
	}
	if why == "" {
		return data, nil
	}
	secret.Data = data
	if missing {
		// The chart creates the Secret, so the webhook needs no right to
		// create Secrets; this is for running without the chart.
		secret.Name, secret.Namespace, secret.Type = r.Secret.Name, r.Secret.Namespace, corev1.SecretTypeOpaque
		err = r.Client.Create(ctx, secret)
	} else {
		err = r.Client.Update(ctx, secret)
	}
	if err != nil {
		return nil, fmt.Errorf("write (%s): %w", why, err)
	}
	r.Log.Info("certificates renewed in the Secret", "secret", r.Secret.String(), "why", why)
	return data, nil
}

// plan returns the Secret data to have at now, and why it differs from
// data ("" when it does not).
func (r *Rotator) plan(data map[string][]byte, now time.Time) (map[string][]byte, string, error) {
	var why []string
	bundle := parseBundle(data[SecretCABundle])
	ca := currentCA(bundle, data[SecretCAKey])
	caValidity := cmp.Or(r.CAValidity, DefaultCAValidity)
	if reason := renewal(ca.certOrNil(), caValidity, now); reason != "" {
		var err error
		if ca, err = NewCA(cmp.Or(r.CAName, DefaultRotatorCAName), caValidity); err != nil {
			return nil, "", err
		}
		why = append(why, "CA "+reason)
	}
	keep := []*x509.Certificate{ca.cert}
	for _, c := range bundle {
		if !c.Equal(ca.cert) && now.Before(c.NotAfter) {
			keep = append(keep, c)
		}
	}
	out := map[string][]byte{SecretCABundle: encodeBundle(keep), CertFile: data[CertFile], KeyFile: data[KeyFile]}
	var err error
	if out[SecretCAKey], err = ca.keyPEM(); err != nil {
		return nil, "", err
	}
	if reason := r.servingRenewal(data, ca, keep, now); reason != "" {
		// Never past the CA, which Issue refuses (the minute covers the time
		// between here and Issue's own clock reading).
		validity := min(cmp.Or(r.Validity, DefaultServingValidity), time.Until(ca.cert.NotAfter)-time.Minute)
		pair, err := ca.Issue(r.DNSNames, r.IPs, validity)
		if err != nil {
			return nil, "", err
		}
		out[CertFile], out[KeyFile] = pair.CertPEM, pair.KeyPEM
		why = append(why, "serving certificate "+reason)
	}
	if len(why) == 0 && !bytes.Equal(out[SecretCABundle], data[SecretCABundle]) {
		why = append(why, "expired CA dropped from the bundle")
	}
	return out, strings.Join(why, ", "), nil
}

// servingRenewal says why the Secret's serving certificate must be replaced
// by one of ca, or "" when it may stay.
func (r *Rotator) servingRenewal(data map[string][]byte, ca *CA, bundle []*x509.Certificate, now time.Time) string {
	pair, err := tls.X509KeyPair(data[CertFile], data[KeyFile])
	if err != nil {
		return "missing or unreadable"
	}
	cert := pair.Leaf
	if reason := renewal(cert, cmp.Or(r.Validity, DefaultServingValidity), now); reason != "" {
		return reason
	}
	for _, name := range r.hosts() {
		if cert.VerifyHostname(name) != nil {
			return "lacks the name " + name
		}
	}
	if cert.CheckSignatureFrom(ca.cert) == nil {
		return ""
	}
	for _, c := range bundle[1:] {
		if cert.CheckSignatureFrom(c) == nil {
			// Signed by the previous CA, which the API server still trusts;
			// move to the new one once it has had time to trust that too.
			if now.Sub(ca.cert.NotBefore.Add(clockSkew)) < cmp.Or(r.CAPropagation, DefaultCAPropagation) {
				return ""
			}
			return "signed by the previous CA"
		}
	}
	return "not signed by a CA in the bundle"
}

// renewal says why cert must be renewed at now, or "": missing, expired, or
// less than a third of validity left. A certificate that is not valid yet is
// kept: another replica's clock runs ahead, and replacing it would make the
// replicas take turns replacing each other's certificates.
func renewal(cert *x509.Certificate, validity time.Duration, now time.Time) string {
	switch {
	case cert == nil:
		return "missing"
	case !now.Before(cert.NotAfter):
		return "expired"
	case cert.NotAfter.Sub(now) < validity/renewFraction:
		return "expires " + cert.NotAfter.UTC().Format(time.RFC3339)
	}
	return ""
}

func (r *Rotator) hosts() []string {
	names := append([]string(nil), r.DNSNames...)
	for _, ip := range r.IPs {
		names = append(names, ip.String())
	}
	return names
}

// inject puts bundle into every webhook of the configurations, patching
// only those that differ. The strategic merge patch names each webhook, so
// it touches nothing else of a configuration that Helm may be updating.
func (r *Rotator) inject(ctx context.Context, bundle []byte) error {
	var errs []error
	for _, name := range r.MutatingWebhooks {
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		errs = append(errs, r.patchCABundle(ctx, "MutatingWebhookConfiguration", name, cfg, bundle, func() (ccs []*admissionregistrationv1.WebhookClientConfig) {
			for i := range cfg.Webhooks {
				ccs = append(ccs, &cfg.Webhooks[i].ClientConfig)
			}
			return ccs
		}))
	}
	for _, name := range r.ValidatingWebhooks {
		cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		errs = append(errs, r.patchCABundle(ctx, "ValidatingWebhookConfiguration", name, cfg, bundle, func() (ccs []*admissionregistrationv1.WebhookClientConfig) {
			for i := range cfg.Webhooks {
				ccs = append(ccs, &cfg.Webhooks[i].ClientConfig)
			}
			return ccs
		}))
	}
	return errors.Join(errs...)
}

func (r *Rotator) patchCABundle(ctx context.Context, kind, name string, cfg client.Object, bundle []byte, clientConfigs func() []*admissionregistrationv1.WebhookClientConfig) error {
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, cfg); err != nil {
		return fmt.Errorf("inject caBundle: get %s %s: %w", kind, name, err)
	}
	base := cfg.DeepCopyObject().(client.Object)
	changed := false
	for _, cc := range clientConfigs() {
		if !bytes.Equal(cc.CABundle, bundle) {
			cc.CABundle, changed = bundle, true
		}
	}
	if !changed {
		return nil
	}
	if err := r.Client.Patch(ctx, cfg, client.StrategicMergeFrom(base)); err != nil {
		return fmt.Errorf("inject caBundle: patch %s %s: %w", kind, name, err)
	}
	r.Log.Info("caBundle injected", "kind", kind, "name", name)
	return nil
}

func (r *Rotator) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

func (r *Rotator) checkInterval() time.Duration {
	return cmp.Or(r.CheckInterval, DefaultCheckInterval)
}

// parseBundle returns the certificates of a PEM bundle, skipping what does
// not parse (a Secret someone edited by hand is replaced, not an error).
func parseBundle(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return out
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil && block.Type == "CERTIFICATE" {
			out = append(out, c)
		}
	}
}

func encodeBundle(certs []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		buf.Write(encodeCert(c.Raw))
	}
	return buf.Bytes()
}

// currentCA is the bundle's first certificate with its key, or nil when
// either is missing or they do not belong together.
func currentCA(bundle []*x509.Certificate, keyPEM []byte) *CA {
	block, _ := pem.Decode(keyPEM)
	if len(bundle) == 0 || block == nil || !bundle[0].IsCA {
		return nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	key, ok := parsed.(*ecdsa.PrivateKey)
	if err != nil || !ok || !key.PublicKey.Equal(bundle[0].PublicKey) {
		return nil
	}
	return &CA{CertPEM: encodeCert(bundle[0].Raw), cert: bundle[0], key: key}
}

func (ca *CA) certOrNil() *x509.Certificate {
	if ca == nil {
		return nil
	}
	return ca.cert
}

func (ca *CA) keyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, fmt.Errorf("encode CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
