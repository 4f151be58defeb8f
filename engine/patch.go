package engine

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"gomodules.xyz/jsonpatch/v2"
)

// diff returns the JSONPatch that turns before into after, two documents
// decoded as encoding/json (with UseNumber) decodes them, or opened as far
// as needed (opened). It is the patch of
// admission.PatchResponseFromRaw computed from the trees the handler
// already holds: PatchResponseFromRaw would marshal the mutated object and
// unmarshal both objects again, which cost the mutating webhook as much as
// evaluating its policies (see docs/performance.md).
//
// Objects are compared key by key (sorted, so the patch is stable); an
// array of the same length element by element, one of another length is
// replaced whole; anything else that differs is replaced.
func diff(before, after any) []jsonpatch.JsonPatchOperation {
	var ops []jsonpatch.JsonPatchOperation
	diffInto(&ops, "", before, after)
	return ops
}

func diffInto(ops *[]jsonpatch.JsonPatchOperation, path string, before, after any) {
	if sameUnopened(before, after) {
		return // shared by both documents, never opened: unchanged
	}
	before, after = opened(before), opened(after)
	switch a := after.(type) {
	case map[string]any:
		if b, ok := before.(map[string]any); ok {
			if sameMap(a, b) {
				return // shared by both documents (mutateObject): unchanged
			}
			for _, k := range slices.Sorted(maps.Keys(b)) {
				if _, kept := a[k]; !kept {
					*ops = append(*ops, jsonpatch.NewOperation("remove", path+"/"+escapeKey(k), nil))
				}
			}
			for _, k := range slices.Sorted(maps.Keys(a)) {
				if old, had := b[k]; had {
					diffInto(ops, path+"/"+escapeKey(k), old, a[k])
				} else {
					*ops = append(*ops, jsonpatch.NewOperation("add", path+"/"+escapeKey(k), plain(a[k])))
				}
			}
			return
		}
	case []any:
		if b, ok := before.([]any); ok && len(b) == len(a) {
			if len(a) == 0 || &a[0] == &b[0] {
				return // shared by both documents: unchanged
			}
			for i := range a {
				diffInto(ops, path+"/"+strconv.Itoa(i), b[i], a[i])
			}
			return
		}
	default:
		if scalarEqual(before, after) {
			return
		}
	}
	*ops = append(*ops, jsonpatch.NewOperation("replace", path, plain(after)))
}

// sameUnopened says whether a and b are the same object or array, not
// opened in either document.
func sameUnopened(a, b any) bool {
	switch x := a.(type) {
	case ast.Object:
		y, ok := b.(ast.Object)
		return ok && x == y
	case *ast.Array:
		y, ok := b.(*ast.Array)
		return ok && x == y
	}
	return false
}

// scalarEqual compares two JSON scalars as decoded: strings, json.Number
// (compared as written: the API server stores what the patch says), bools
// and nil. A number a policy returns may be an int64 or float64: those
// compare by their JSON text.
func scalarEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string, bool:
		return a == b
	case json.Number:
		return x.String() == numberText(b)
	}
	switch b.(type) {
	case map[string]any, []any:
		return false
	}
	return numberText(a) != "" && numberText(a) == numberText(b)
}

func numberText(v any) string {
	switch n := v.(type) {
	case json.Number:
		return n.String()
	case int, int32, int64, uint64, float64:
		out, _ := json.Marshal(n)
		return string(out)
	}
	return ""
}

// escapeKey writes an object key as a JSON pointer segment (RFC 6901).
func escapeKey(k string) string {
	if !strings.ContainsAny(k, "~/") {
		return k
	}
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// sameMap says whether a and b are the same map, not equal ones.
func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
