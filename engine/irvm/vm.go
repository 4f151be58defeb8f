// Package irvm evaluates a query planned by OPA's planner (the IR that
// `opa build -t plan` prints) directly over AST values. The planner has
// already resolved what topdown works out at every evaluation (which rules
// a reference means, how each body's variables are bound, in what order),
// so running the plan does a fraction of the work for the same answer.
//
// It runs every statement the planner emits for podgate's policies and
// refuses, when the plan is prepared, the few it does not (with, dynamic
// calls) and builtins that read more than their arguments (http.send,
// time.now_ns, the runtime), so that the engine keeps interpreting those
// with topdown. Every function is evaluated once per distinct arguments,
// as topdown memoizes them. The engine holds the VM to topdown on every
// testdata case (TestPlansDecideAsTopdown).
package irvm

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
)

// VM is a planned policy ready to evaluate.
type VM struct {
	strs  []*ast.Term
	files []string
	funcs map[string]*ir.Func
	plans map[string]*ir.Plan
	bfs   map[string]topdown.BuiltinFunc
	size  map[*ir.Func]*atomic.Int32 // locals a function has used, its frame's first capacity
	calls map[*ir.CallStmt]callee    // what each call statement calls, resolved once
	// numbers are the number constants of the plan, made once.
	numbers map[*ir.MakeNumberRefStmt]*ast.Term
}

// impure are builtins that read more than their arguments (the runtime,
// the tracer), beyond those OPA marks non-deterministic (http.send, rand,
// time.now_ns): topdown, with everything they need, evaluates a plan that
// calls them.
var impure = map[string]bool{"opa.runtime": true, "trace": true, "internal.print": true}

// callee is a planned function or a builtin.
type callee struct {
	fn *ir.Func
	bf topdown.BuiltinFunc
}

// New prepares p.
func New(p *ir.Policy) (*VM, error) {
	vm := &VM{funcs: map[string]*ir.Func{}, plans: map[string]*ir.Plan{}, bfs: map[string]topdown.BuiltinFunc{}, size: map[*ir.Func]*atomic.Int32{}}
	if err := ir.Walk(supported{}, p); err != nil {
		return nil, err
	}
	for _, s := range p.Static.Strings {
		vm.strs = append(vm.strs, ast.StringTerm(s.Value))
	}
	for _, f := range p.Static.Files {
		vm.files = append(vm.files, f.Value)
	}
	for _, b := range p.Static.BuiltinFuncs {
		if decl := ast.BuiltinMap[b.Name]; decl == nil || decl.Nondeterministic || impure[b.Name] {
			return nil, fmt.Errorf("builtin %s is left to topdown", b.Name)
		}
		f := topdown.GetBuiltin(b.Name)
		if f == nil {
			return nil, fmt.Errorf("builtin %s not available", b.Name)
		}
		vm.bfs[b.Name] = f
	}
	if p.Funcs != nil {
		for _, f := range p.Funcs.Funcs {
			vm.funcs[f.Name] = f
			vm.size[f] = new(atomic.Int32)
		}
	}
	for _, pl := range p.Plans.Plans {
		vm.plans[pl.Name] = pl
	}
	vm.calls = map[*ir.CallStmt]callee{}
	vm.numbers = map[*ir.MakeNumberRefStmt]*ast.Term{}
	if err := ir.Walk(resolver{vm}, p); err != nil {
		return nil, err
	}
	return vm, nil
}

// conflict is topdown's error for a rule or function with two values, or
// an object with two values for one key (msg).
func (s *state) conflict(loc ir.Location, msg string) error {
	if msg == "" {
		name := "the query"
		if s.fn != nil {
			name = strings.TrimPrefix(s.fn.Name, "g0.")
		}
		switch {
		case s.fn != nil && len(s.fn.Params) > 2:
			msg = "function " + name + " produced conflicting values for the same inputs"
		default:
			msg = "rule " + name + " produced conflicting values"
		}
	}
	var at *ast.Location
	if loc.File >= 0 && loc.File < len(s.vm.files) {
		at = &ast.Location{File: s.vm.files[loc.File], Row: loc.Row, Col: loc.Col}
	}
	return &topdown.Error{Code: topdown.ConflictErr, Message: msg, Location: at}
}

// supported refuses a plan with a statement the VM does not run.
type supported struct{}

