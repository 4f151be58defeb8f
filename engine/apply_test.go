package engine

import (
	"slices"
	"testing"
)

func TestApplyCreatesMissingParents(t *testing.T) {
	doc := map[string]any{"metadata": map[string]any{}}
	if err := apply(doc, "add", "/metadata/annotations/a~1b", "v"); err != nil {
		t.Fatal(err)
	}
	got := doc["metadata"].(map[string]any)["annotations"].(map[string]any)["a/b"]
	if got != "v" {
		t.Fatalf("got %v", doc)
	}
	if err := apply(doc, "replace", "/spec/x", 1); err == nil {
		t.Fatal("replace of a missing field must fail")
	}
	if !slices.Equal(must(parsePointer("/a/~0b/c~1d")), []string{"a", "~b", "c/d"}) {
		t.Fatal("pointer unescaping")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
