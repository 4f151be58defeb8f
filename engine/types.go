package engine

import (
	"encoding/json"
	"fmt"
)

// Enforcement says what happens when a rule is broken.
type Enforcement string

// The enforcement levels, weakest first.
const (
	Off    Enforcement = "off"    // the rule is not reported at all
	DryRun Enforcement = "dryrun" // audit annotation, log line and metric only
	Warn   Enforcement = "warn"   // admitted, with a warning kubectl prints
	Deny   Enforcement = "deny"   // rejected with 403
)

func (e Enforcement) rank() int {
	switch e {
	case Off:
		return 0
	case DryRun:
		return 1
	case Warn:
		return 2
	case Deny:
		return 3
	}
	return -1
}

// Valid reports whether e is one of the four levels.
func (e Enforcement) Valid() bool { return e.rank() >= 0 }

func parseEnforcement(v any) (Enforcement, error) {
	s, ok := v.(string)
	if e := Enforcement(s); ok && e.Valid() {
		return e, nil
	}
	return "", fmt.Errorf("enforcement %v: want one of deny, warn, dryrun, off", v)
}

// weaker returns the weaker of two levels.
func weaker(a, b Enforcement) Enforcement {
	if a.rank() < b.rank() {
		return a
	}
	return b
}

// Violation is one broken rule, as a policy reported it.
type Violation struct {
	Policy      string      `json:"policy"`
	Rule        string      `json:"rule"`
	Message     string      `json:"msg"`
	Field       string      `json:"field,omitempty"`
	Enforcement Enforcement `json:"enforcement"`
	// Exception is the PolicyException that covers the violation (its
	// Enforcement is then at most warn), or nil.
	Exception *ExceptionRef `json:"exception,omitempty"`
}

// MutationOp is a JSON Patch style operation, or OpNote for a decision that
// changed nothing but is worth recording.
type MutationOp string

// The mutation operations a policy may ask for.
const (
	OpAdd     MutationOp = "add"
	OpReplace MutationOp = "replace"
	OpRemove  MutationOp = "remove"
	OpNote    MutationOp = "note"
)

// Mutation is one change a mutating policy asks for.
type Mutation struct {
	Policy  string     `json:"policy"`
	Op      MutationOp `json:"op"`
	Path    string     `json:"path,omitempty"`
	Value   any        `json:"value,omitempty"`
	Message string     `json:"msg"`
}

// GroupVersionKind names the kind of the admitted object.
type GroupVersionKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// UserInfo is who sent the request.
type UserInfo struct {
	Username string   `json:"username"`
	UID      string   `json:"uid,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

// Request is what Rego sees as input.request: the parts of an admission
// request that policies use, with the objects as raw JSON.
type Request struct {
	UID       string
	Kind      GroupVersionKind
	Namespace string
	Name      string
	Operation string
	UserInfo  UserInfo
	DryRun    bool
	Object    json.RawMessage
	OldObject json.RawMessage
}

// Taint is a Node taint as the engine sees it.
type Taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"`
}

// Node holds the facts about a Node that policies use.
type Node struct {
	Labels        map[string]string `json:"labels"`
	Taints        []Taint           `json:"taints"`
	Unschedulable bool              `json:"unschedulable"`
}