func (supported) Before(any) {}
func (supported) After(any)  {}

func (v supported) Visit(x any) (ir.Visitor, error) {
	switch x.(type) {
	case *ir.CallStmt, *ir.DotStmt, *ir.LenStmt, *ir.ScanStmt, *ir.NotStmt, *ir.BlockStmt,
		*ir.BreakStmt, *ir.ReturnLocalStmt, *ir.AssignIntStmt, *ir.AssignVarStmt,
		*ir.AssignVarOnceStmt, *ir.ResetLocalStmt, *ir.MakeNullStmt, *ir.MakeNumberIntStmt,
		*ir.MakeNumberRefStmt, *ir.MakeArrayStmt, *ir.MakeObjectStmt, *ir.MakeSetStmt,
		*ir.EqualStmt, *ir.NotEqualStmt, *ir.IsArrayStmt, *ir.IsObjectStmt, *ir.IsSetStmt,
		*ir.IsDefinedStmt, *ir.IsUndefinedStmt, *ir.ArrayAppendStmt, *ir.ObjectInsertStmt,
		*ir.ObjectInsertOnceStmt, *ir.ObjectMergeStmt, *ir.SetAddStmt, *ir.ResultSetAddStmt,
		*ir.NopStmt:
	case ir.Stmt:
		return nil, fmt.Errorf("%T is not supported", x)
	}
	return v, nil
}

// resolver finds what each call statement calls, and makes the plan's
// number constants.
type resolver struct{ vm *VM }

func (resolver) Before(any) {}
func (resolver) After(any)  {}

func (r resolver) Visit(x any) (ir.Visitor, error) {
	if n, ok := x.(*ir.MakeNumberRefStmt); ok {
		if n.Index < 0 || n.Index >= len(r.vm.strs) {
			return nil, fmt.Errorf("number constant %d out of range", n.Index)
		}
		r.vm.numbers[n] = ast.NewTerm(ast.Number(r.vm.strs[n.Index].Value.(ast.String)))
	}
	if c, ok := x.(*ir.CallStmt); ok {
		fn, bf := r.vm.funcs[c.Func], r.vm.bfs[c.Func]
		if fn == nil && bf == nil {
			return nil, fmt.Errorf("no function or builtin %s", c.Func)
		}
		r.vm.calls[c] = callee{fn, bf}
	}
	return r, nil
}

// checkEvery is how many statements run between two looks at the
// context: an evaluation past its deadline stops there.
const checkEvery = 256

// ret is the break count that a return statement propagates up to its
// function.
const ret = 1 << 30

type state struct {
	vm      *VM
	steps   int
	fn      *ir.Func // the function running, nil in the plan itself
	bctx    topdown.BuiltinContext
	memo    map[memoKey][]memoEntry
	res     []*ast.Term
	out     *ast.Term               // a builtin's result
	scratch []*ast.Term             // a builtin's arguments
	free    []*frame                // frames of calls that returned
	iter    func(t *ast.Term) error // sets out
}

// Every function is pure within an evaluation (a plan has no with and no
// builtin that reads more than its arguments), so each is evaluated once
// per distinct arguments, as topdown does.
type memoKey struct {
	fn *ir.Func
	h  int
}

type memoEntry struct {
	args []*ast.Term
	out  *ast.Term
}

func (s *state) setOut(t *ast.Term) error { s.out = t; return nil }

type frame struct{ locals []*ast.Term }

// frame is a frame for a call, from those earlier calls released.
func (s *state) frame(size int) *frame {
	if n := len(s.free); n > 0 {
		f := s.free[n-1]
		s.free = s.free[:n-1]
		f.locals = f.locals[:0]
		return f
	}
	return &frame{locals: make([]*ast.Term, 0, max(size, 16))}
}

// release returns f once its call has returned: nothing keeps it.
func (s *state) release(f *frame) { s.free = append(s.free, f) }

func (f *frame) get(l ir.Local) *ast.Term {
	if int(l) < len(f.locals) {
		return f.locals[l]
	}
	return nil
}

func (f *frame) set(l ir.Local, t *ast.Term) {
	for int(l) >= len(f.locals) {
		f.locals = append(f.locals, nil)
	}
	f.locals[l] = t
}

