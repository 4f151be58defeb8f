// Package mutate is podgate's mutating admission handler: it asks the
// engine for the policies' mutations, applies them to a copy of the object
// and answers with the JSONPatch computed by diff.
package mutate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/metrics"
	"github.com/podgate/podgate/review"
)

// Annotation records, one line per change, what podgate added and why, so
// `kubectl get -o yaml` explains the mutated object.
const Annotation = "podgate.dev/mutations"

// Handler answers mutating admission requests.
//
// Answers (the error scheme of both podgate webhooks):
//
//	request                                    answer
//	malformed (no uid, no object, bad JSON)    400, allowed: false, the reason
//	operation other than CREATE/UPDATE         200, allowed, no patch
//	out of scope (engine.Skip), Pod UPDATE,
//	  UPDATE with an unchanged pod template    200, allowed, no patch
//	no mutation                                200, allowed, no patch
//	mutations                                  200, allowed, JSONPatch by diff
//	                                           (of the object and its
//	                                           mutated copy, see diff)
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
	ereq, resp, decision, done := review.Start(req, h.Engine)
	if done {
		return resp, decision
	}
	if req.Operation == admissionv1.Update {
		if reason := updateSkip(req); reason != "" {
			return admission.Allowed(reason), metrics.Skipped
		}
	}
	ctx, cancel := review.EvalContext(ctx, h.EvalTimeout)
	defer cancel()
	evalStart := time.Now()
	muts, err := h.Engine.Mutations(ctx, ereq)
	metrics.Evaluation.WithLabelValues("mutate").Observe(time.Since(evalStart).Seconds())
	if err != nil {
		h.Log.Error(err, "evaluation failed", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name)
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("podgate could not evaluate its policies: %w", err)), metrics.Errored
	}
	if len(muts) == 0 {
		return admission.Allowed(""), metrics.Allowed
	}
	patches, err := mutateObject(req.Object.Raw, muts)
	if err != nil {
		h.Log.Error(err, "applying mutations failed", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name)
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("podgate could not apply its mutations: %w", err)), metrics.Errored
	}
	if len(patches) == 0 {
		return admission.Allowed(""), metrics.Allowed
	}
	if log := h.Log.V(1); log.Enabled() {
		log.Info("mutated", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name, "patches", len(patches))
	}
	return admission.Patched("", patches...), metrics.Mutated
}

// templatePaths is where each workload kind keeps its pod template.
var templatePaths = map[string][]string{
	"Deployment":  {"spec", "template"},
	"StatefulSet": {"spec", "template"},
	"DaemonSet":   {"spec", "template"},
	"ReplicaSet":  {"spec", "template"},
	"Job":         {"spec", "template"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template"},
}

// updateSkip says why an UPDATE gets no mutation: podgate never starts a
// rollout by itself, so it mutates only when the pod template changed (a
// rollout is happening anyway). A Pod's spec cannot gain probes after
// creation, so Pod updates are never mutated.
func updateSkip(req admission.Request) string {
	if req.Kind.Kind == "Pod" {
		return "a pod's containers cannot change after creation"
	}
	path, ok := templatePaths[req.Kind.Kind]
	if !ok {
		return ""
	}
	var obj, old map[string]any
	if json.Unmarshal(req.Object.Raw, &obj) != nil || json.Unmarshal(req.OldObject.Raw, &old) != nil {
		return ""
	}
	if reflect.DeepEqual(dig(obj, path), dig(old, path)) {
		return "pod template unchanged; podgate mutates only when a rollout happens anyway"
	}
	return ""
}

func dig(m map[string]any, path []string) any {
	var cur any = m
	for _, k := range path {
		next, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = next[k]
	}
	return cur
}

// mutateObject applies the mutations to a copy of raw, records their
// messages in the podgate.dev/mutations annotation, and returns the patch
// from raw to the copy (diff). Lines already in the annotation are kept,
// so a second admission of the mutated object (reinvocation, kubectl apply
// again) yields the same annotation and no patch.
func mutateObject(raw []byte, muts []engine.Mutation) ([]jsonpatch.JsonPatchOperation, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var original map[string]any
	if err := dec.Decode(&original); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	obj := deepCopy(original).(map[string]any)
	var lines []string
	for _, m := range muts {
		if m.Op != engine.OpNote {
			if err := apply(obj, string(m.Op), m.Path, m.Value); err != nil {
				return nil, fmt.Errorf("policy %s: %w", m.Policy, err)
			}
		}
		if m.Message != "" {
			lines = append(lines, m.Policy+": "+m.Message)
		}
	}
	if err := annotate(obj, lines); err != nil {
		return nil, err
	}
	return diff(original, obj), nil
}

// deepCopy copies the objects and arrays of a decoded document; scalars
// are immutable and shared.
func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = deepCopy(x)
		}
		return out
	}
	return v
}

func annotate(obj map[string]any, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	meta, ok := obj["metadata"].(map[string]any)
	if !ok {
		return fmt.Errorf("object has no metadata")
	}
	anns, _ := meta["annotations"].(map[string]any)
	if anns == nil {
		anns = map[string]any{}
		meta["annotations"] = anns
	}
	if old, ok := anns[Annotation].(string); ok && old != "" {
		lines = append(lines, strings.Split(old, "\n")...)
	}
	slices.Sort(lines)
	anns[Annotation] = strings.Join(slices.Compact(lines), "\n")
	return nil
}
