package policies_test

import (
	"regexp"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podgate/podgate/policies"
)

// FuzzScaledMatchesKubernetes checks the Rego int-or-percent resolution
// against Kubernetes' own intstr.GetScaledValueFromIntOrPercent, for
// percentages ("25%", "05%") and integers, rounding up and down.
func FuzzScaledMatchesKubernetes(f *testing.F) {
	for _, s := range []string{"25%", "0%", "100%", "05%", "33%", "150%", "7", "abc", "%", "-5%", " 5%", "1e2%"} {
		f.Add(s, 4, true)
		f.Add(s, 3, false)
	}
	src, err := policies.FS.ReadFile("lib/intstr.rego")
	if err != nil {
		f.Fatal(err)
	}
	pq, err := rego.New(
		rego.Query("x := data.podgate.lib.intstr.scaled(input.value, input.total, input.up)"),
		rego.Module("intstr.rego", string(src)),
	).PrepareForEval(f.Context())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value string, total int, roundUp bool) {
		if total < 0 || total > 1_000_000 {
			return // replicas and node counts
		}
		want, wantErr := intstr.GetScaledValueFromIntOrPercent(ptr(intstr.FromString(value)), total, roundUp)
		input := ast.NewObject(
			ast.Item(ast.StringTerm("value"), ast.StringTerm(value)),
			ast.Item(ast.StringTerm("total"), ast.IntNumberTerm(total)),
			ast.Item(ast.StringTerm("up"), ast.BooleanTerm(roundUp)),
		)
		rs, err := pq.Eval(t.Context(), rego.EvalParsedInput(input))
		if err != nil {
			t.Fatalf("scaled(%q, %d, %v): %v", value, total, roundUp, err)
		}
		if !apiServerAccepts.MatchString(value) {
			// The API server's validation (IsValidPercent) refuses such a
			// string before admission; Rego must not invent a value.
			if len(rs) != 0 {
				t.Fatalf("scaled(%q, %d, %v) = %v for a value the API server refuses", value, total, roundUp, rs[0].Bindings["x"])
			}
			return
		}
		if len(value) > 6 {
			// Beyond 99999%, Kubernetes' float64 arithmetic itself rounds
			// (7000000000000066% of 3 comes out one too high); Rego's
			// numbers are exact. No rollout is configured like that.
			return // (the API server refuses what overflows an int)
		}
		if wantErr != nil {
			t.Fatalf("Kubernetes refuses %q: %v", value, wantErr)
		}
		if len(rs) != 1 {
			t.Fatalf("scaled(%q, %d, %v) undefined; Kubernetes says %d", value, total, roundUp, want)
		}
		got, _ := rs[0].Bindings["x"].(interface{ String() string })
		if got == nil || got.String() != itoa(want) {
			t.Fatalf("scaled(%q, %d, %v) = %v; Kubernetes says %d", value, total, roundUp, rs[0].Bindings["x"], want)
		}
	})
}

// apiServerAccepts is apimachinery's IsValidPercent: the only strings a
// Deployment's maxSurge and maxUnavailable may hold.
var apiServerAccepts = regexp.MustCompile(`^[0-9]+%$`)

func ptr[T any](v T) *T { return &v }

func itoa(i int) string { return ast.IntNumberTerm(i).String() }