// Eval runs the plan named name with input and data and returns its
// result set.
func (vm *VM) Eval(ctx context.Context, name string, input, data ast.Value) ([]*ast.Term, error) {
	s := vm.newState(ctx)
	// Builtins that take long (numbers.range of a huge range) look at
	// Cancel, as they do under topdown.
	cancel := topdown.NewCancel()
	s.bctx.Cancel = cancel
	stop := context.AfterFunc(ctx, cancel.Cancel)
	defer stop()
	rs, err := s.run(name, input, data)
	if err == nil {
		err = ctx.Err() // a builtin cancelled midway may have left a result undefined
	}
	if err != nil {
		return nil, err
	}
	return rs, nil
}

// newState is one evaluation's state: plans run with it share what their
// functions computed.
func (vm *VM) newState(ctx context.Context) *state {
	s := &state{vm: vm, memo: map[memoKey][]memoEntry{},
		bctx: topdown.BuiltinContext{
			Context: ctx, Cache: builtins.Cache{}, Seed: rand.Reader,
			Time: ast.UIntNumberTerm(uint64(time.Now().UnixNano())),
		}}
	s.iter = s.setOut
	return s
}

func (s *state) run(name string, input, data ast.Value) ([]*ast.Term, error) {
	pl := s.vm.plans[name]
	if pl == nil {
		return nil, fmt.Errorf("no plan %s", name)
	}
	s.res = nil
	f := &frame{locals: make([]*ast.Term, 2, 64)}
	f.locals[ir.Input] = ast.NewTerm(input)
	f.locals[ir.Data] = ast.NewTerm(data)
	for _, b := range pl.Blocks {
		r, _, err := s.block(f, b)
		if err != nil {
			return nil, err
		}
		if r == ret {
			break
		}
	}
	return s.res, nil
}

// block runs b's statements: r is -1 when b ran to its end or a statement
// left b itself, else the number of enclosing blocks still to leave (ret
// for a return); done says every statement ran.
func (s *state) block(f *frame, b *ir.Block) (r int, done bool, err error) {
	for _, st := range b.Stmts {
		r, err := s.stmt(f, st)
		if err != nil {
			return 0, false, err
		}
		switch {
		case r < 0:
			continue
		case r == 0:
			return -1, false, nil
		case r == ret:
			return ret, false, nil
		default:
			return r - 1, false, nil
		}
	}
	return -1, true, nil
}

func (s *state) op(f *frame, o ir.Operand) *ast.Term {
	switch v := o.Value.(type) {
	case ir.Local:
		return f.get(v)
	case ir.Bool:
		return ast.InternedTerm(bool(v))
	case ir.StringIndex:
		return s.vm.strs[v]
	case *ir.Local: // as the IR's JSON decodes them
		return f.get(*v)
	case *ir.Bool:
		return ast.InternedTerm(bool(*v))
	case *ir.StringIndex:
		return s.vm.strs[*v]
	}
	return nil
}

