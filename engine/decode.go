package engine

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// decodeViolation turns one element of a policy's violation set into a
// Violation. A malformed element is an error, not a silent allow.
func decodeViolation(p *Policy, pc PolicyConfig, item *ast.Term) (Violation, error) {
	m, ok := item.Value.(ast.Object)
	if !ok {
		return Violation{}, fmt.Errorf("policy %s: violation %v is not an object", p.Name, item)
	}
	rule, msg := stringAt(m, "rule"), stringAt(m, "msg")
	if rule == "" || msg == "" {
		return Violation{}, fmt.Errorf("policy %s: violation %v needs a rule and a msg", p.Name, item)
	}
	var own Enforcement
	if raw := m.Get(ast.InternedTerm("enforcement")); raw != nil {
		var val any = raw.String()
		if s, isString := raw.Value.(ast.String); isString {
			val = string(s)
		}
		e, err := parseEnforcement(val)
		if err != nil {
			return Violation{}, fmt.Errorf("policy %s rule %s: %w", p.Name, rule, err)
		}
		own = e
	}
	return Violation{
		Policy:      p.Name,
		Rule:        rule,
		Message:     msg,
		Field:       stringAt(m, "field"),
		Enforcement: p.enforcement(pc, rule, own),
	}, nil
}

// stringAt is the string at key of obj, "" when it is absent or no string.
func stringAt(obj ast.Object, key string) string {
	if t := obj.Get(ast.InternedTerm(key)); t != nil {
		if s, ok := t.Value.(ast.String); ok {
			return string(s)
		}
	}
	return ""
}

func decodeMutation(p *Policy, item *ast.Term) (Mutation, error) {
	m, ok := item.Value.(ast.Object)
	if !ok {
		return Mutation{}, fmt.Errorf("policy %s: mutation %v is not an object", p.Name, item)
	}
	op, path, msg := stringAt(m, "op"), stringAt(m, "path"), stringAt(m, "msg")
	out := Mutation{Policy: p.Name, Op: MutationOp(op), Path: path, Message: msg}
	switch out.Op {
	case OpAdd, OpReplace:
		value := m.Get(ast.InternedTerm("value"))
		if value == nil {
			return Mutation{}, fmt.Errorf("policy %s: mutation %s %s needs a value", p.Name, op, path)
		}
		v, err := ast.JSON(value.Value)
		if err != nil {
			return Mutation{}, fmt.Errorf("policy %s: mutation %s %s: %w", p.Name, op, path, err)
		}
		out.Value = v
		fallthrough
	case OpRemove:
		if len(path) < 2 || path[0] != '/' {
			return Mutation{}, fmt.Errorf("policy %s: mutation %s needs a JSON pointer path, got %q", p.Name, op, path)
		}
	case OpNote:
		if msg == "" {
			return Mutation{}, fmt.Errorf("policy %s: a note mutation needs a msg", p.Name)
		}
	default:
		return Mutation{}, fmt.Errorf("policy %s: mutation op %q: want add, replace, remove or note", p.Name, op)
	}
	return out, nil
}

func sortViolations(vs []Violation) {
	slices.SortFunc(vs, func(a, b Violation) int {
		return cmp.Or(cmp.Compare(a.Policy, b.Policy), cmp.Compare(a.Rule, b.Rule),
			cmp.Compare(a.Field, b.Field), cmp.Compare(a.Message, b.Message))
	})
}

func sortMutations(ms []Mutation) {
	slices.SortFunc(ms, func(a, b Mutation) int {
		return cmp.Or(cmp.Compare(a.Policy, b.Policy), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Message, b.Message))
	})
}

// input builds the Rego input document directly as an ast.Value:
// {"request": {...}, "workload": {...}}, the request as the API server
// sends it (the parts policies use) and the workload view of its object
// (view.go), and the object decoded. Each object is decoded once, straight
// from its JSON into AST terms (parseJSON), with no map[string]any in
// between.
func (r *Request) input() (input, object ast.Value, err error) {
	object, err = rawValue(r.Object, "object")
	if err != nil {
		return nil, nil, err
	}
	old, err := rawValue(r.OldObject, "oldObject")
	if err != nil {
		return nil, nil, err
	}
	groups := make([]*ast.Term, len(r.UserInfo.Groups))
	for i, g := range r.UserInfo.Groups {
		groups[i] = ast.StringTerm(g)
	}
	req := ast.NewObject(
		item("uid", ast.String(r.UID)),
		item("kind", ast.NewObject(
			item("group", ast.String(r.Kind.Group)),
			item("version", ast.String(r.Kind.Version)),
			item("kind", ast.String(r.Kind.Kind)),
		)),
		item("namespace", ast.String(r.Namespace)),
		item("name", ast.String(r.Name)),
		item("operation", ast.String(r.Operation)),
		item("dryRun", ast.Boolean(r.DryRun)),
		item("userInfo", ast.NewObject(
			item("username", ast.String(r.UserInfo.Username)),
			item("uid", ast.String(r.UserInfo.UID)),
			item("groups", ast.NewArray(groups...)),
		)),
		item("object", object),
		item("oldObject", old),
	)
	if obj, ok := object.(ast.Object); ok {
		return ast.NewObject(item("request", req), item("workload", workloadView(r.Kind.Kind, r.Namespace, obj))), object, nil
	}
	return ast.NewObject(item("request", req)), object, nil
}

func item(key string, v ast.Value) [2]*ast.Term { return ast.Item(ast.StringTerm(key), ast.NewTerm(v)) }

func rawValue(raw []byte, what string) (ast.Value, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return ast.Null{}, nil
	}
	v, err := parseJSON(raw)
	if err != nil {
		return nil, &ObjectError{Field: what, Err: err}
	}
	if _, ok := v.(ast.Object); !ok {
		return nil, &ObjectError{Field: what, Err: fmt.Errorf("want a JSON object, got %s", ast.ValueName(v))}
	}
	return v, nil
}

// ObjectError is a request's object or oldObject that is not a JSON
// object: the request is at fault, not the policies, so admission answers
// 400 rather than 500 (review.Failed).
type ObjectError struct {
	Field string // "object" or "oldObject"
	Err   error
}

func (e *ObjectError) Error() string { return "decode " + e.Field + ": " + e.Err.Error() }

func (e *ObjectError) Unwrap() error { return e.Err }
