package irvm

import (
	"fmt"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// impure are builtins that read more than their arguments (the runtime,
// the tracer), beyond those OPA marks non-deterministic (http.send, rand,
// time.now_ns): topdown, with everything they need, evaluates a plan that
// calls them.
var impure = map[string]bool{"opa.runtime": true, "trace": true, "internal.print": true}

// New compiles p.
func New(p *ir.Policy) (*VM, error) {
	c := &compiler{vm: &VM{plans: map[string]*function{}}, funcs: map[string]*function{}, bfs: map[string]topdown.BuiltinFunc{}}
	for _, s := range p.Static.Strings {
		c.strs = append(c.strs, ast.StringTerm(s.Value))
	}
	for _, f := range p.Static.Files {
		c.vm.files = append(c.vm.files, f.Value)
	}
	for _, b := range p.Static.BuiltinFuncs {
		if decl := ast.BuiltinMap[b.Name]; decl == nil || decl.Nondeterministic || impure[b.Name] {
			return nil, fmt.Errorf("builtin %s is left to topdown", b.Name)
		}
		f := topdown.GetBuiltin(b.Name)
		if f == nil {
			return nil, fmt.Errorf("builtin %s not available", b.Name)
		}
		c.bfs[b.Name] = f
	}
	// Every function first, so that a call compiles to its callee.
	var funcs []*ir.Func
	if p.Funcs != nil {
		funcs = p.Funcs.Funcs
	}
	for i, f := range funcs {
		if len(f.Params) < 2 {
			return nil, fmt.Errorf("function %s has %d parameters, not input, data and its arguments", f.Name, len(f.Params))
		}
		fn := &function{name: f.Name, index: i, params: f.Params, ret: f.Return}
		c.funcs[f.Name] = fn
		c.vm.funcs = append(c.vm.funcs, fn)
	}
	for i, f := range funcs {
		fn := c.vm.funcs[i]
		if err := c.body(fn, f.Blocks, append([]ir.Local{f.Return}, f.Params...)); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	for _, pl := range p.Plans.Plans {
		fn := &function{name: pl.Name, index: -1}
		if err := c.body(fn, pl.Blocks, []ir.Local{ir.Input, ir.Data}); err != nil {
			return nil, fmt.Errorf("plan %s: %w", pl.Name, err)
		}
		c.vm.plans[pl.Name] = fn
	}
	return c.vm, nil
}

type compiler struct {
	vm     *VM
	strs   []*ast.Term
	funcs  map[string]*function
	bfs    map[string]topdown.BuiltinFunc
	locals int // of the function being compiled
}

// body compiles the blocks of fn, which uses the locals given and those
// its statements name.
func (c *compiler) body(fn *function, blocks []*ir.Block, uses []ir.Local) error {
	c.locals = 0
	for _, l := range uses {
		c.local(l)
	}
	for _, b := range blocks {
		cb, err := c.block(b)
		if err != nil {
			return err
		}
		fn.blocks = append(fn.blocks, cb)
	}
	fn.locals = c.locals
	return nil
}

// local records that the function being compiled uses l.
func (c *compiler) local(l ir.Local) ir.Local {
	if int(l) >= c.locals {
		c.locals = int(l) + 1
	}
	return l
}

// operand is a compiled ir.Operand: a constant term, or a local.
type operand struct {
	term  *ast.Term
	local ir.Local
}

func (o operand) get(f frame) *ast.Term {
	if o.term != nil {
		return o.term
	}
	return f[o.local]
}

func (c *compiler) operand(o ir.Operand) (operand, error) {
	switch v := o.Value.(type) {
	case ir.Local:
		return operand{local: c.local(v)}, nil
	case *ir.Local: // as the IR's JSON decodes them
		return operand{local: c.local(*v)}, nil
	case ir.Bool:
		return operand{term: ast.InternedTerm(bool(v))}, nil
	case *ir.Bool:
		return operand{term: ast.InternedTerm(bool(*v))}, nil
	case ir.StringIndex:
		return c.str(int(v))
	case *ir.StringIndex:
		return c.str(int(*v))
	}
	return operand{}, fmt.Errorf("operand %T is not supported", o.Value)
}

func (c *compiler) str(i int) (operand, error) {
	if i < 0 || i >= len(c.strs) {
		return operand{}, fmt.Errorf("string constant %d out of range", i)
	}
	return operand{term: c.strs[i]}, nil
}

func (c *compiler) operands(os []ir.Operand) ([]operand, error) {
	out := make([]operand, len(os))
	for i, o := range os {
		var err error
		if out[i], err = c.operand(o); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *compiler) block(b *ir.Block) (block, error) {
	out := make(block, 0, len(b.Stmts))
	for i := 0; i < len(b.Stmts); i++ {
		lit, n, err := c.arrayLiteral(b.Stmts[i:])
		if err == nil && n == 0 {
			lit, n, err = c.objectLiteral(b.Stmts[i:])
		}
		if err != nil || n > 0 {
			if err != nil {
				return nil, err
			}
			out = append(out, lit)
			i += n - 1
			continue
		}
		in, err := c.stmt(b.Stmts[i])
		if err != nil {
			return nil, err
		}
		if in != nil {
			out = append(out, in)
		}
	}
	return out, nil
}

// objectLiteral is arrayLiteral for an object whose keys are distinct
// string constants, as the planner writes an object literal ({"rule":
// ..., "msg": ...}): one NewObject instead of an insert per key, each
// growing the object's index and key list.
func (c *compiler) objectLiteral(stmts []ir.Stmt) (in instr, n int, err error) {
	mk, ok := stmts[0].(*ir.MakeObjectStmt)
	if !ok {
		return nil, 0, nil
	}
	var keys []*ast.Term
	var values []operand
	seen := map[ast.Value]bool{}
	for _, st := range stmts[1:] {
		ins, ok := st.(*ir.ObjectInsertStmt)
		if !ok || ins.Object != mk.Target {
			break
		}
		k, err := c.operand(ins.Key)
		if err != nil {
			return nil, 0, err
		}
		v, err := c.operand(ins.Value)
		if err != nil {
			return nil, 0, err
		}
		if k.term == nil || seen[k.term.Value] || (v.term == nil && v.local == mk.Target) {
			break
		}
		if _, str := k.term.Value.(ast.String); !str {
			break
		}
		seen[k.term.Value] = true
		keys, values = append(keys, k.term), append(values, v)
	}
	if len(keys) == 0 {
		return nil, 0, nil
	}
	target := c.local(mk.Target)
	return func(_ *state, f frame) (int, error) {
		items := make([][2]*ast.Term, 0, len(keys))
		r := -1
		for i, v := range values {
			t := v.get(f)
			if t == nil {
				r = 0 // undefined: the statements would leave the block with the object so far
				break
			}
			items = append(items, [2]*ast.Term{keys[i], t})
		}
		f[target] = ast.NewTerm(ast.NewObject(items...))
		return r, nil
	}, len(keys) + 1, nil
}

// arrayLiteral compiles an array made and appended to at once, as the
// planner writes an array literal (the arguments of sprintf, say), into
// one instruction that makes the array whole: appending one element at a
// time makes a new ast.Array per element. n is how many statements it
// stands for, 0 when stmts do not start with such an array.
func (c *compiler) arrayLiteral(stmts []ir.Stmt) (in instr, n int, err error) {
	mk, ok := stmts[0].(*ir.MakeArrayStmt)
	if !ok {
		return nil, 0, nil
	}
	var elems []operand
	for _, st := range stmts[1:] {
		app, ok := st.(*ir.ArrayAppendStmt)
		if !ok || app.Array != mk.Target {
			break
		}
		e, err := c.operand(app.Value)
		if err != nil {
			return nil, 0, err
		}
		if e.term == nil && e.local == mk.Target {
			break // the array appended to itself: left to the statements
		}
		elems = append(elems, e)
	}
	if len(elems) == 0 {
		return nil, 0, nil
	}
	target := c.local(mk.Target)
	return func(_ *state, f frame) (int, error) {
		terms := make([]*ast.Term, 0, len(elems))
		r := -1
		for _, e := range elems {
			t := e.get(f)
			if t == nil {
				r = 0 // undefined: the statements would leave the block with the array so far
				break
			}
			terms = append(terms, t)
		}
		f[target] = ast.NewTerm(ast.NewArray(terms...))
		return r, nil
	}, len(elems) + 1, nil
}

// set is the instruction that stores what value computes from the frame
// in target; undefined when value is nil.
func set(target ir.Local, value func(s *state, f frame) *ast.Term) instr {
	return func(s *state, f frame) (int, error) {
		t := value(s, f)
		if t == nil {
			return 0, nil
		}
		f[target] = t
		return -1, nil
	}
}

// check is the instruction that is undefined unless ok.
func check(ok func(f frame) bool) instr {
	return func(_ *state, f frame) (int, error) {
		if !ok(f) {
			return 0, nil
		}
		return -1, nil
	}
}

// stmt compiles one statement; a statement that does nothing compiles
// to nil.
func (c *compiler) stmt(st ir.Stmt) (instr, error) {
	switch x := st.(type) {
	case *ir.CallStmt:
		return c.call(x)
	case *ir.DotStmt:
		src, err := c.operand(x.Source)
		if err != nil {
			return nil, err
		}
		key, err := c.operand(x.Key)
		if err != nil {
			return nil, err
		}
		return set(c.local(x.Target), func(_ *state, f frame) *ast.Term {
			a, k := src.get(f), key.get(f)
			if a == nil || k == nil {
				return nil
			}
			return dot(a.Value, k)
		}), nil
	case *ir.LenStmt:
		src, err := c.operand(x.Source)
		if err != nil {
			return nil, err
		}
		return set(c.local(x.Target), func(_ *state, f frame) *ast.Term {
			t := src.get(f)
			if t == nil {
				return nil
			}
			switch v := t.Value.(type) {
			case *ast.Array:
				return ast.InternedTerm(v.Len())
			case ast.Object:
				return ast.InternedTerm(v.Len())
			case ast.Set:
				return ast.InternedTerm(v.Len())
			case ast.String:
				return ast.InternedTerm(utf8.RuneCountInString(string(v)))
			}
			return nil
		}), nil
	case *ir.ScanStmt:
		body, err := c.block(x.Block)
		if err != nil {
			return nil, err
		}
		src, k, v := c.local(x.Source), c.local(x.Key), c.local(x.Value)
		return func(s *state, f frame) (int, error) {
			t := f[src]
			if t == nil {
				return 0, nil
			}
			return s.scan(f, k, v, body, t.Value)
		}, nil
	case *ir.NotStmt:
		body, err := c.block(x.Block)
		if err != nil {
			return nil, err
		}
		return func(s *state, f frame) (int, error) {
			r, done, err := s.block(f, body)
			switch {
			case err != nil:
				return 0, err
			case r >= 0:
				return r, nil
			case done:
				return 0, nil
			}
			return -1, nil
		}, nil
	case *ir.BlockStmt:
		blocks := make([]block, len(x.Blocks))
		for i, b := range x.Blocks {
			var err error
			if blocks[i], err = c.block(b); err != nil {
				return nil, err
			}
		}
		return func(s *state, f frame) (int, error) {
			for _, b := range blocks {
				r, _, err := s.block(f, b)
				if err != nil {
					return 0, err
				}
				if r >= 0 {
					return r, nil
				}
			}
			return -1, nil
		}, nil
	case *ir.BreakStmt:
		index := int(x.Index)
		return func(*state, frame) (int, error) { return index, nil }, nil
	case *ir.ReturnLocalStmt:
		c.local(x.Source)
		return func(*state, frame) (int, error) { return ret, nil }, nil
	case *ir.AssignIntStmt:
		return constant(c.local(x.Target), ast.InternedTerm(int(x.Value))), nil
	case *ir.MakeNumberIntStmt:
		return constant(c.local(x.Target), ast.InternedTerm(int(x.Value))), nil
	case *ir.MakeNumberRefStmt:
		s, err := c.str(x.Index)
		if err != nil {
			return nil, err
		}
		return constant(c.local(x.Target), ast.NewTerm(ast.Number(s.term.Value.(ast.String)))), nil
	case *ir.MakeNullStmt:
		return constant(c.local(x.Target), ast.InternedNullTerm), nil
	case *ir.AssignVarStmt:
		src, err := c.operand(x.Source)
		if err != nil {
			return nil, err
		}
		return set(c.local(x.Target), func(_ *state, f frame) *ast.Term { return src.get(f) }), nil
	case *ir.AssignVarOnceStmt:
		src, err := c.operand(x.Source)
		if err != nil {
			return nil, err
		}
		target, loc := c.local(x.Target), x.Location
		return func(s *state, f frame) (int, error) {
			v := src.get(f)
			if v == nil {
				return 0, nil
			}
			if old := f[target]; old != nil {
				if old.Value.Compare(v.Value) != 0 {
					return 0, s.conflict(loc, "")
				}
				return -1, nil
			}
			f[target] = v
			return -1, nil
		}, nil
	case *ir.ResetLocalStmt:
		target := c.local(x.Target)
		return func(_ *state, f frame) (int, error) { f[target] = nil; return -1, nil }, nil
	case *ir.MakeArrayStmt:
		capacity := int(x.Capacity)
		return set(c.local(x.Target), func(*state, frame) *ast.Term {
			return ast.NewTerm(ast.NewArrayWithCapacity(capacity))
		}), nil
	case *ir.MakeObjectStmt:
		return set(c.local(x.Target), func(*state, frame) *ast.Term { return ast.NewTerm(ast.NewObject()) }), nil
	case *ir.MakeSetStmt:
		return set(c.local(x.Target), func(*state, frame) *ast.Term { return ast.NewTerm(ast.NewSet()) }), nil
	case *ir.EqualStmt, *ir.NotEqualStmt:
		return c.compare(x)
	case *ir.IsArrayStmt:
		return c.is(x.Source, func(v ast.Value) bool { _, ok := v.(*ast.Array); return ok })
	case *ir.IsObjectStmt:
		return c.is(x.Source, func(v ast.Value) bool { _, ok := v.(ast.Object); return ok })
	case *ir.IsSetStmt:
		return c.is(x.Source, func(v ast.Value) bool { _, ok := v.(ast.Set); return ok })
	case *ir.IsDefinedStmt:
		src := c.local(x.Source)
		return check(func(f frame) bool { return f[src] != nil }), nil
	case *ir.IsUndefinedStmt:
		src := c.local(x.Source)
		return check(func(f frame) bool { return f[src] == nil }), nil
	case *ir.ArrayAppendStmt:
		v, err := c.operand(x.Value)
		if err != nil {
			return nil, err
		}
		array := c.local(x.Array)
		return func(_ *state, f frame) (int, error) {
			t, arr := v.get(f), f[array]
			if t == nil || arr == nil {
				return 0, nil
			}
			arr.Value = arr.Value.(*ast.Array).Append(t) // arrays are built in place, as the IR means
			return -1, nil
		}, nil
	case *ir.ObjectInsertStmt:
		return c.insert(x.Key, x.Value, x.Object, nil)
	case *ir.ObjectInsertOnceStmt:
		loc := x.Location
		return c.insert(x.Key, x.Value, x.Object, &loc)
	case *ir.ObjectMergeStmt:
		a, b := c.local(x.A), c.local(x.B)
		return set(c.local(x.Target), func(_ *state, f frame) *ast.Term {
			ta, tb := f[a], f[b]
			if ta == nil || tb == nil {
				return nil
			}
			m, ok := ta.Value.(ast.Object).Merge(tb.Value.(ast.Object))
			if !ok {
				return nil
			}
			return ast.NewTerm(m)
		}), nil
	case *ir.SetAddStmt:
		v, err := c.operand(x.Value)
		if err != nil {
			return nil, err
		}
		target := c.local(x.Set)
		return func(_ *state, f frame) (int, error) {
			t, set := v.get(f), f[target]
			if t == nil || set == nil {
				return 0, nil
			}
			set.Value.(ast.Set).Add(t)
			return -1, nil
		}, nil
	case *ir.ResultSetAddStmt:
		v := c.local(x.Value)
		return func(s *state, f frame) (int, error) { s.res = append(s.res, f[v]); return -1, nil }, nil
	case *ir.NopStmt:
		return nil, nil
	}
	return nil, fmt.Errorf("%T is not supported", st)
}

// constant is the instruction that stores t in target.
func constant(target ir.Local, t *ast.Term) instr {
	return func(_ *state, f frame) (int, error) { f[target] = t; return -1, nil }
}

func (c *compiler) compare(st ir.Stmt) (instr, error) {
	var ao, bo ir.Operand
	equal := false
	switch x := st.(type) {
	case *ir.EqualStmt:
		ao, bo, equal = x.A, x.B, true
	case *ir.NotEqualStmt:
		ao, bo = x.A, x.B
	}
	a, err := c.operand(ao)
	if err != nil {
		return nil, err
	}
	b, err := c.operand(bo)
	if err != nil {
		return nil, err
	}
	return check(func(f frame) bool {
		ta, tb := a.get(f), b.get(f)
		return ta != nil && tb != nil && (ta.Value.Compare(tb.Value) == 0) == equal
	}), nil
}

func (c *compiler) is(o ir.Operand, ok func(ast.Value) bool) (instr, error) {
	src, err := c.operand(o)
	if err != nil {
		return nil, err
	}
	return check(func(f frame) bool {
		t := src.get(f)
		return t != nil && ok(t.Value)
	}), nil
}

// insert compiles an object insert; with once (its location), a key
// already there with another value is a conflict.
func (c *compiler) insert(ko, vo ir.Operand, object ir.Local, once *ir.Location) (instr, error) {
	k, err := c.operand(ko)
	if err != nil {
		return nil, err
	}
	v, err := c.operand(vo)
	if err != nil {
		return nil, err
	}
	object = c.local(object)
	return func(s *state, f frame) (int, error) {
		tk, tv, o := k.get(f), v.get(f), f[object]
		if tk == nil || tv == nil || o == nil {
			return 0, nil
		}
		obj := o.Value.(ast.Object)
		if once != nil {
			if old := obj.Get(tk); old != nil {
				if old.Value.Compare(tv.Value) != 0 {
					return 0, s.conflict(*once, "object keys must be unique")
				}
				return -1, nil
			}
		}
		obj.Insert(tk, tv)
		return -1, nil
	}, nil
}

// call compiles a call of a planned function, a rule, or a builtin.
func (c *compiler) call(x *ir.CallStmt) (instr, error) {
	args, err := c.operands(x.Args)
	if err != nil {
		return nil, err
	}
	result := c.local(x.Result)
	if fn := c.funcs[x.Func]; fn != nil {
		if len(args) != len(fn.params) {
			return nil, fmt.Errorf("%s called with %d arguments, wants %d", x.Func, len(args), len(fn.params))
		}
		run := (*state).call
		if len(args) == 2 {
			run = (*state).rule
		}
		return func(s *state, f frame) (int, error) {
			out, err := run(s, fn, f, args)
			if err != nil {
				return 0, err
			}
			if out == nil {
				return 0, nil
			}
			f[result] = out
			return -1, nil
		}, nil
	}
	bf := c.bfs[x.Func]
	if bf == nil {
		return nil, fmt.Errorf("no function or builtin %s", x.Func)
	}
	return func(s *state, f frame) (int, error) {
		argv := s.scratch[:0]
		for _, a := range args {
			t := a.get(f)
			if t == nil {
				return 0, nil
			}
			argv = append(argv, t)
		}
		s.scratch = argv[:0]
		s.out = nil
		if err := bf(s.bctx, argv, s.iter); err != nil {
			return 0, nil // as topdown without strict builtin errors: undefined
		}
		if s.out == nil {
			return 0, nil
		}
		f[result] = s.out
		return -1, nil
	}, nil
}
