package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Defaults, each with its reason.
const (
	// DefaultPort is the webhook's HTTPS port; 9443 is controller-runtime's
	// default and needs no privilege.
	DefaultPort = 9443
	// DefaultCertDir is where the chart mounts the serving certificate.
	DefaultCertDir = "/tmp/k8s-webhook-server/serving-certs"
	// DefaultMetricsAddr serves Prometheus metrics on their own port.
	DefaultMetricsAddr = ":8080"
	// DefaultProbeAddr serves /healthz and /readyz.
	DefaultProbeAddr = ":8081"
	// DefaultEvalTimeout bounds one request's policy evaluation. It is
	// well below the chart's webhook timeoutSeconds (10s) so that a slow
	// policy yields a 500 with a reason, not an API server timeout.
	DefaultEvalTimeout = 3 * time.Second
	// DefaultBodyTimeout bounds how long a client may take to send a
	// request's body once its headers are in (controller-runtime's server
	// bounds the headers: 32s). An API server sends the body at once and
	// gives up on the webhook after timeoutSeconds (10s by default), so a
	// slower body is from no API server, and holding its connection and
	// goroutine open would only help whoever is trickling it.
	DefaultBodyTimeout = 10 * time.Second
)

// Options holds every setting of the webhook server; there are no flag
// globals beyond controller-runtime's --kubeconfig.
type Options struct {
	Port        int
	CertDir     string
	MetricsAddr string
	ProbeAddr   string
	PolicyDir   string
	ConfigFile  string
	EvalTimeout time.Duration
	BodyTimeout time.Duration
	EnableHTTP2 bool
	// Audit: the background audit (package audit), off by default.
	Audit AuditOptions
	Zap   zap.Options
	// TLS: the self-managed TLS mode (tls.go); its zero value is the files
	// mode. The TLS lines of AddFlags and Validate delegate to it.
	TLS TLSOptions
}

// NewOptions returns the defaults.
func NewOptions() Options {
	return Options{
		Port:        DefaultPort,
		CertDir:     DefaultCertDir,
		MetricsAddr: DefaultMetricsAddr,
		ProbeAddr:   DefaultProbeAddr,
		EvalTimeout: DefaultEvalTimeout,
		BodyTimeout: DefaultBodyTimeout,
		Audit:       newAuditOptions(),
	}
}

// AddFlags binds the options to fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.Port, "port", o.Port, "HTTPS port of the /mutate and /validate webhooks.")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "Directory holding tls.crt and tls.key; they are reloaded when they change.")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "Address of /healthz (the process serves) and /readyz (policies loaded, Node inventory synced, webhook server started; ?verbose says which check fails and why).")
	fs.StringVar(&o.PolicyDir, "policy-dir", o.PolicyDir, "Directory of custom .rego policies loaded next to the built-in ones; reloaded when it changes.")
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "Policy configuration YAML (data.podgate.config), merged over the shipped defaults; reloaded when it changes.")
	fs.DurationVar(&o.EvalTimeout, "eval-timeout", o.EvalTimeout, "Deadline of one request's policy evaluation; keep it below the webhook timeoutSeconds.")
	fs.DurationVar(&o.BodyTimeout, "body-timeout", o.BodyTimeout, "How long a client may take to send a request body after its headers; a slower one gets 400 and its connection is closed.")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", o.EnableHTTP2, "Serve HTTP/2 too. Off by default, as in kubebuilder, against HTTP/2 stream-reset attacks.")
	o.TLS.AddFlags(fs)   // TLS: see tls.go
	o.Audit.AddFlags(fs) // audit: see audit.go
	config.RegisterFlags(fs)
	o.Zap.BindFlags(fs)
}

// Validate reports every bad option at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Port < 1 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d: want 1-65535", o.Port))
	}
	if o.CertDir == "" {
		errs = append(errs, errors.New("--cert-dir: must not be empty"))
	}
	if o.EvalTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--eval-timeout %s: must be positive", o.EvalTimeout))
	}
	if o.BodyTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--body-timeout %s: must be positive", o.BodyTimeout))
	}
	errs = append(errs, o.TLS.Validate(), o.Audit.Validate()) // see tls.go, audit.go
	return errors.Join(errs...)
}

// command parses flags into Options and calls its run function, which
// tests replace to check the parsed options without starting a server.
type command struct {
	run func(context.Context, Options) error
}

func newCommand(run func(context.Context, Options) error) *command {
	return &command{run: run}
}

// Execute parses args and runs.
func (c *command) Execute(ctx context.Context, args []string) error {
	o := NewOptions()
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := o.Validate(); err != nil {
		return err
	}
	return c.run(ctx, o)
}
