package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"gomodules.xyz/jsonpatch/v2"
)

// Decision is what podgate does with one object: what the mutating
// policies change and what the validating policies find, each violation
// with the enforcement it finally gets. The webhooks, `podgate eval` and
// the audit all take their answers from a Decision, so they cannot
// disagree.
type Decision struct {
	// Object names the object as messages show it: "Deployment default/web".
	Object string `json:"object"`
	// Skipped says why the policies did not look at the object; "" when
	// they did.
	Skipped string `json:"skipped,omitempty"`
	// Mutations are the changes the mutating policies ask for, notes
	// included, sorted by policy and path.
	Mutations []Mutation `json:"mutations,omitempty"`
	// Patch turns the object into the mutated one (the JSONPatch of the
	// mutating webhook's answer); empty when the mutations change nothing.
	Patch []jsonpatch.JsonPatchOperation `json:"patch,omitempty"`
	// Violations are the broken rules of the (mutated) object, sorted,
	// each with its resolved enforcement: off rules are left out, and on
	// UPDATE a deny the old object already broke is a warn (Downgraded).
	Violations []Violation `json:"violations"`

	mutated    map[string]any // the object after the mutations, not all opened; nil when Patch is empty
	generation int64          // the policy set's, for Revalidate
	exceptions int64          // the exceptions' generation, for Revalidate
}

// Allowed says whether admission lets the object in: no violation denies.
func (d *Decision) Allowed() bool {
	for _, v := range d.Violations {
		if v.Enforcement == Deny {
			return false
		}
	}
	return true
}

// Lines are the violations of enforcement e as a denial or a warning
// reads them: "[policy/rule] Kind namespace/name: what is wrong; how to fix".
func (d *Decision) Lines(e Enforcement) []string {
	var out []string
	for _, v := range d.Violations {
		if v.Enforcement == e {
			out = append(out, d.Line(v))
		}
	}
	return out
}

// Line is how violation v of this object reads in a denial or a warning.
func (d *Decision) Line(v Violation) string {
	return fmt.Sprintf("[%s/%s] %s: %s", v.Policy, v.Rule, d.Object, v.Message)
}

// Changes are the mutations that change the object (the probes the next
// apply would inject), without the notes.
func (d *Decision) Changes() []Mutation {
	var out []Mutation
	for _, m := range d.Mutations {
		if m.Op != OpNote {
			out = append(out, m)
		}
	}
	return out
}

