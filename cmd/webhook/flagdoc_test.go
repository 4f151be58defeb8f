package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's webhook flag table from the flag set (make readme-flags)")

// The markers around the generated table in README.md.
const (
	flagTableStart = "<!-- webhook flags: generated from cmd/webhook's flag set by `make readme-flags`; do not edit -->\n"
	flagTableEnd   = "<!-- end of webhook flags -->\n"
)

// flagTable is README.md's table of every flag the webhook takes, from the
// flag set itself: its name, its default and its usage text.
func flagTable() string {
	o := NewOptions()
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	o.AddFlags(fs)
	var b strings.Builder
	b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := "`" + f.DefValue + "`"
		switch f.DefValue {
		case "", "0", "0s", "false", "[]":
			def = ""
		}
		_, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "| `--%s` | %s | %s |\n", f.Name, def, strings.ReplaceAll(usage, "|", `\|`))
	})
	return b.String()
}

// TestTheREADMEFlagTableIsTheFlagSet keeps README.md's flag table in step
// with the flags (make verify runs it; make readme-flags rewrites it).
func TestTheREADMEFlagTableIsTheFlagSet(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(readme, []byte(flagTableStart))
	end := bytes.Index(readme, []byte(flagTableEnd))
	if start < 0 || end < start {
		t.Fatalf("README.md has no %q ... %q section", flagTableStart, flagTableEnd)
	}
	start += len(flagTableStart)
	want := flagTable()
	if string(readme[start:end]) == want {
		return
	}
	if !*updateREADME {
		t.Fatalf("README.md's webhook flag table is not the flag set's; run `make readme-flags`. Want:\n%s", want)
	}
	out := append(append(append([]byte{}, readme[:start]...), want...), readme[end:]...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
