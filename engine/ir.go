package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/podgate/podgate/engine/irvm"
)

// The engine evaluates a query by running its plan (engine/irvm): OPA's
// planner turns the query and the policies it reaches into IR once per
// policy set, before the set is served for an engine that plans ahead
// (the webhook's), else in the background after the query's first use,
// and every request after that runs the IR. A query whose plan cannot be
// made or run (a `with`, say), every evaluation before its plan is ready
// and every profiled evaluation (podgate eval --profile, which reports
// topdown's expressions) are interpreted by topdown, the prepared query
// the engine always has.

// irTarget is the rego target under which OPA hands the engine the plan.
const irTarget = "podgate-ir"

func init() { rego.RegisterPlugin(irTarget, irPlugin{}) }

// irPlugin receives the plan OPA made for a query and keeps the VM built
// from it where the context says (planned).
type irPlugin struct{}

func (irPlugin) IsTarget(t string) bool { return t == irTarget }

type planKey struct{}

func (irPlugin) PrepareForEval(ctx context.Context, p *ir.Policy, _ ...rego.PrepareOption) (rego.TargetPluginEval, error) {
	dst, _ := ctx.Value(planKey{}).(**irvm.VM)
	if dst == nil {
		return nil, errors.New("podgate's IR target is for the engine only")
	}
	vm, err := irvm.New(p)
	if err != nil {
		return nil, err
	}
	*dst = vm
	return irPlugin{}, nil
}

// Eval is never called: the engine runs the VM itself, with the data it
// holds.
func (irPlugin) Eval(context.Context, *rego.EvalContext, ast.Value) (ast.Value, error) {
	return nil, errors.New("podgate's IR target is for the engine only")
}

// planned is a query's plan, made before the set is served (planAll) or in
// the background after the query's first use (plan): until it is ready,
// that query is interpreted by topdown, so no request waits for planning.
type planned struct {
	start sync.Once
	vm    atomic.Pointer[irvm.VM]
	err   error         // why there is no plan; read after done
	done  chan struct{} // closed when planning ended
}

// plan returns q's VM, or nil while it is being made or when the query is
// left to topdown; the first call starts planning in the background.
func (q *query) plan(ctx context.Context, s *set) *irvm.VM {
	if vm := q.ir.vm.Load(); vm != nil {
		return vm
	}
	q.ir.start.Do(func() {
		go func() {
			q.makePlan(ctx, s)
			// Planning leaves some 3 MiB of garbage per query, once per
			// kind and policy set; under the webhook's GOGC the heap would
			// keep it as resident memory for good. Hand it back now.
			debug.FreeOSMemory()
		}()
	})
	return nil
}

// makePlan plans q; it runs once per query.
func (q *query) makePlan(ctx context.Context, s *set) {
	defer close(q.ir.done)
	vm, err := s.planQuery(context.WithoutCancel(ctx), q.body)
	if err != nil {
		q.ir.err = err
		return
	}
	q.ir.vm.Store(vm)
}

// planAll plans the admission queries of s now, for an engine that plans
// ahead (PlanAhead): the set is swapped in with them ready. The queries
// the audit runs after a Node change are planned on first use, in the
// background: they are rarely run and their plans take memory (about 5
// of the 11 MiB all the built-in plans take).
func (s *set) planAll(ctx context.Context) {
	for _, p := range s.plans {
		for _, q := range p.admission() {
			q.ir.start.Do(func() { q.makePlan(ctx, s) })
			<-q.ir.done
		}
	}
	debug.FreeOSMemory() // see plan
}

// planQuery has OPA plan body and builds the VM for the plan.
func (s *set) planQuery(ctx context.Context, body ast.Body) (*irvm.VM, error) {
	// Preparing a query sets and reads the shared compiler's mode: one
	// at a time.
	s.prepareMu.Lock()
	defer s.prepareMu.Unlock()
	var vm *irvm.VM
	_, err := rego.New(rego.ParsedQuery(body), rego.Compiler(s.compiler), rego.Store(s.store),
		rego.Target(irTarget), rego.EvalMode(ast.EvalModeTopdown)).PrepareForEval(context.WithValue(ctx, planKey{}, &vm))
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return vm, nil
}

// evalIR runs q's plan with input and the set's data; the result is the
// query's x, as topdown's.
func evalIR(ctx context.Context, vm *irvm.VM, s *set, input ast.Value) (*ast.Term, error) {
	rs, err := vm.Eval(ctx, "eval", input, *s.data.Load())
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("got %d results, want 1", len(rs))
	}
	obj, ok := rs[0].Value.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("unexpected result %v", rs[0])
	}
	x := obj.Get(resultVar)
	if x == nil {
		return nil, fmt.Errorf("unexpected result %v", rs[0])
	}
	return x, nil
}

// resultVar is the variable the engine's queries bind (plans).
var resultVar = ast.StringTerm("x")

// readData keeps the store's data document (config and inventory) for
// the plans, which read it as a value: at every write to the store, not at
// every request.
func (s *set) readData(ctx context.Context) error {
	txn, err := s.store.NewTransaction(ctx)
	if err != nil {
		return err
	}
	defer s.store.Abort(ctx, txn)
	v, err := s.store.Read(ctx, txn, storage.RootPath)
	if err != nil {
		return err
	}
	value, ok := v.(ast.Value)
	if !ok {
		return fmt.Errorf("the store holds %T, not an AST value", v)
	}
	s.data.Store(&value)
	return nil
}

// Unplanned says which queries of the current set topdown interprets
// because they could not be planned, and why: what an operator wants to
// know of a custom policy that made every request of a kind slower. Only
// the queries planned so far count (all of them, for an engine that plans
// ahead).
func (e *Engine) Unplanned() []string {
	s := e.current.Load()
	if s == nil {
		return nil
	}
	var out []string
	for _, kind := range append(slices.Clone(WorkloadKinds), "") {
		p := s.plans[kind]
		if p == nil {
			continue
		}
		for _, q := range p.admission() {
			select {
			case <-q.ir.done:
				if q.ir.err != nil {
					out = append(out, fmt.Sprintf("%s: %v", kindName(kind), q.ir.err))
				}
			default:
			}
		}
	}
	return slices.Compact(out)
}

func kindName(kind string) string {
	if kind == "" {
		return "other kinds"
	}
	return kind
}
