package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/podgate/podgate/policies"
)

// checkParse compares parseJSON with what the engine used before it,
// ast.ValueFromReader: the same value for every valid document, an error
// for every invalid one (ValueFromReader's json.Decoder also accepts
// trailing garbage; parseJSON does not).
func checkParse(t *testing.T, data []byte) {
	t.Helper()
	got, err := parseJSON(data)
	want, wantErr := ast.ValueFromReader(bytes.NewReader(data))
	switch {
	case !json.Valid(data) || wantErr != nil:
		if err == nil {
			t.Fatalf("parseJSON(%q) = %v, want an error (json.Valid %v, ValueFromReader: %v)", data, got, json.Valid(data), wantErr)
		}
	case err != nil:
		t.Fatalf("parseJSON(%q): %v, want %v", data, err, want)
	case ast.Compare(got, want) != 0:
		t.Fatalf("parseJSON(%q) = %v, want %v", data, got, want)
	}
}

var jsonCases = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e3`, `-12.25E-2`, `true`, `false`, `null`,
	` {"a" : [1, 2.0, "x", null, true, false, {}, []] } `,
	`{"s": "tab\there \"quoted\" \\ \/ \u00e9 \ud83d\ude00 \u0000"}`,
	`{"utf8": "héllo wörld ✓", "bad": "\xff\xfe"}`,
	`{"a": 1, "a": 2}`,
	`{"n": 12345678901234567890123, "f": 1e400, "g": 1e-400}`,
	`{"a": 1,}`, `[1,]`, `{"a" 1}`, `{a: 1}`, `[1 2]`, `01`, `1.`, `.5`, `-`, `1e`, `+1`,
	`"unterminated`, `"ctrl` + "\x01" + `"`, `"bad escape \x"`, `{"a": tru}`, `nul`,
	`{"a": 1} x`, `{"a": 1} {"b": 2}`, ``, `   `, `[`, `{"a":`, `"\`,
}

func TestParseJSONDecodesAsValueFromReader(t *testing.T) {
	for _, c := range jsonCases {
		checkParse(t, []byte(c))
	}
	// Every object of the policies' testdata, as the handlers get them.
	for _, c := range loadCases(t) {
		checkParse(t, c)
	}
	// A repeated key in an object large enough to be indexed.
	var b strings.Builder
	b.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&b, `"k%d": %d, `, i%25, i)
	}
	b.WriteString(`"end": true}`)
	checkParse(t, []byte(b.String()))
	// Nesting deeper than encoding/json allows.
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	if _, err := parseJSON([]byte(deep)); err == nil {
		t.Error("parseJSON accepted nesting deeper than encoding/json does")
	}
}

func loadCases(t testing.TB) [][]byte {
	cases, err := policies.LoadCases(policies.FS, "policies")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, c := range cases {
		out = append(out, c.Object)
		if len(c.OldObject) > 0 {
			out = append(out, c.OldObject)
		}
	}
	return out
}

func FuzzParseJSON(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c))
	}
	for _, c := range loadCases(f) {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data)
	})
}
