package main

import (
	"context"
	"encoding/json"
	"fmt"

	"gomodules.xyz/jsonpatch/v2"

	"github.com/podgate/podgate/engine"
)

// decision is what admission would do with one object (engine.Decide: the
// mutating webhook first, then the validating webhook on the mutated
// object, as the API server calls them), with where the object was read.
// It is what `podgate eval -o json` and `podgate audit -o json` print for
// each object.
type decision struct {
	// Source is the file the object was read from ("-" for standard
	// input, "cluster" for podgate audit).
	Source string `json:"source,omitempty"`
	// Index is the object's position in Source, from 1 (decodeObjects).
	Index   int    `json:"index,omitempty"`
	Object  string `json:"object"`
	Allowed bool   `json:"allowed"`
	// Error says why the object could not be evaluated (the webhook would
	// answer 500); Allowed is false then, and nothing else is set.
	Error      string                         `json:"error,omitempty"`
	Skipped    string                         `json:"skipped,omitempty"`
	Violations []engine.Violation             `json:"violations"`
	Denials    []string                       `json:"denials,omitempty"`
	Warnings   []string                       `json:"warnings,omitempty"`
	Mutations  []engine.Mutation              `json:"mutations,omitempty"`
	Patch      []jsonpatch.JsonPatchOperation `json:"patch,omitempty"`
	Mutated    json.RawMessage                `json:"mutated,omitempty"`

	original json.RawMessage
}

// decider asks the engine offline what the webhooks would answer.
type decider struct {
	eng       *engine.Engine
	namespace string // for objects that name none
}

func newDecider(eng *engine.Engine, namespace string) *decider {
	return &decider{eng: eng, namespace: namespace}
}

// decide is what admission would do with doc (an UPDATE of old when old
// is not nil). An evaluation error is the decision's Error: the other
// objects are still decided.
func (d *decider) decide(ctx context.Context, doc document, old *document) decision {
	req := engineRequest(doc, old, d.namespace)
	out := decision{Source: doc.Source, Index: doc.Index, Object: req.Describe(), original: doc.Raw, Violations: []engine.Violation{}}
	if doc.Unchecked != "" {
		if doc.Ns == "" {
			out.Object = doc.GVK.Kind + " " + doc.Name // its scope is unknown here
		}
		out.Allowed, out.Skipped = true, doc.Unchecked
		return out
	}
	dec, err := d.eng.Decide(ctx, req)
	if err == nil {
		err = out.set(dec)
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// set fills d from the engine's decision.
func (d *decision) set(dec *engine.Decision) error {
	var err error
	if d.Mutated, err = dec.Mutated(); err != nil {
		return err
	}
	d.Object = dec.Object
	d.Patch = dec.Patch
	d.Mutations = dec.Changes()
	d.Skipped = dec.Skipped
	d.Allowed = dec.Allowed()
	d.Violations = dec.Violations
	d.Denials = dec.Lines(engine.Deny)
	d.Warnings = dec.Lines(engine.Warn)
	return nil
}

// engineRequest is the request the API server would send for doc: a
// CREATE, or an UPDATE of old.
func engineRequest(doc document, old *document, namespace string) *engine.Request {
	if doc.Ns != "" {
		namespace = doc.Ns
	}
	op := engine.OperationCreate
	var oldRaw []byte
	if old != nil {
		op, oldRaw = engine.OperationUpdate, old.Raw
	}
	return &engine.Request{
		UID:       fmt.Sprintf("podgate-eval-%d", doc.Index),
		Kind:      engine.GroupVersionKind{Group: doc.GVK.Group, Version: doc.GVK.Version, Kind: doc.GVK.Kind},
		Namespace: namespace,
		Name:      doc.Name,
		Operation: op,
		UserInfo:  engine.UserInfo{Username: "podgate-eval"},
		Object:    doc.Raw,
		OldObject: oldRaw,
	}
}
