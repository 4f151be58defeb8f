// Package mutate is podgate's mutating admission handler: it asks the
// engine what the mutating policies change (engine.Mutate) and answers
// with the JSONPatch from the object to its mutated copy.
package mutate

import (
	"context"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/metrics"
	"github.com/podgate/podgate/review"
)

// Annotation records, one line per change, what podgate added and why.
const Annotation = engine.MutationsAnnotation

// Handler answers mutating admission requests with the JSONPatch from the
// object to its mutated copy. Its answers to every input, bad ones
// included, are the error scheme of both webhooks, in one table in package
// review.
type Handler struct {
	Engine *engine.Engine
	Log    logr.Logger
	// EvalTimeout bounds one evaluation; it stays below the webhook's
	// timeoutSeconds so a slow policy yields a 500 with a reason rather
	// than an API server timeout.
	EvalTimeout time.Duration
}

// Handle implements admission.Handler.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp, decision := h.handle(ctx, req)
	metrics.Requests.WithLabelValues("mutate", string(req.Operation), req.Kind.Kind, decision).Inc()
	metrics.Latency.WithLabelValues("mutate").Observe(time.Since(start).Seconds())
	return resp
}

func (h *Handler) handle(ctx context.Context, req admission.Request) (admission.Response, string) {
	if err := review.Check(req); err != nil {
		return admission.Errored(http.StatusBadRequest, err), metrics.Errored
	}
	ctx, cancel := review.EvalContext(ctx, h.EvalTimeout)
	defer cancel()
	evalStart := time.Now()
	d, err := h.Engine.Mutate(ctx, review.EngineRequest(req))
	metrics.Evaluation.WithLabelValues("mutate").Observe(time.Since(evalStart).Seconds())
	switch {
	case err != nil:
		h.Log.Error(err, "evaluation failed", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name)
		return review.Failed(err), metrics.Errored
	case d.Skipped != "":
		return admission.Allowed(d.Skipped), metrics.Skipped
	case len(d.Patch) == 0:
		return admission.Allowed(""), metrics.Allowed
	}
	if log := h.Log.V(1); log.Enabled() {
		log.Info("mutated", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name, "patches", len(d.Patch))
	}
	return admission.Patched("", d.Patch...), metrics.Mutated
}
