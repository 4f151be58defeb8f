// Package irvm evaluates a query planned by OPA's planner (the IR that
// `opa build -t plan` prints) directly over AST values. The planner has
// already resolved what topdown works out at every evaluation (which rules
// a reference means, how each body's variables are bound, in what order),
// so running the plan does a fraction of the work for the same answer.
//
// New compiles the plan once more, into Go closures (compile.go): every
// operand, callee, constant and frame size is resolved then, so that an
// evaluation only runs statements. It runs every statement the planner
// emits for podgate's policies and refuses, when the plan is prepared, the
// few it does not (with, dynamic calls) and builtins that read more than
// their arguments (http.send, time.now_ns, the runtime), so that the
// engine keeps interpreting those with topdown. Every function is
// evaluated once per distinct arguments, as topdown memoizes them. The
// engine holds the VM to topdown on every testdata case
// (TestPlansDecideAsTopdown).
package irvm

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
)

// VM is a planned policy ready to evaluate.
type VM struct {
	plans map[string]*function // the plans, as functions of input and data
	funcs []*function          // every planned function, by index
	files []string
	// states are the states of finished evaluations, cleared, for the
	// next: what an evaluation computed is never seen by another.
	states sync.Pool
}

// function is a planned function or plan, compiled.
type function struct {
	name   string
	index  int        // in VM.funcs: its slot in the state
	params []ir.Local // input, data, then the function's arguments
	ret    ir.Local
	blocks []block
	locals int // its frame's size: the highest local it uses, plus one
}

// A block is a compiled ir.Block; an instr a compiled statement, which
// returns -1 to go on, else how many blocks to leave (0: the current one,
// as an undefined statement does; ret for a return).
type (
	block []instr
	instr func(s *state, f frame) (int, error)
)

// frame holds a call's locals.
type frame []*ast.Term

// checkEvery is how many statements run between two looks at the
// context: an evaluation past its deadline stops there. A power of two.
const checkEvery = 256

// ret is the break count that a return statement propagates up to its
// function.
const ret = 1 << 30

// undefined marks the slot of a rule that was evaluated and is undefined.
var undefined = &ast.Term{}

type state struct {
	vm      *VM
	ctx     context.Context
	steps   int
	fn      *function // the function running, nil in the plan itself
	bctx    topdown.BuiltinContext
	slots   []slot      // what each function computed, by index
	kept    []*ast.Term // where memo entries' arguments are kept from
	res     []*ast.Term
	out     *ast.Term   // a builtin's result
	scratch []*ast.Term // a builtin's arguments
	stack   []frame     // the frames of the calls running and of those returned, by depth
	depth   int
	iter    func(t *ast.Term) error // sets out
}

// Every function is pure within an evaluation (a plan has no with and no
// builtin that reads more than its arguments), so each is evaluated once
// per distinct arguments, as topdown does. A rule, which has no arguments
// but input and data, keeps its value in its slot; a function with
// arguments keeps a memo entry per distinct arguments, found by their
// hash: by a scan while there are few, by an index after.
type slot struct {
	out     *ast.Term // a rule's value, undefined when it has none
	entries []memoEntry
	byHash  map[int][]int32 // positions in entries, once they are many
}

type memoEntry struct {
	h    int
	args []*ast.Term // the arguments after input and data
	out  *ast.Term
}

// scanned is how many memo entries a function has before they are
// indexed.
const scanned = 8

func (s *state) setOut(t *ast.Term) error { s.out = t; return nil }

// Eval runs the plan named name with input and data and returns its
// result set.
func (vm *VM) Eval(ctx context.Context, name string, input, data ast.Value) ([]*ast.Term, error) {
	pl := vm.plans[name]
	if pl == nil {
		return nil, fmt.Errorf("no plan %s", name)
	}
	s, _ := vm.states.Get().(*state)
	if s == nil {
		s = &state{vm: vm, slots: make([]slot, len(vm.funcs))}
		s.iter = s.setOut
	}
	defer vm.release(s)
	s.ctx = ctx
	s.bctx = topdown.BuiltinContext{
		Context: ctx, Cache: builtins.Cache{}, Seed: rand.Reader,
		Time: ast.UIntNumberTerm(uint64(time.Now().UnixNano())),
	}
	// Builtins that take long (numbers.range of a huge range) look at
	// Cancel, as they do under topdown.
	cancel := topdown.NewCancel()
	s.bctx.Cancel = cancel
	stop := context.AfterFunc(ctx, cancel.Cancel)
	defer stop()
	f := s.frame(pl.locals)
	f[ir.Input], f[ir.Data] = ast.NewTerm(input), ast.NewTerm(data)
	if err := s.body(f, pl); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil { // a builtin cancelled midway may have left a result undefined
		return nil, err
	}
	return s.res, nil
}

// release clears s of everything its evaluation computed and keeps it
// for another.
func (vm *VM) release(s *state) {
	clear(s.slots)
	for _, f := range s.stack {
		clear(f[:cap(f)])
	}
	clear(s.scratch[:cap(s.scratch)])
	s.ctx, s.bctx, s.fn, s.res, s.out, s.kept = nil, topdown.BuiltinContext{}, nil, nil, nil, nil
	s.depth, s.steps = 0, 0
	vm.states.Put(s)
}

// frame is a cleared frame of size locals for a call one deeper than the
// current: the frame an earlier call at that depth used, when it is large
// enough. The caller returns it with pop.
func (s *state) frame(locals int) frame {
	if s.depth == len(s.stack) {
		s.stack = append(s.stack, nil)
	}
	f := s.stack[s.depth]
	if cap(f) < locals {
		f = make(frame, locals, max(locals, 16))
		s.stack[s.depth] = f
	} else {
		f = f[:locals]
		clear(f)
	}
	s.depth++
	return f
}

