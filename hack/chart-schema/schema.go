// Command chart-schema writes what the podgate chart knows of the built-in
// policies, from the policies themselves, so that `helm install` and
// `helm upgrade` refuse a bad `config:` value before anything rolls out,
// as the webhook would refuse it (podgate check --config).
//
//	go run ./hack/chart-schema charts/podgate          # rewrite both files
//	go run ./hack/chart-schema -check charts/podgate   # fail if stale
//
// It writes:
//   - the "config" property of values.schema.json: every key of every
//     built-in policy's section with the type of its default
//     (policies/data.yaml), enforcement levels, and rule ids from each
//     policy's METADATA; a section for any other policy (a custom one)
//     with the keys every section may carry;
//   - templates/_defaults.tpl: the built-in policy names, for the check
//     that a config section names a built-in or a customPolicies policy,
//     and the shipped controllerUsers, for the matchCondition.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

func main() {
	check := flag.Bool("check", false, "do not write: fail if the files are not what would be written")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: chart-schema [-check] CHART_DIR")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *check); err != nil {
		fmt.Fprintln(os.Stderr, "chart-schema:", err)
		os.Exit(1)
	}
}

func run(dir string, check bool) error {
	cfg, pols, err := builtins()
	if err != nil {
		return err
	}
	schemaPath := filepath.Join(dir, "values.schema.json")
	current, err := os.ReadFile(schemaPath)
	if err != nil {
		return err
	}
	schema, err := ReplaceConfig(current, ConfigSchema(cfg, pols))
	if err != nil {
		return fmt.Errorf("%s: %w", schemaPath, err)
	}
	defaults, err := Defaults(cfg, pols)
	if err != nil {
		return err
	}
	files := map[string][]byte{schemaPath: schema, filepath.Join(dir, "templates", "_defaults.tpl"): defaults}
	for _, path := range slices.Sorted(maps.Keys(files)) {
		if check {
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, files[path]) {
				return fmt.Errorf("%s is not up to date with policies/: run `make chart-schema`", path)
			}
			continue
		}
		if err := os.WriteFile(path, files[path], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// builtins loads the built-in policies and their shipped config.
func builtins() (*engine.Config, []engine.Policy, error) {
	cfg, err := engine.DefaultConfig(policies.FS)
	if err != nil {
		return nil, nil, err
	}
	eng := engine.New()
	if err := eng.Load(context.Background(), engine.Sources{Builtin: policies.FS}); err != nil {
		return nil, nil, err
	}
	return cfg, eng.Policies(), nil
}

// schema is a JSON Schema (draft 7) node.
type schema = map[string]any

var levels = []any{"deny", "warn", "dryrun", "off"}

// ConfigSchema is the schema of the chart's `config` value: the policy
// configuration as the webhook validates it (the policies' sections and
// what PolicyExceptions may do), less excludedNamespaces and
// controllerUsers, which the chart sets from values of their own.
func ConfigSchema(cfg *engine.Config, pols []engine.Policy) schema {
	sections := schema{}
	for _, p := range pols {
		section := schema{}
		if params, ok := cfg.Raw["policies"].(map[string]any)[p.Name].(map[string]any); ok {
			for k, v := range params {
				section[k] = valueSchema(v)
			}
		}
		rules := schema{}
		for id, r := range p.Rules {
			rules[id] = schema{"enum": levels, "description": r.Summary + " (default " + string(r.Enforcement) + ")"}
		}
		common := commonKeys(schema{"type": "object", "additionalProperties": false, "properties": rules})
		maps.Copy(section, common)
		sections[p.Name] = schema{"type": "object", "additionalProperties": false, "properties": section, "description": p.Title + " (built in)"}
	}
	custom := schema{
		"type":        "object",
		"properties":  commonKeys(schema{"type": "object", "additionalProperties": schema{"enum": levels}}),
		"description": "A custom policy of customPolicies: its own parameters, and the keys every policy takes.",
	}
	return schema{
		"type":                 "object",
		"additionalProperties": false,
		"description":          "podgate's policy configuration, checked as the webhook checks it (generated from policies/ by make chart-schema). Excluded namespaces and controller users go in excludedNamespaces and controllerUsers.",
		"properties": schema{
			"policies":   schema{"type": "object", "properties": sections, "additionalProperties": custom},
			"exceptions": valueSchema(cfg.Raw["exceptions"]),
		},
	}
}

// commonKeys are the keys every policy section takes, with rules as given.
func commonKeys(rules schema) schema {
	return schema{
		"enforcement":        schema{"enum": levels},
		"rules":              rules,
		"excludedNamespaces": schema{"type": "array", "items": schema{"type": "string"}},
	}
}

// valueSchema is the schema of a parameter whose default is v: the same
// type, and for a mapping the same keys (the webhook refuses others).
func valueSchema(v any) schema {
	switch t := v.(type) {
	case map[string]any:
		props := schema{}
		for k, x := range t {
			props[k] = valueSchema(x)
		}
		return schema{"type": "object", "additionalProperties": false, "properties": props}
	case []any:
		s := schema{"type": "array"}
		if len(t) > 0 {
			s["items"] = valueSchema(t[0])
		}
		return s
	case string:
		return schema{"type": "string"}
	case bool:
		return schema{"type": "boolean"}
	case nil:
		return schema{}
	}
	return schema{"type": "number"}
}

// ReplaceConfig puts config as the "config" property of the values schema
// src, written as the rest of it is (two spaces per level), leaving every
// other byte alone.
func ReplaceConfig(src []byte, config schema) ([]byte, error) {
	const key = "\n    \"config\": {"
	start := bytes.Index(src, []byte(key))
	if start < 0 {
		return nil, errors.New(`no top-level "config" property`)
	}
	end := bytes.Index(src[start+len(key):], []byte("\n    }"))
	if end < 0 {
		return nil, errors.New(`the "config" property does not end`)
	}
	end += start + len(key) + len("\n    }")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("    ", "  ")
	if err := enc.Encode(config); err != nil {
		return nil, err
	}
	out := append([]byte{}, src[:start]...)
	out = append(out, "\n    \"config\": "...)
	out = append(out, bytes.TrimRight(buf.Bytes(), "\n")...)
	return append(out, src[end:]...), nil
}

// Defaults is templates/_defaults.tpl.
func Defaults(cfg *engine.Config, pols []engine.Policy) ([]byte, error) {
	names := make([]string, len(pols))
	for i, p := range pols {
		names[i] = p.Name
	}
	builtin, err := json.Marshal(names)
	if err != nil {
		return nil, err
	}
	users, err := json.Marshal(cfg.ControllerUsers)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("{{- /* Generated from policies/ by `make chart-schema`; do not edit. */ -}}\n")
	b.WriteString("{{/* The built-in policies, as a JSON list. */}}\n")
	fmt.Fprintf(&b, "{{- define \"podgate.builtinPolicies\" -}}\n%s\n{{- end }}\n\n", builtin)
	b.WriteString("{{/* The shipped config's controllerUsers (policies/data.yaml), as a JSON list. */}}\n")
	fmt.Fprintf(&b, "{{- define \"podgate.defaultControllerUsers\" -}}\n%s\n{{- end }}\n", users)
	return []byte(b.String()), nil
}