// stmt runs one statement: -1 to go on, else how many blocks to leave (0:
// the current one, as an undefined statement does).
func (s *state) stmt(f *frame, st ir.Stmt) (int, error) {
	if s.steps++; s.steps%checkEvery == 0 {
		if err := s.bctx.Context.Err(); err != nil {
			return 0, err
		}
	}
	switch x := st.(type) {
	case *ir.CallStmt:
		c := s.vm.calls[x]
		fn := c.fn
		var args []*ast.Term
		if fn != nil {
			args = make([]*ast.Term, 0, len(x.Args)) // kept with the function's memo
		} else {
			args = s.scratch[:0]
		}
		for _, a := range x.Args {
			t := s.op(f, a)
			if t == nil {
				return 0, nil
			}
			args = append(args, t)
		}
		if fn == nil {
			s.scratch = args[:0]
		}
		var out *ast.Term
		if fn != nil {
			var err error
			if out, err = s.call(fn, args); err != nil {
				return 0, err
			}
		} else if bf := c.bf; bf != nil {
			s.out = nil
			if err := bf(s.bctx, args, s.iter); err != nil {
				return 0, nil // as topdown without strict builtin errors: undefined
			}
			out = s.out
		} else {
			return 0, fmt.Errorf("no function %s", x.Func)
		}
		if out == nil {
			return 0, nil
		}
		f.set(x.Result, out)
	case *ir.DotStmt:
		src, key := s.op(f, x.Source), s.op(f, x.Key)
		if src == nil || key == nil {
			return 0, nil
		}
		v := dot(src.Value, key)
		if v == nil {
			return 0, nil
		}
		f.set(x.Target, v)
	case *ir.LenStmt:
		src := s.op(f, x.Source)
		if src == nil {
			return 0, nil
		}
		var n int
		switch v := src.Value.(type) {
		case *ast.Array:
			n = v.Len()
		case ast.Object:
			n = v.Len()
		case ast.Set:
			n = v.Len()
		case ast.String:
			n = utf8.RuneCountInString(string(v))
		default:
			return 0, nil
		}
		f.set(x.Target, ast.InternedTerm(n))
	case *ir.ScanStmt:
		src := f.get(x.Source)
		if src == nil {
			return 0, nil
		}
		return s.scan(f, x, src.Value)
	case *ir.NotStmt:
		r, done, err := s.block(f, x.Block)
		if err != nil {
			return 0, err
		}
		if r >= 0 {
			return r, nil
		}
		if done {
			return 0, nil
		}
	case *ir.BlockStmt:
		for _, b := range x.Blocks {
			r, _, err := s.block(f, b)
			if err != nil {
				return 0, err
			}
			if r >= 0 {
				return r, nil
			}
		}
	case *ir.BreakStmt:
		return int(x.Index), nil
	case *ir.ReturnLocalStmt:
		return ret, nil
	case *ir.AssignIntStmt:
		f.set(x.Target, ast.InternedTerm(int(x.Value)))
	case *ir.AssignVarStmt:
		v := s.op(f, x.Source)
		if v == nil {
			return 0, nil
		}
		f.set(x.Target, v)
	case *ir.AssignVarOnceStmt:
		v := s.op(f, x.Source)
		if v == nil {
			return 0, nil
		}
		if old := f.get(x.Target); old != nil {
			if old.Value.Compare(v.Value) != 0 {
				return 0, s.conflict(x.Location, "")
			}
			return -1, nil
		}
		f.set(x.Target, v)
	case *ir.ResetLocalStmt:
		f.set(x.Target, nil)
	case *ir.MakeNullStmt:
		f.set(x.Target, ast.InternedNullTerm)
	case *ir.MakeNumberIntStmt:
		f.set(x.Target, ast.InternedTerm(int(x.Value)))
	case *ir.MakeNumberRefStmt:
		f.set(x.Target, s.vm.numbers[x])
	case *ir.MakeArrayStmt:
		f.set(x.Target, ast.NewTerm(ast.NewArrayWithCapacity(int(x.Capacity))))
	case *ir.MakeObjectStmt:
		f.set(x.Target, ast.NewTerm(ast.NewObject()))
	case *ir.MakeSetStmt:
		f.set(x.Target, ast.NewTerm(ast.NewSet()))
	case *ir.EqualStmt:
		a, b := s.op(f, x.A), s.op(f, x.B)
		if a == nil || b == nil || a.Value.Compare(b.Value) != 0 {
			return 0, nil
		}
	case *ir.NotEqualStmt:
		a, b := s.op(f, x.A), s.op(f, x.B)
		if a == nil || b == nil || a.Value.Compare(b.Value) == 0 {
			return 0, nil
		}
	case *ir.IsArrayStmt:
		if v := s.op(f, x.Source); v == nil || !isA[*ast.Array](v) {
			return 0, nil
		}
	case *ir.IsObjectStmt:
		if v := s.op(f, x.Source); v == nil || !isA[ast.Object](v) {
			return 0, nil
		}
	case *ir.IsSetStmt:
		if v := s.op(f, x.Source); v == nil || !isA[ast.Set](v) {
			return 0, nil
		}
	case *ir.IsDefinedStmt:
		if f.get(x.Source) == nil {
			return 0, nil
		}
	case *ir.IsUndefinedStmt:
		if f.get(x.Source) != nil {
			return 0, nil
		}
	case *ir.ArrayAppendStmt:
		v := s.op(f, x.Value)
		arr := f.get(x.Array)
		if v == nil || arr == nil {
			return 0, nil
		}
		arr.Value = arr.Value.(*ast.Array).Append(v) // arrays are built in place, as the IR means
	case *ir.ObjectInsertStmt:
		k, v, o := s.op(f, x.Key), s.op(f, x.Value), f.get(x.Object)
		if k == nil || v == nil || o == nil {
			return 0, nil
		}
		o.Value.(ast.Object).Insert(k, v)
	case *ir.ObjectInsertOnceStmt:
		k, v, o := s.op(f, x.Key), s.op(f, x.Value), f.get(x.Object)
		if k == nil || v == nil || o == nil {
			return 0, nil
		}
		obj := o.Value.(ast.Object)
		if old := obj.Get(k); old != nil {
			if old.Value.Compare(v.Value) != 0 {
				return 0, s.conflict(x.Location, "object keys must be unique")
			}
			return -1, nil
		}
		obj.Insert(k, v)
	case *ir.ObjectMergeStmt:
		a, b := f.get(x.A), f.get(x.B)
		if a == nil || b == nil {
			return 0, nil
		}
		m, ok := a.Value.(ast.Object).Merge(b.Value.(ast.Object))
		if !ok {
			return 0, nil
		}
		f.set(x.Target, ast.NewTerm(m))
	case *ir.SetAddStmt:
		v, set := s.op(f, x.Value), f.get(x.Set)
		if v == nil || set == nil {
			return 0, nil
		}
		set.Value.(ast.Set).Add(v)
	case *ir.ResultSetAddStmt:
		s.res = append(s.res, f.get(x.Value))
	case *ir.NopStmt:
	default:
		return 0, fmt.Errorf("statement %T not supported", st)
	}
	return -1, nil
}

