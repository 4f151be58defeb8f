// Package opapeer is the load test's peer: podgate's built-in policies
// served by `opa run --server`, the classic kube-mgmt setup, so that
// `make loadtest` compares podgate's webhook with OPA evaluating the same
// Rego. admission.rego re-implements podgate's validating handler in Rego
// for that comparison only; it is no podgate policy. WriteBundle lays out
// what OPA serves; TestOPAPeerDecidesAsPodgate keeps the two deciding
// alike.
package opapeer

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// Entrypoint is the Rego that turns podgate's policies into an
// AdmissionReview answer for opa run --server (see its comments).
//
//go:embed admission.rego
var Entrypoint []byte

// Metadata is what OPA needs of each policy's METADATA, as
// data.podgate.loadtest.metadata: {name: {enforcement, rules: {id: level}}},
// read by podgate's engine from the same sources.
func Metadata(ctx context.Context) (map[string]any, error) {
	eng := engine.New()
	if err := eng.Load(ctx, engine.Sources{Builtin: policies.FS}); err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, p := range eng.Policies() {
		rules := map[string]any{}
		for id, r := range p.Rules {
			rules[id] = string(r.Enforcement)
		}
		out[p.Name] = map[string]any{"enforcement": string(p.Enforcement), "rules": rules}
	}
	return out, nil
}

// WriteBundle lays out for `opa run --server DIR` what podgate's engine
// loads, and the entrypoint:
//
//	policies/...        the built-in .rego files (not the tests)
//	data.yaml           the shipped config defaults (data.podgate.config)
//	podgate/inventory/  data.json: {"nodes": ...}, the webhook's inventory
//	podgate/loadtest/   data.json: {"metadata": ...}
//	system/             admission.rego, the entrypoint (data.system.main)
func WriteBundle(ctx context.Context, dir string, nodes map[string]engine.Node) error {
	err := fs.WalkDir(policies.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.Contains(path, "/testdata/") || strings.HasSuffix(path, "_test.rego") ||
			(!strings.HasSuffix(path, ".rego") && path != "data.yaml") {
			return nil
		}
		data, err := fs.ReadFile(policies.FS, path)
		if err != nil {
			return err
		}
		dest := filepath.Join(dir, "policies", path)
		if path == "data.yaml" {
			dest = filepath.Join(dir, path)
		}
		return writeFile(dest, data)
	})
	if err != nil {
		return fmt.Errorf("write OPA bundle: %w", err)
	}
	meta, err := Metadata(ctx)
	if err != nil {
		return err
	}
	inventory, err := json.Marshal(map[string]any{"nodes": nodes})
	if err != nil {
		return err
	}
	metadata, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return err
	}
	for path, data := range map[string][]byte{
		"podgate/inventory/data.json": inventory,
		"podgate/loadtest/data.json":  metadata,
		"system/admission.rego":       Entrypoint,
	} {
		if err := writeFile(filepath.Join(dir, path), data); err != nil {
			return fmt.Errorf("write OPA bundle: %w", err)
		}
	}
	return nil
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
