package main

import (
	"context"
	"encoding/json"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/mutate"
	"github.com/podgate/podgate/review"
	"github.com/podgate/podgate/validate"
)

// decision is what admission would do with one object: the mutating
// webhook first, then the validating webhook on the mutated object, as the
// API server calls them.
type decision struct {
	Source     string             `json:"source"`
	Index      int                `json:"index"`
	Object     string             `json:"object"`
	Allowed    bool               `json:"allowed"`
	Skipped    string             `json:"skipped,omitempty"`
	Violations []engine.Violation `json:"violations"`
	Denials    []string           `json:"denials,omitempty"`
	Warnings   []string           `json:"warnings,omitempty"`
	Patch      []map[string]any   `json:"patch,omitempty"`
	Mutated    json.RawMessage    `json:"mutated,omitempty"`

	original json.RawMessage
}

// decider runs the webhook's own handlers offline.
type decider struct {
	eng       *engine.Engine
	mutate    *mutate.Handler
	namespace string // for objects that name none
}

func newDecider(eng *engine.Engine, namespace string) *decider {
	return &decider{eng: eng, mutate: &mutate.Handler{Engine: eng, Log: logr.Discard()}, namespace: namespace}
}

func (d *decider) decide(ctx context.Context, doc document, old *document) (decision, error) {
	ns := doc.Ns
	if ns == "" {
		ns = d.namespace
	}
	req := admissionRequest(doc, old, ns)
	out := decision{Source: doc.Source, Index: doc.Index, Object: validate.Describe(req), original: doc.Raw, Violations: []engine.Violation{}}

	mresp := d.mutate.Handle(ctx, req)
	if !mresp.Allowed {
		return out, failed("%s: mutating webhook: %s", doc.where(), mresp.Result.Message)
	}
	mutated := doc.Raw
	if len(mresp.Patches) > 0 {
		var err error
		if mutated, err = applyPatch(doc.Raw, mresp); err != nil {
			return out, failed("%s: %v", doc.where(), err)
		}
		raw, _ := json.Marshal(mresp.Patches)
		_ = json.Unmarshal(raw, &out.Patch)
		out.Mutated = mutated
	}
	req.Object.Raw = mutated
	ereq := review.EngineRequest(req)
	if out.Skipped = d.eng.Skip(ereq); out.Skipped != "" {
		out.Allowed = true
		return out, nil
	}
	vs, err := validate.Violations(ctx, d.eng, ereq)
	if err != nil {
		return out, failed("%s: %v", doc.where(), err)
	}
	out.Allowed = true
	for _, v := range vs {
		out.Violations = append(out.Violations, v)
		switch v.Enforcement {
		case engine.Deny:
			out.Allowed = false
			out.Denials = append(out.Denials, validate.Line(out.Object, v))
		case engine.Warn:
			out.Warnings = append(out.Warnings, validate.Line(out.Object, v))
		}
	}
	return out, nil
}

func applyPatch(obj []byte, resp admission.Response) ([]byte, error) {
	raw, err := json.Marshal(resp.Patches)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		return nil, fmt.Errorf("decode patch: %w", err)
	}
	out, err := p.Apply(obj)
	if err != nil {
		return nil, fmt.Errorf("apply patch: %w", err)
	}
	return out, nil
}

// admissionRequest is the request the API server would send for doc.
func admissionRequest(doc document, old *document, namespace string) admission.Request {
	op := admissionv1.Create
	var oldRaw []byte
	if old != nil {
		op, oldRaw = admissionv1.Update, old.Raw
	}
	gvk := doc.GVK
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID(fmt.Sprintf("podgate-eval-%d", doc.Index)),
		Kind:      metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Resource:  metav1.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: admitted[gvk]},
		Name:      doc.Name,
		Namespace: namespace,
		Operation: op,
		UserInfo:  authenticationv1.UserInfo{Username: "podgate-eval"},
		Object:    runtime.RawExtension{Raw: doc.Raw},
		OldObject: runtime.RawExtension{Raw: oldRaw},
	}}
}