func (s *state) pop() { s.depth-- }

// block runs b's statements: r is -1 when b ran to its end or a statement
// left b itself, else the number of enclosing blocks still to leave (ret
// for a return); done says every statement ran.
func (s *state) block(f frame, b block) (r int, done bool, err error) {
	for _, in := range b {
		if s.steps++; s.steps&(checkEvery-1) == 0 {
			if err := s.ctx.Err(); err != nil {
				return 0, false, err
			}
		}
		r, err := in(s, f)
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

// rule is the value of fn, a function of input and data alone, evaluated
// at its first call; nil when undefined.
func (s *state) rule(fn *function, f frame, args []operand) (*ast.Term, error) {
	switch out := s.slots[fn.index].out; out {
	case nil:
	case undefined:
		return nil, nil
	default:
		return out, nil
	}
	g := s.frame(fn.locals)
	for i, a := range args {
		t := a.get(f)
		if t == nil {
			s.pop()
			return nil, nil
		}
		g[fn.params[i]] = t
	}
	out, err := s.run(fn, g)
	if err != nil {
		return nil, err
	}
	if out == nil {
		s.slots[fn.index].out = undefined
	} else {
		s.slots[fn.index].out = out
	}
	return out, nil
}

// call runs fn with args, once per distinct arguments; nil when
// undefined.
func (s *state) call(fn *function, f frame, args []operand) (*ast.Term, error) {
	g := s.frame(fn.locals)
	h := 0
	for i, a := range args {
		t := a.get(f)
		if t == nil {
			s.pop()
			return nil, nil
		}
		g[fn.params[i]] = t
		if i >= 2 {
			h = h*31 + t.Hash()
		}
	}
	sl := &s.slots[fn.index]
	if e := sl.find(h, g, fn.params[2:]); e != nil {
		s.pop()
		return e.out, nil
	}
	kept := s.keep(g, fn.params[2:])
	out, err := s.run(fn, g)
	if err != nil {
		return nil, err
	}
	sl = &s.slots[fn.index] // the same slot: slots is never grown
	sl.entries = append(sl.entries, memoEntry{h, kept, out})
	switch n := len(sl.entries); {
	case n == scanned+1:
		sl.byHash = make(map[int][]int32, 2*n)
		for i, e := range sl.entries {
			sl.byHash[e.h] = append(sl.byHash[e.h], int32(i))
		}
	case n > scanned+1:
		sl.byHash[h] = append(sl.byHash[h], int32(n-1))
	}
	return out, nil
}

// find is the memo entry of the arguments in g's params, whose hash is
// h; nil when there is none.
func (sl *slot) find(h int, g frame, params []ir.Local) *memoEntry {
	if sl.byHash == nil {
		for i := range sl.entries {
			if e := &sl.entries[i]; e.h == h && sameArgs(e.args, g, params) {
				return e
			}
		}
		return nil
	}
	for _, i := range sl.byHash[h] {
		if e := &sl.entries[i]; sameArgs(e.args, g, params) {
			return e
		}
	}
	return nil
}

// keep copies the arguments in g's params for a memo entry, from a slab
// shared by the evaluation's entries.
func (s *state) keep(g frame, params []ir.Local) []*ast.Term {
	if len(s.kept) < len(params) {
		s.kept = make([]*ast.Term, max(128, len(params)))
	}
	kept := s.kept[:len(params):len(params)]
	s.kept = s.kept[len(params):]
	for i, p := range params {
		kept[i] = g[p]
	}
	return kept
}

// run runs fn's blocks in its frame g, which it pops, and returns what fn
// returns.
func (s *state) run(fn *function, g frame) (*ast.Term, error) {
	defer s.pop()
	caller := s.fn
	s.fn = fn
	defer func() { s.fn = caller }()
	if err := s.body(g, fn); err != nil {
		return nil, err
	}
	return g[fn.ret], nil
}

// body runs fn's blocks in f until one returns.
func (s *state) body(f frame, fn *function) error {
	for _, b := range fn.blocks {
		if r, _, err := s.block(f, b); err != nil || r == ret {
			return err
		}
	}
	return nil
}

func sameArgs(kept []*ast.Term, g frame, params []ir.Local) bool {
	for i, p := range params {
		a, b := kept[i], g[p]
		if a == b {
			continue // the same term, as a container passed on is
		}
		if a.Value.Compare(b.Value) != 0 {
			return false
		}
	}
	return true
}

// conflict is topdown's error for a rule or function with two values, or
// an object with two values for one key (msg).
func (s *state) conflict(loc ir.Location, msg string) error {
	if msg == "" {
		name := "the query"
		if s.fn != nil {
			name = strings.TrimPrefix(s.fn.name, "g0.")
		}
		switch {
		case s.fn != nil && len(s.fn.params) > 2:
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

// scan runs body for each element of src, its key in local k and its
// value in local v, stopping at a break out of the scan.
func (s *state) scan(f frame, k, v ir.Local, body block, src ast.Value) (int, error) {
	switch x := src.(type) {
	case *ast.Array:
		for i := range x.Len() {
			f[k], f[v] = ast.InternedTerm(i), x.Elem(i)
			if r, _, err := s.block(f, body); err != nil || r >= 0 {
				return r, err
			}
		}
	case ast.Object:
		r := -1
		var err error
		x.Until(func(key, val *ast.Term) bool {
			f[k], f[v] = key, val
			r, _, err = s.block(f, body)
			return err != nil || r >= 0
		})
		return r, err
	case ast.Set:
		for _, e := range x.Slice() {
			f[k], f[v] = e, e
			if r, _, err := s.block(f, body); err != nil || r >= 0 {
				return r, err
			}
		}
	}
	return -1, nil
}

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
