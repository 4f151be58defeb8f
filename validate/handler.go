// Package validate is podgate's validating admission handler: it asks the
// engine for its decision (engine.Validate) and turns the violations into
// a denial, warnings or audit annotations.
package validate

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/metrics"
	"github.com/podgate/podgate/review"
)

// Handler answers validating admission requests: a denial (403) listing
// every deny violation, warnings, audit annotations for the dryrun ones.
// Its answers to every input, bad ones included, are the error scheme of
// both webhooks, in one table in package review.
type Handler struct {
	Engine *engine.Engine
	Log    logr.Logger
	// EvalTimeout bounds the evaluation of one request.
	EvalTimeout time.Duration
}

// Handle implements admission.Handler.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp, decision := h.handle(ctx, req)
	metrics.Requests.WithLabelValues("validate", string(req.Operation), req.Kind.Kind, decision).Inc()
	metrics.Latency.WithLabelValues("validate").Observe(time.Since(start).Seconds())
	return resp
}

func (h *Handler) handle(ctx context.Context, req admission.Request) (admission.Response, string) {
	if err := review.Check(req); err != nil {
		return admission.Errored(http.StatusBadRequest, err), metrics.Errored
	}
	if isException(req) && (req.Operation == "CREATE" || req.Operation == "UPDATE") {
		return h.checkException(req)
	}
	ctx, cancel := review.EvalContext(ctx, h.EvalTimeout)
	defer cancel()
	evalStart := time.Now()
	d, err := h.Engine.Validate(ctx, review.EngineRequest(req))
	metrics.Evaluation.WithLabelValues("validate").Observe(time.Since(evalStart).Seconds())
	switch {
	case err != nil:
		h.Log.Error(err, "evaluation failed", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name)
		return review.Failed(err), metrics.Errored
	case d.Skipped != "":
		return admission.Allowed(d.Skipped), metrics.Skipped
	}
	return h.respond(req, d)
}

// respond turns the decision into the answer: a denial listing every deny
// violation, warnings, and audit annotations for the dryrun ones.
func (h *Handler) respond(req admission.Request, d *engine.Decision) (admission.Response, string) {
	audit := map[string]string{}
	for _, v := range d.Violations {
		metrics.Violations.WithLabelValues(v.Policy, v.Rule, string(v.Enforcement)).Inc()
		if v.Exception != nil {
			metrics.Excepted.WithLabelValues(v.Policy, v.Rule).Inc()
		}
		if v.Enforcement == engine.DryRun {
			key := v.Policy + "." + v.Rule
			audit[key] = joinNonEmpty(audit[key], d.Line(v))
			h.Log.Info("dryrun violation", "policy", v.Policy, "rule", v.Rule, "object", d.Object, "message", v.Message)
		}
	}
	warnings := d.Lines(engine.Warn)
	var resp admission.Response
	decision := metrics.Allowed
	switch denies := d.Lines(engine.Deny); {
	case len(denies) > 0:
		resp = admission.Denied(strings.Join(denies, "\n"))
		decision = metrics.Denied
		h.Log.Info("denied", "object", d.Object, "operation", req.Operation, "violations", len(denies))
	case len(warnings) > 0:
		resp = admission.Allowed("")
		decision = metrics.Warned
	default:
		resp = admission.Allowed("")
	}
	if len(audit) > 0 {
		resp.AuditAnnotations = audit
	}
	return resp.WithWarnings(warnings...), decision
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + "\n" + b
}
