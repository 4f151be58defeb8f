package engine

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/profiler"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Profile counts, for every Rego expression the engine evaluates while it
// is in the context (WithProfile), how often it was evaluated and the time
// spent in it, as `opa eval --profile` does: what a policy author reads to
// see which of their rules cost what. A Profile is not safe for concurrent
// evaluations.
type Profile struct {
	p     *profiler.Profiler
	evals int // evaluations of the queries profiled
}

// NewProfile returns an empty Profile.
func NewProfile() *Profile { return &Profile{p: profiler.New()} }

type profileKey struct{}

// WithProfile returns ctx with p in it: every evaluation under ctx adds to p.
func WithProfile(ctx context.Context, p *Profile) context.Context {
	return context.WithValue(ctx, profileKey{}, p)
}

// profiling says whether ctx carries a Profile.
func profiling(ctx context.Context) bool {
	_, ok := ctx.Value(profileKey{}).(*Profile)
	return ok
}

// profileOptions adds the profiler of ctx's Profile, if it has one.
func profileOptions(ctx context.Context, opts []rego.EvalOption) []rego.EvalOption {
	p, _ := ctx.Value(profileKey{}).(*Profile)
	if p == nil {
		return opts
	}
	p.evals++
	return append(opts, rego.EvalQueryTracer(p.p))
}

// ProfileLine is one Rego expression of a Profile, where it is (SourceLine
// gives its text).
type ProfileLine struct {
	File        string
	Row         int
	Evaluations int
	// TimeNs is the time from the expression's start to its end, which in
	// Rego includes what it calls and, for an expression that binds a
	// variable, the rest of its rule evaluated with each binding.
	TimeNs int64
}

// Queries is how many policy evaluations the profile covers (a mutation
// and a validation are one each).
func (p *Profile) Queries() int { return p.evals }

// Lines are the profiled expressions of the policies, costliest first
// (time, then evaluations, then place); the engine's own query, which
// only collects the policies' results, is left out.
func (p *Profile) Lines() []ProfileLine {
	var out []ProfileLine
	for _, s := range p.p.ReportTopNResults(0, nil) {
		if s.Location == nil || s.Location.File == "" {
			continue
		}
		out = append(out, ProfileLine{File: s.Location.File, Row: s.Location.Row, Evaluations: s.NumEval, TimeNs: s.ExprTimeNs})
	}
	slices.SortFunc(out, func(a, b ProfileLine) int {
		return cmp.Or(cmp.Compare(b.TimeNs, a.TimeNs), cmp.Compare(b.Evaluations, a.Evaluations),
			cmp.Compare(a.File, b.File), cmp.Compare(a.Row, b.Row))
	})
	return out
}

// SourceLine is line row (from 1) of a policy file of the current set, as
// a Rego location names it, without surrounding blanks; "" when the set
// has no such file or line.
func (e *Engine) SourceLine(file string, row int) string {
	s := e.current.Load()
	if s == nil || row < 1 {
		return ""
	}
	lines := strings.Split(string(s.sources[file]), "\n")
	if row > len(lines) {
		return ""
	}
	return strings.TrimSpace(lines[row-1])
}
