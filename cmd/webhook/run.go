package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/api/v1alpha1"
	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/exception"
	"github.com/podgate/podgate/health"
	"github.com/podgate/podgate/inventory"
	"github.com/podgate/podgate/mutate"
	"github.com/podgate/podgate/policies"
	"github.com/podgate/podgate/reload"
	"github.com/podgate/podgate/validate"
)

// run wires the engine, the policy watcher, the Node inventory and the two
// handlers into a controller-runtime manager and serves until ctx ends.
func run(ctx context.Context, o Options) error {
	if o.Zap.StacktraceLevel == nil {
		// An error here is an operator's broken policy or an unreachable
		// API server, not a bug: a stack trace would bury the message.
		// --zap-stacktrace-level brings them back.
		o.Zap.StacktraceLevel = zapcore.PanicLevel
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.Zap)))
	tuneGC(o.Audit.Enabled) // see gc.go
	log := ctrl.Log.WithName("podgate")
	log.Info("starting podgate webhook", "version", version)

	eng := engine.New()
	eng.PlanAhead()
	watcher := &reload.Watcher{Engine: eng, Sources: o.sources(), Log: log.WithName("reload")}
	// A broken policy or config at start does not stop the webhook: it
	// serves unready, says why on /readyz, and the watcher loads the
	// sources once they are fixed (a crash loop would do neither).
	_ = watcher.Load(ctx)

	restConfig, err := config.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1alpha1.AddToScheme(scheme)); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: o.MetricsAddr},
		// The probes are served by health.Server (below), which can show
		// a rejected policy change on /readyz without failing it.
		HealthProbeBindAddress: "0",
		WebhookServer: webhook.NewServer(webhook.Options{
			Port:    o.Port,
			CertDir: o.CertDir,
			TLSOpts: []func(*tls.Config){o.tlsConfig},
		}),
		// The PolicyException informer is made once the CRD is there
		// (exception.Feeder): configuring it here would need the CRD to
		// start, and podgate must serve without it.
		Cache: cache.Options{
			ByObject:         map[client.Object]cache.ByObject{&corev1.Node{}: inventory.CacheOptions()},
			DefaultTransform: cache.TransformStripManagedFields(),
		},
		MapperProvider: inventory.RESTMapper,
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	registerHandlers(mgr.GetWebhookServer(), eng, o, log)
	inv := &inventory.Inventory{Cache: mgr.GetCache(), Engine: eng, Log: log.WithName("inventory")}
	probes := &health.Server{
		Addr: o.ProbeAddr,
		Live: map[string]healthz.Checker{"ping": healthz.Ping},
		Ready: map[string]healthz.Checker{
			"policies":  watcher.ReadyCheck,
			"inventory": inv.ReadyCheck,
			"webhook":   mgr.GetWebhookServer().StartedChecker(),
		},
		Conditions: map[string]func() string{"policy-reload": watcher.Condition},
	}
	exceptions := &exception.Feeder{Cache: mgr.GetCache(), Mapper: mgr.GetRESTMapper(), Engine: eng, Log: log.WithName("exceptions")}
	probes.Conditions["exceptions"] = exceptions.Condition
	if err := setupTLS(ctx, o, mgr, probes.Ready); err != nil { // self-managed TLS: see tls.go
		return err
	}
	auditor, err := addAudit(mgr, eng, restConfig, o.Audit, log.WithName("audit")) // see audit.go
	if err != nil {
		return err
	}
	if auditor != nil {
		probes.Conditions["audit"] = auditor.Condition
	}
	if err := errors.Join(mgr.Add(inv), mgr.Add(watcher), mgr.Add(exceptions), mgr.Add(probes)); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// registerHandlers serves the two webhooks. Every answer, a malformed
// request's too, is HTTP 200 with the code inside the AdmissionReview, as
// controller-runtime writes it: the error scheme in package review says
// why.
func registerHandlers(server webhook.Server, eng *engine.Engine, o Options, log logr.Logger) {
	server.Register("/mutate", withBodyDeadline(o.BodyTimeout, &webhook.Admission{
		Handler:      &mutate.Handler{Engine: eng, Log: log.WithName("mutate"), EvalTimeout: o.EvalTimeout},
		RecoverPanic: ptr.To(true),
	}))
	server.Register("/validate", withBodyDeadline(o.BodyTimeout, &webhook.Admission{
		Handler:      &validate.Handler{Engine: eng, Log: log.WithName("validate"), EvalTimeout: o.EvalTimeout},
		RecoverPanic: ptr.To(true),
	}))
}

func (o *Options) sources() engine.Sources {
	return engine.Sources{Builtin: policies.FS, PolicyDir: o.PolicyDir, ConfigFile: o.ConfigFile}
}

func (o *Options) tlsConfig(c *tls.Config) {
	c.MinVersion = tls.VersionTLS12
	if !o.EnableHTTP2 {
		c.NextProtos = []string{"http/1.1"}
	}
}

// withBodyDeadline gives a request's body d to arrive: a client that
// trickles it gets a 400 (the read fails, and controller-runtime answers
// that it could not read the body) instead of holding a connection and a
// goroutine for as long as it likes. The server sets a fresh read deadline
// before the next request on the connection, so this one ends with the
// request.
func withBodyDeadline(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An error means the connection cannot take a deadline (only in
		// tests with a recorder); the request is served all the same.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		h.ServeHTTP(w, r)
	})
}

var _ admission.Handler = (*mutate.Handler)(nil)