// scan runs x's block for each element of src, stopping at a break out
// of the scan.
func (s *state) scan(f *frame, x *ir.ScanStmt, src ast.Value) (int, error) {
	visit := func(k, v *ast.Term) (int, error) {
		f.set(x.Key, k)
		f.set(x.Value, v)
		r, _, err := s.block(f, x.Block)
		return r, err
	}
	switch v := src.(type) {
	case *ast.Array:
		for i := range v.Len() {
			if r, err := visit(ast.InternedTerm(i), v.Elem(i)); err != nil || r >= 0 {
				return r, err
			}
		}
	case ast.Object:
		for _, k := range v.Keys() {
			if r, err := visit(k, v.Get(k)); err != nil || r >= 0 {
				return r, err
			}
		}
	case ast.Set:
		for _, e := range v.Slice() {
			if r, err := visit(e, e); err != nil || r >= 0 {
				return r, err
			}
		}
	}
	return -1, nil
}

func isA[T ast.Value](t *ast.Term) bool { _, ok := t.Value.(T); return ok }

func dot(src ast.Value, key *ast.Term) *ast.Term {
	switch v := src.(type) {
	case ast.Object:
		return v.Get(key)
	case *ast.Array:
		n, ok := key.Value.(ast.Number)
		if !ok {
			return nil
		}
		i, ok := n.Int()
		if !ok || i < 0 || i >= v.Len() {
			return nil
		}
		return v.Elem(i)
	case ast.Set:
		if v.Contains(key) {
			return key
		}
	}
	return nil
}

// call runs fn, once per distinct arguments.
func (s *state) call(fn *ir.Func, args []*ast.Term) (*ast.Term, error) {
	h := 0
	for _, a := range args[2:] {
		h = h*31 + a.Hash()
	}
	key := memoKey{fn, h}
	for _, e := range s.memo[key] {
		if sameArgs(e.args, args) {
			return e.out, nil
		}
	}
	caller := s.fn
	s.fn = fn
	defer func() { s.fn = caller }()
	size := s.vm.size[fn]
	f := s.frame(int(size.Load()))
	defer s.release(f)
	for i, p := range fn.Params {
		f.set(p, args[i])
	}
	for _, b := range fn.Blocks {
		r, _, err := s.block(f, b)
		if err != nil {
			return nil, err
		}
		if r == ret {
			break
		}
	}
	out := f.get(fn.Return)
	if n := int32(len(f.locals)); n > size.Load() {
		size.Store(n)
	}
	s.memo[key] = append(s.memo[key], memoEntry{args, out})
	return out, nil
}

func sameArgs(a, b []*ast.Term) bool {
	for i := 2; i < len(a); i++ {
		if a[i] == b[i] {
			continue // the same term, as a container passed on is
		}
		if a[i].Value.Compare(b[i].Value) != 0 {
			return false
		}
	}
	return true
}
