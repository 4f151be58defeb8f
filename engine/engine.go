// Package engine compiles podgate's Rego policies and evaluates them. It
// knows nothing of HTTP, admission or informers: it takes a Request and
// Node facts as plain data, so the webhook and the podgate CLI decide alike.
package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// Engine evaluates the current policy set. It is safe for concurrent use:
// a new set (Load) and new Node facts (SetNodes) are swapped in atomically
// while requests keep being evaluated.
type Engine struct {
	current    atomic.Pointer[set]
	generation atomic.Int64
	nodesGen   atomic.Int64
	// exceptions are applied after evaluation (except); set by SetExceptions.
	exceptions    atomic.Pointer[[]Exception]
	exceptionsGen atomic.Int64

	// topdownOnly interprets every query with topdown, never by its plan
	// (ir.go): for the tests that hold the two to each other.
	topdownOnly bool
	planAhead   bool // PlanAhead

	mu        sync.Mutex    // serializes Load and SetNodes
	inventory ast.Value     // the last inventory, as Rego data (inventoryValue)
	changed   chan struct{} // closed and replaced at every change (Changed)
}

// set is one compiled policy set with its config and data store.
type set struct {
	policies []*Policy
	config   *Config
	store    storage.Store
	compiler *ast.Compiler
	// plans are what is evaluated for each kind (plan.go).
	plans      map[string]*plan
	hash       string
	generation int64 // the engine's Generation when it was loaded
	// sources are the policy files as read, by the name locations give
	// (SourceLine).
	sources map[string][]byte
	// data is the store's data document, for the plans (readData).
	data atomic.Pointer[ast.Value]

	// prepareMu serializes the queries prepared after the set is built
	// (plans, explain): preparing one sets the shared compiler's mode.
	prepareMu sync.Mutex
	// explain is prepared on first use (podgate explain): the webhook
	// never needs it.
	explainOnce sync.Once
	explain     *rego.PreparedEvalQuery
	explainErr  error
}

// ErrNotLoaded is returned by evaluations before a policy set was loaded.
var ErrNotLoaded = errors.New("no policy set loaded")

// New returns an engine with no policy set; call Load.
func New() *Engine {
	empty, _ := inventoryValue(nil)
	return &Engine{inventory: empty, changed: make(chan struct{})}
}

// Load compiles the policy set from src and, if that succeeds, swaps it in.
// On error the previous set keeps serving.
func (e *Engine) Load(ctx context.Context, src Sources) error {
	_, err := e.load(ctx, src, "")
	return err
}

// Reload is Load for a running webhook: when the sources are byte for byte
// those of the current set, nothing is compiled or swapped and changed is
// false. On error the current set keeps serving.
func (e *Engine) Reload(ctx context.Context, src Sources) (changed bool, err error) {
	return e.load(ctx, src, e.Hash())
}

func (e *Engine) load(ctx context.Context, src Sources, unchanged string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := compile(ctx, src, e.inventory, unchanged)
	if err != nil || s == nil {
		return false, err
	}
	if e.planAhead {
		s.planAll(ctx)
	}
	s.generation = e.generation.Add(1)
	e.current.Store(s)
	e.notify()
	return true, nil
}

// PlanAhead makes every Load and Reload plan the new set's queries before
// swapping it in (engine/ir.go), so that after a policy change no request
// is interpreted while the plans are made: for a server, whose loads are
// rare and whose requests are many. Without it, a query is planned in the
// background after its first request. Call it before the first Load.
func (e *Engine) PlanAhead() { e.planAhead = true }

// Changed returns a channel that is closed at the next change of what
// decisions depend on: a new policy set (Generation), new Node facts
// (NodesGeneration) or new exceptions (ExceptionsGeneration). The audit re-judges what it has seen when it fires.
func (e *Engine) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// notify wakes the waiters of Changed; the caller holds e.mu.
func (e *Engine) notify() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// Ready reports whether a policy set is loaded.
func (e *Engine) Ready() bool { return e.current.Load() != nil }

// Generation counts the policy sets loaded so far; Hash identifies the
// current one by its sources.
func (e *Engine) Generation() int64 { return e.generation.Load() }

// NodesGeneration counts the Node inventories set so far (SetNodes).
func (e *Engine) NodesGeneration() int64 { return e.nodesGen.Load() }

// Hash identifies the current policy set by the hash of its sources.
func (e *Engine) Hash() string {
	if s := e.current.Load(); s != nil {
		return s.hash
	}
	return ""
}

// Policies lists the loaded policies.
func (e *Engine) Policies() []Policy {
	s := e.current.Load()
	if s == nil {
		return nil
	}
	out := make([]Policy, len(s.policies))
	for i, p := range s.policies {
		out[i] = *p
	}
	return out
}

// SetNodes replaces the Node inventory that policies see as
// data.podgate.inventory.nodes, with the node classes computed from it
// (see inventoryData), in one write.
func (e *Engine) SetNodes(ctx context.Context, nodes map[string]Node) error {
	value, err := inventoryValue(nodes)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inventory = value
	e.nodesGen.Add(1)
	defer e.notify()
	s := e.current.Load()
	if s == nil {
		return nil
	}
	if err := storage.WriteOne(ctx, s.store, storage.AddOp, storage.MustParsePath("/podgate/inventory"), value); err != nil {
		return fmt.Errorf("store node inventory: %w", err)
	}
	return s.readData(ctx)
}

