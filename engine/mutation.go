package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// MutationsAnnotation records, one line per change, what podgate added and
// why, so `kubectl get -o yaml` explains the mutated object.
const MutationsAnnotation = "podgate.dev/mutations"

// mutateObject applies the mutations to a copy of obj and records their
// messages in the podgate.dev/mutations annotation. Lines already in the
// annotation are kept, so a second admission of the mutated object
// (reinvocation, kubectl apply again) yields the same annotation and no
// patch.
//
// The copy shares with obj every object and array that no mutation
// changes (applyCopying): obj is left as it was, and diff skips what the
// two share.
func mutateObject(obj map[string]any, muts []Mutation) (map[string]any, error) {
	out := maps.Clone(obj)
	var lines []string
	for _, m := range muts {
		if m.Op != OpNote {
			if err := applyCopying(out, string(m.Op), m.Path, m.Value); err != nil {
				return nil, fmt.Errorf("policy %s: %w", m.Policy, err)
			}
		}
		if m.Message != "" {
			lines = append(lines, m.Policy+": "+m.Message)
		}
	}
	if err := annotate(out, lines); err != nil {
		return nil, err
	}
	return out, nil
}

func annotate(obj map[string]any, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	meta, ok := shallowCopy(obj["metadata"]).(map[string]any)
	if !ok {
		return fmt.Errorf("object has no metadata")
	}
	// Both may be shared with the object as it came in: written to copies.
	obj["metadata"] = meta
	anns, _ := shallowCopy(meta["annotations"]).(map[string]any)
	if anns == nil {
		anns = map[string]any{}
	}
	meta["annotations"] = anns
	if old, ok := anns[MutationsAnnotation].(string); ok && old != "" {
		lines = append(lines, strings.Split(old, "\n")...)
	}
	slices.Sort(lines)
	anns[MutationsAnnotation] = strings.Join(slices.Compact(lines), "\n")
	return nil
}