// Mutated is the object with the mutations applied, as JSON; nil when
// they change nothing. < > and & stay as they are (podgate's notes quote
// "<port>:<path>"): the JSON is for people and tools, not for HTML.
func (d *Decision) Mutated() (json.RawMessage, error) {
	if d.mutated == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(plain(d.mutated)); err != nil {
		return nil, fmt.Errorf("encode mutated object: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Decide is what admission does with req, as the API server calls
// podgate: the mutating webhook first, then the validating webhook on the
// mutated object, with one policy set. The CLI and the audit use it.
func (e *Engine) Decide(ctx context.Context, req *Request) (*Decision, error) {
	s := e.current.Load()
	if s == nil {
		return nil, ErrNotLoaded
	}
	d, err := e.mutate(ctx, s, req)
	if err != nil || e.Skip(req) != "" {
		return d, err
	}
	validated := req
	if d.mutated != nil {
		raw, err := d.Mutated()
		if err != nil {
			return d, err
		}
		mutated := *req
		mutated.Object = raw
		validated = &mutated
	}
	v, err := e.validate(ctx, s, validated)
	if err != nil {
		return d, err
	}
	d.Skipped, d.Violations = v.Skipped, v.Violations
	return d, nil
}

// Mutate is the mutating webhook's decision: the policies' mutations,
// applied to a copy of the object (creating missing parents) and recorded
// in the podgate.dev/mutations annotation, and the patch from the object
// to that copy. On UPDATE it mutates only when the pod template changed:
// podgate never starts a rollout by itself.
func (e *Engine) Mutate(ctx context.Context, req *Request) (*Decision, error) {
	s := e.current.Load()
	if s == nil {
		return nil, ErrNotLoaded
	}
	return e.mutate(ctx, s, req)
}

func (e *Engine) mutate(ctx context.Context, s *set, req *Request) (*Decision, error) {
	d := &Decision{Object: req.Describe(), Violations: []Violation{}, generation: s.generation, exceptions: e.exceptionsGen.Load()}
	if d.Skipped = e.Skip(req); d.Skipped != "" {
		return d, nil
	}
	if req.Operation == OperationUpdate {
		if d.Skipped = updateSkip(req); d.Skipped != "" {
			return d, nil
		}
	}
	muts, object, err := e.mutations(ctx, s, req)
	if err != nil || len(muts) == 0 {
		return d, err
	}
	d.Mutations = muts
	// The object as the policies saw it, opened as the mutations reach it.
	before, ok := opened(object).(map[string]any)
	if !ok {
		return d, &ObjectError{Field: "object", Err: fmt.Errorf("not a JSON object")}
	}
	after, err := mutateObject(before, muts)
	if err != nil {
		return d, err
	}
	if d.Patch = diff(before, after); len(d.Patch) > 0 {
		d.mutated = after
	}
	return d, nil
}

// Validate is the validating webhook's decision: every violation of the
// object with its resolved enforcement. On UPDATE, a deny that the old
// object already broke in the same field becomes a warning, so an existing
// object stays scalable and labelable after a policy was added. A
// violation an unexpired PolicyException covers names it, and a deny
// becomes a warning (SetExceptions).
func (e *Engine) Validate(ctx context.Context, req *Request) (*Decision, error) {
	s := e.current.Load()
	if s == nil {
		return nil, ErrNotLoaded
	}
	return e.validate(ctx, s, req)
}

func (e *Engine) validate(ctx context.Context, s *set, req *Request) (*Decision, error) {
	d := &Decision{Object: req.Describe(), Violations: []Violation{}, generation: s.generation, exceptions: e.exceptionsGen.Load()}
	if d.Skipped = e.Skip(req); d.Skipped != "" {
		return d, nil
	}
	vs, err := e.violations(ctx, s, req, s.plan(req.Kind.Kind).violations)
	if err != nil {
		return d, err
	}
	if req.Operation == OperationUpdate && hasDeny(vs) {
		if err := e.downgradeOld(ctx, s, req, vs); err != nil {
			return d, err
		}
	}
	e.except(s, req, vs)
	if vs != nil {
		d.Violations = vs
	}
	return d, nil
}

// downgradeOld turns into a warning each deny of vs that the old object
// of req already broke in the same field.
func (e *Engine) downgradeOld(ctx context.Context, s *set, req *Request, vs []Violation) error {
	oldReq := *req
	oldReq.Object, oldReq.OldObject = req.OldObject, nil
	old, err := e.violations(ctx, s, &oldReq, s.plan(req.Kind.Kind).violations)
	if err != nil {
		return fmt.Errorf("old object: %w", err)
	}
	before := make(map[string]bool, len(old))
	for _, v := range old {
		before[v.Policy+"/"+v.Rule+"/"+v.Field] = true
	}
	for i, v := range vs {
		if v.Enforcement == Deny && before[v.Policy+"/"+v.Rule+"/"+v.Field] {
			vs[i].Enforcement = Warn
			vs[i].Message += " (already so before this update, so it is allowed for now)"
		}
	}
	return nil
}

func hasDeny(vs []Violation) bool {
	for _, v := range vs {
		if v.Enforcement == Deny {
			return true
		}
	}
	return false
}

// Describe names the object as messages show it: "Deployment default/web",
// or "Node worker-1" for a cluster-scoped one. An object created with
// generateName is shown as "prefix*".
func (r *Request) Describe() string {
	name := r.Name
	if name == "" {
		var obj struct {
			Metadata struct {
				Name         string `json:"name"`
				GenerateName string `json:"generateName"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(r.Object, &obj) // best effort: only for the message
		name = obj.Metadata.Name
		if name == "" && obj.Metadata.GenerateName != "" {
			name = obj.Metadata.GenerateName + "*"
		}
	}
	if r.Namespace == "" {
		return r.Kind.Kind + " " + name
	}
	return r.Kind.Kind + " " + r.Namespace + "/" + name
}

func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, &ObjectError{Field: "object", Err: err}
	}
	if obj == nil {
		return nil, &ObjectError{Field: "object", Err: fmt.Errorf("not a JSON object")}
	}
	return obj, nil
}
