// Package mutate is podgate's mutating admission handler: it asks the
// engine what the mutating policies change (engine.Mutate) and answers
// with the JSONPatch from the object to its mutated copy.
package mutate

import (
	"context"
	"fmt"
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

// Handler answers mutating admission requests.
//
// Answers (the error scheme of both podgate webhooks):
//
//	request                                    answer
//	malformed (no uid, no object, bad JSON)    400, allowed: false, the reason
//	out of scope (engine.Skip: operation,
//	  namespace, controller write), Pod UPDATE,
//	  UPDATE with an unchanged pod template    200, allowed, no patch
//	no mutation                                200, allowed, no patch
//	mutations                                  200, allowed, JSONPatch by diff
//	                                           (of the object and its
//	                                           mutated copy)
//	evaluation or patch failure                500, allowed: false, the reason
//	                                           (never a silent allow; the
//	                                           failurePolicy decides)
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
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("podgate could not evaluate its policies: %w", err)), metrics.Errored
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
