package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/podgate/podgate/certs"
)

// TLS modes: where the serving certificate in --cert-dir comes from.
const (
	// TLSModeFiles: someone else writes it (cert-manager's Secret, a
	// Secret the user made, or the certs command), the webhook only reads.
	TLSModeFiles = "files"
	// TLSModeSelf: the webhook makes its own CA and certificate, keeps them
	// in --tls-secret, writes them into --cert-dir, puts the CA into the
	// caBundle of --webhook-configurations and renews them (certs.Rotator).
	TLSModeSelf = "self"
)

const (
	// tlsSetupTimeout bounds the wait for the first certificate at start:
	// the webhook server cannot start without one. Long enough to ride out
	// an API server restart; then the pod restarts and says why.
	tlsSetupTimeout = 2 * time.Minute
	tlsSetupPoll    = 2 * time.Second
)

// TLSOptions configure the self-managed TLS mode. The zero value is the
// files mode with the certs package's default validities, so options that
// do not use TLS compare equal to NewOptions.
type TLSOptions struct {
	Mode          string        // TLSModeFiles ("" too) or TLSModeSelf
	Secret        string        // Secret holding the CA and the serving certificate
	Namespace     string        // of the Secret and the Service
	Service       string        // the webhook's Service, whose DNS names the certificate carries
	Hosts         []string      // more DNS names or IP addresses (localhost, 127.0.0.1 out of cluster)
	Configs       []string      // Mutating- and ValidatingWebhookConfigurations to inject the CA into
	CertValidity  time.Duration // certs.DefaultServingValidity when zero
	CAValidity    time.Duration // certs.DefaultCAValidity when zero
	CheckInterval time.Duration // certs.DefaultCheckInterval when zero
}

// AddFlags binds the TLS options to fs.
func (t *TLSOptions) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&t.Mode, "tls-mode", t.Mode, `Where the serving certificate comes from: "files" (default; --cert-dir is kept up to date by someone else, e.g. cert-manager) or "self" (the webhook makes, stores, injects and renews its own).`)
	fs.StringVar(&t.Secret, "tls-secret", t.Secret, "Self mode: Secret that holds the CA and serving certificate (the chart creates it empty).")
	fs.StringVar(&t.Namespace, "tls-namespace", t.Namespace, "Self mode: namespace of --tls-secret and --tls-service.")
	fs.StringVar(&t.Service, "tls-service", t.Service, "Self mode: the webhook's Service; the certificate is for its cluster DNS names.")
	fs.Func("tls-hosts", "Self mode: more DNS names or IP addresses for the certificate, comma separated (e.g. localhost,127.0.0.1 out of cluster).", func(s string) error {
		t.Hosts = append(t.Hosts, splitList(s)...)
		return nil
	})
	fs.Func("webhook-configurations", "Self mode: names of the MutatingWebhookConfiguration and ValidatingWebhookConfiguration (one name for both, or a comma-separated list) whose caBundle the webhook fills.", func(s string) error {
		t.Configs = append(t.Configs, splitList(s)...)
		return nil
	})
	fs.DurationVar(&t.CertValidity, "tls-cert-validity", t.CertValidity, "Self mode: validity of a serving certificate (default 1 year); it is renewed when a third is left.")
	fs.DurationVar(&t.CAValidity, "tls-ca-validity", t.CAValidity, "Self mode: validity of the CA (default 10 years); renewed when a third is left, the old one staying trusted until it expires.")
	fs.DurationVar(&t.CheckInterval, "tls-check-interval", t.CheckInterval, "Self mode: how often the Secret and the caBundles are checked (default 1m).")
}

// Validate reports every bad TLS option.
func (t *TLSOptions) Validate() error {
	var errs []error
	switch t.Mode {
	case "", TLSModeFiles:
		return nil
	case TLSModeSelf:
	default:
		return fmt.Errorf("--tls-mode %q: want %s or %s", t.Mode, TLSModeFiles, TLSModeSelf)
	}
	for name, v := range map[string]string{"--tls-secret": t.Secret, "--tls-namespace": t.Namespace} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s: required with --tls-mode self", name))
		}
	}
	if len(t.Configs) == 0 {
		errs = append(errs, errors.New("--webhook-configurations: required with --tls-mode self"))
	}
	if t.Service == "" && len(t.Hosts) == 0 {
		errs = append(errs, errors.New("--tls-service or --tls-hosts: the certificate needs a name"))
	}
	for name, d := range map[string]time.Duration{"--tls-cert-validity": t.CertValidity, "--tls-ca-validity": t.CAValidity, "--tls-check-interval": t.CheckInterval} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", name, d))
		}
	}
	// A serving certificate may not outlive its CA, and the CA is renewed
	// when a third of it is left: a certificate must fit in that third.
	certValidity, caValidity := cmp.Or(t.CertValidity, certs.DefaultServingValidity), cmp.Or(t.CAValidity, certs.DefaultCAValidity)
	if 3*certValidity > caValidity {
		errs = append(errs, fmt.Errorf("--tls-ca-validity %s: must be at least 3 x --tls-cert-validity (%s)", caValidity, certValidity))
	}
	return errors.Join(errs...)
}

// setupTLS does nothing in files mode. In self mode it makes sure a
// certificate is in --cert-dir before the webhook server starts (which
// needs one), then leaves a certs.Rotator running in the manager and its
// readiness check among the probes: a replica is not ready before the CA
// is in every webhook configuration.
func setupTLS(ctx context.Context, o Options, mgr ctrl.Manager, ready map[string]healthz.Checker) error {
	t := o.TLS
	if t.Mode != TLSModeSelf {
		return nil
	}
	// Not the manager's client: its reads go through a cache, which would
	// watch every Secret of the cluster, and it is not started yet.
	c, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return fmt.Errorf("self-managed TLS: client: %w", err)
	}
	dns, ips := t.names()
	rot := &certs.Rotator{
		Client:             c,
		Secret:             types.NamespacedName{Namespace: t.Namespace, Name: t.Secret},
		DNSNames:           dns,
		IPs:                ips,
		MutatingWebhooks:   t.Configs,
		ValidatingWebhooks: t.Configs,
		CertDir:            o.CertDir,
		CAValidity:         t.CAValidity,
		Validity:           t.CertValidity,
		CheckInterval:      t.CheckInterval,
		Log:                ctrl.Log.WithName("certs"),
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, tlsSetupPoll, tlsSetupTimeout, true, func(ctx context.Context) (bool, error) {
		if last = rot.Ensure(ctx); last != nil {
			// A configuration created after this pod started is normal at
			// install time; the rotator retries within seconds.
			rot.Log.Info("first certificate check incomplete", "error", last.Error(), "filesReady", rot.FilesReady())
		}
		return rot.FilesReady(), nil
	})
	if err != nil {
		return fmt.Errorf("self-managed TLS: no certificate in %s after %s (last error: %v): %w", o.CertDir, tlsSetupTimeout, last, err)
	}
	ready["certificates"] = rot.ReadyCheck
	return mgr.Add(rot)
}

// names splits --tls-hosts into DNS names and IP addresses, after the
// Service's names.
func (t *TLSOptions) names() ([]string, []net.IP) {
	var dns []string
	var ips []net.IP
	if t.Service != "" {
		dns = certs.ServiceNames(t.Service, t.Namespace)
	}
	for _, h := range t.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
