package engine

import (
	"fmt"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The reused cache keeps OPA's VirtualCache contract: a value or an
// undefined per ref, the top frame only, nothing after a Pop or between
// two evaluations, and refs its caller reuses copied.
func TestTheEvaluationCacheKeepsOPAsContract(t *testing.T) {
	c := getCache()
	a, b := ast.MustParseRef("data.x.a"), ast.MustParseRef("data.x.b")
	call := ast.Ref{ast.VarTerm("data"), ast.StringTerm("f"), ast.IntNumberTerm(1)}
	c.Put(a, ast.IntNumberTerm(1))
	c.Put(b, nil)
	if v, undefined := c.Get(a); v == nil || !v.Equal(ast.IntNumberTerm(1)) || undefined {
		t.Fatalf("a: %v %v", v, undefined)
	}
	if v, undefined := c.Get(b); v != nil || !undefined {
		t.Fatalf("b recorded undefined: %v %v", v, undefined)
	}
	c.Put(call, ast.StringTerm("one"))
	call[2] = ast.IntNumberTerm(2) // the caller reuses its key
	if v, _ := c.Get(call); v != nil {
		t.Fatalf("f(2) was never put, got %v", v)
	}
	c.Put(a, ast.IntNumberTerm(3))
	if v, _ := c.Get(a); !v.Equal(ast.IntNumberTerm(3)) {
		t.Fatalf("a after a second Put: %v", v)
	}
	c.Push()
	if v, undefined := c.Get(a); v != nil || undefined {
		t.Fatalf("a new frame is empty, got %v %v", v, undefined)
	}
	c.Put(a, ast.IntNumberTerm(4))
	c.Pop()
	if v, _ := c.Get(a); !v.Equal(ast.IntNumberTerm(3)) {
		t.Fatalf("after Pop, a is the outer frame's again: %v", v)
	}
	if got := len(c.Keys()); got != 2 {
		t.Fatalf("keys with values: %d, want 2 (a and f(1))", got)
	}
	for i := range 1000 { // many entries, and any hash collision among them
		c.Put(ast.Ref{ast.VarTerm("data"), ast.StringTerm(fmt.Sprint(i))}, ast.IntNumberTerm(i))
	}
	for i := range 1000 {
		if v, _ := c.Get(ast.Ref{ast.VarTerm("data"), ast.StringTerm(fmt.Sprint(i))}); v == nil || !v.Equal(ast.IntNumberTerm(i)) {
			t.Fatalf("entry %d: %v", i, v)
		}
	}
	putCache(c)
	c = getCache()
	defer putCache(c)
	if v, undefined := c.Get(a); v != nil || undefined {
		t.Fatalf("a cache from the pool is empty, got %v %v", v, undefined)
	}
}
