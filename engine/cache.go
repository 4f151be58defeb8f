package engine

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// evalCache is the cache of rule and function results that OPA's evaluator
// keeps during one evaluation (topdown.VirtualCache), kept from one
// evaluation to the next: OPA's own builds a tree of hash maps for every
// evaluation, about a third of the allocations of a policy evaluation,
// while this one clears its tables and reuses them. It is used by one
// evaluation at a time (getCache, putCache) and forgets everything between
// two.
type evalCache struct {
	frames []*cacheFrame // frames[len-1] is the one Get and Put see
	free   []*cacheFrame
}

// cacheFrame maps refs to results: byHash holds the index in entries of
// the last entry of each hash, chained through entry.next.
type cacheFrame struct {
	byHash  map[int]int32
	entries []cacheEntry
	refs    []*ast.Term // the entries' refs, copied: callers reuse theirs
}

type cacheEntry struct {
	hash      int
	ref       []*ast.Term
	value     *ast.Term
	undefined bool
	next      int32 // the previous entry of the same hash, -1 for none
}

var caches = sync.Pool{New: func() any { return &evalCache{} }}

// getCache returns an empty cache for one evaluation.
func getCache() *evalCache {
	c := caches.Get().(*evalCache)
	c.Push()
	return c
}

// putCache returns c for another evaluation once its own is over.
func putCache(c *evalCache) {
	for len(c.frames) > 0 {
		c.Pop()
	}
	caches.Put(c)
}

var _ topdown.VirtualCache = (*evalCache)(nil)

// Push starts a new, empty frame (for the scope of a `with`).
func (c *evalCache) Push() {
	var f *cacheFrame
	if n := len(c.free); n > 0 {
		f, c.free = c.free[n-1], c.free[:n-1]
	} else {
		f = &cacheFrame{byHash: map[int]int32{}}
	}
	c.frames = append(c.frames, f)
}

// Pop drops the top frame and what it holds.
func (c *evalCache) Pop() {
	n := len(c.frames)
	f := c.frames[n-1]
	c.frames = c.frames[:n-1]
	clear(f.byHash)
	clear(f.entries) // let the results go
	clear(f.refs)
	f.entries, f.refs = f.entries[:0], f.refs[:0]
	c.free = append(c.free, f)
}

// Get returns the result cached for ref: (nil, true) for a recorded
// undefined, (nil, false) for nothing cached.
func (c *evalCache) Get(ref ast.Ref) (*ast.Term, bool) {
	f := c.frames[len(c.frames)-1]
	if i := f.find(ref, ref.Hash()); i >= 0 {
		e := &f.entries[i]
		return e.value, e.undefined
	}
	return nil, false
}

// Put caches value as the result of ref; nil records an undefined result.
func (c *evalCache) Put(ref ast.Ref, value *ast.Term) {
	f := c.frames[len(c.frames)-1]
	h := ref.Hash()
	if i := f.find(ref, h); i >= 0 {
		f.entries[i].value, f.entries[i].undefined = value, value == nil
		return
	}
	start := len(f.refs)
	f.refs = append(f.refs, ref...)
	prev, ok := f.byHash[h]
	if !ok {
		prev = -1
	}
	f.byHash[h] = int32(len(f.entries))
	f.entries = append(f.entries, cacheEntry{hash: h, ref: f.refs[start:len(f.refs):len(f.refs)], value: value, undefined: value == nil, next: prev})
}

// Keys lists the refs the top frame holds a value for.
func (c *evalCache) Keys() []ast.Ref {
	f := c.frames[len(c.frames)-1]
	var out []ast.Ref
	for _, e := range f.entries {
		if e.value != nil {
			out = append(out, ast.Ref(e.ref))
		}
	}
	return out
}

func (f *cacheFrame) find(ref ast.Ref, h int) int32 {
	i, ok := f.byHash[h]
	if !ok {
		return -1
	}
	for ; i >= 0; i = f.entries[i].next {
		if e := &f.entries[i]; e.hash == h && equalRefs(e.ref, ref) {
			return i
		}
	}
	return -1
}

func equalRefs(a []*ast.Term, b ast.Ref) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