// Violations evaluates every policy's violation rules for req. Violations
// of policies that are off, or that exclude the namespace, are left out;
// each carries its resolved enforcement.
func (e *Engine) Violations(ctx context.Context, req *Request) ([]Violation, error) {
	s := e.current.Load()
	if s == nil {
		return nil, ErrNotLoaded
	}
	return e.violations(ctx, s, req, s.plan(req.Kind.Kind).violations)
}

func (e *Engine) violations(ctx context.Context, s *set, req *Request, q *query) ([]Violation, error) {
	per, _, err := e.eval(ctx, s, req, q)
	if err != nil || per == nil {
		return nil, err
	}
	var out []Violation
	err = eachPolicy(q, per, func(p *Policy, items ast.Set) error {
		pc := s.config.Policies[p.Name]
		if slices.Contains(pc.ExcludedNamespaces, req.Namespace) {
			return nil
		}
		return items.Iter(func(item *ast.Term) error {
			v, err := decodeViolation(p, pc, item)
			if err == nil && v.Enforcement != Off {
				out = append(out, v)
			}
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	sortViolations(out)
	return out, nil
}

// eachPolicy calls f with the set each policy of q reports for a request,
// from what its definitions report (per); policies that report nothing
// are skipped. A definition's set stands for the policy's alone, and the
// sets of several are joined, so that a violation or mutation two of them
// report counts once, as in the policy's violation or mutation set.
func eachPolicy(q *query, per []ast.Set, f func(*Policy, ast.Set) error) error {
	for i := 0; i < len(q.defs); {
		p := q.defs[i].policy
		var items ast.Set
		for ; i < len(q.defs) && q.defs[i].policy == p; i++ {
			switch {
			case per[i].Len() == 0:
			case items == nil:
				items = per[i]
			default:
				items = items.Union(per[i])
			}
		}
		if items != nil {
			if err := f(p, items); err != nil {
				return err
			}
		}
	}
	return nil
}

// Mutations evaluates every policy's mutation rules for req.
func (e *Engine) Mutations(ctx context.Context, req *Request) ([]Mutation, error) {
	s := e.current.Load()
	if s == nil {
		return nil, ErrNotLoaded
	}
	muts, _, err := e.mutations(ctx, s, req)
	return muts, err
}

// mutations also returns the object as the policies saw it, decoded, for
// the mutations to be applied to.
func (e *Engine) mutations(ctx context.Context, s *set, req *Request) ([]Mutation, ast.Value, error) {
	q := s.plan(req.Kind.Kind).mutations
	per, object, err := e.eval(ctx, s, req, q)
	if err != nil || per == nil {
		return nil, nil, err
	}
	var out []Mutation
	err = eachPolicy(q, per, func(p *Policy, items ast.Set) error {
		if slices.Contains(s.config.Policies[p.Name].ExcludedNamespaces, req.Namespace) {
			return nil
		}
		return items.Iter(func(item *ast.Term) error {
			m, err := decodeMutation(p, item)
			if err == nil {
				out = append(out, m)
			}
			return err
		})
	})
	if err != nil {
		return nil, nil, err
	}
	sortMutations(out)
	return out, object, nil
}

// eval runs one prepared query of set s; it returns nil when the namespace
// is excluded globally or the query is nil (nothing to evaluate for the
// kind), and otherwise the set each definition of the query reports, and
// the request's object as the input has it.
func (e *Engine) eval(ctx context.Context, s *set, req *Request, q *query) ([]ast.Set, ast.Value, error) {
	if q == nil || slices.Contains(s.config.ExcludedNamespaces, req.Namespace) {
		return nil, nil, nil
	}
	input, object, err := req.input()
	if err != nil {
		return nil, nil, err
	}
	x, err := e.evalQuery(ctx, s, q, input)
	if err != nil {
		return nil, nil, fmt.Errorf("evaluate policies: %w", err)
	}
	all, _ := x.Value.(*ast.Array)
	if all == nil || all.Len() != len(q.defs) {
		return nil, nil, fmt.Errorf("evaluate policies: unexpected result %v", x)
	}
	var ok bool
	per := make([]ast.Set, all.Len())
	for i := range per {
		if per[i], ok = all.Elem(i).Value.(ast.Set); !ok {
			return nil, nil, fmt.Errorf("policy %s: want a set of objects, got %s", q.defs[i].policy.Name, ast.ValueName(all.Elem(i).Value))
		}
	}
	return per, object, nil
}

// evalQuery evaluates q: by its plan when it has one and the evaluation
// is not profiled, else by topdown.
func (e *Engine) evalQuery(ctx context.Context, s *set, q *query, input ast.Value) (*ast.Term, error) {
	if !e.topdownOnly && !profiling(ctx) {
		if vm := q.plan(ctx, s); vm != nil {
			return evalIR(ctx, vm, s, input)
		}
	}
	cache := getCache()
	defer putCache(cache)
	rs, err := q.pq.Eval(ctx, profileOptions(ctx, []rego.EvalOption{rego.EvalParsedInput(input), rego.EvalVirtualCache(cache)})...)
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("got %d results, want 1", len(rs))
	}
	x, ok := rs[0].Bindings["x"].(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("unexpected result %v", rs[0].Bindings["x"])
	}
	return x, nil
}
