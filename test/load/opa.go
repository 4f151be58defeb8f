package load

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// opaEntrypoint is the Rego that turns podgate's policies into an
// AdmissionReview answer for opa run --server (see its doc comment).
//
//go:embed opa/admission.rego
var opaEntrypoint []byte

// policyMetadata is what OPA needs of each policy's METADATA, as
// data.podgate.loadtest.metadata: {name: {enforcement, rules: {id: level}}},
// read by podgate's engine from the same sources.
func policyMetadata(ctx context.Context) (map[string]any, error) {
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

// writeOPABundle lays out for `opa run --server DIR` what podgate's engine
// loads, and the entrypoint:
//
//	policies/...        the built-in .rego files (not the tests)
//	data.yaml           the shipped config defaults (data.podgate.config)
//	podgate/inventory/  data.json: {"nodes": ...}, the webhook's inventory
//	podgate/loadtest/   data.json: {"metadata": ...}
//	system/             admission.rego, the entrypoint (data.system.main)
func writeOPABundle(ctx context.Context, dir string, nodes map[string]engine.Node) error {
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
	meta, err := policyMetadata(ctx)
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
		"system/admission.rego":       opaEntrypoint,
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

// Answer is what an admission decision consists of, as both servers
// write it: the comparison of podgate's and OPA's decisions.
type Answer struct {
	UID              string            `json:"uid"`
	Allowed          bool              `json:"allowed"`
	Code             int32             `json:"code"`
	Reason           string            `json:"reason,omitempty"`
	Message          string            `json:"message,omitempty"`
	Warnings         []string          `json:"warnings,omitempty"`
	AuditAnnotations map[string]string `json:"auditAnnotations,omitempty"`
}

// ParseAnswer reads an AdmissionReview answer.
func ParseAnswer(body []byte) (Answer, error) {
	var review struct {
		Response *struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
			Status  *struct {
				Code    int32  `json:"code"`
				Reason  string `json:"reason"`
				Message string `json:"message"`
			} `json:"status"`
			Warnings         []string          `json:"warnings"`
			AuditAnnotations map[string]string `json:"auditAnnotations"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &review); err != nil {
		return Answer{}, fmt.Errorf("answer is no AdmissionReview: %w: %.200s", err, body)
	}
	r := review.Response
	if r == nil {
		return Answer{}, fmt.Errorf("answer has no response: %.200s", body)
	}
	a := Answer{UID: r.UID, Allowed: r.Allowed, Warnings: slices.Clone(r.Warnings), AuditAnnotations: r.AuditAnnotations}
	if r.Status != nil {
		a.Code, a.Reason, a.Message = r.Status.Code, r.Status.Reason, r.Status.Message
	}
	if len(a.AuditAnnotations) == 0 {
		a.AuditAnnotations = nil
	}
	return a, nil
}

// Summary is the decision in a few words, for reports.
func (a Answer) Summary() string {
	switch {
	case !a.Allowed:
		return fmt.Sprintf("denied (%d): %d violations", a.Code, strings.Count(a.Message, "\n")+1)
	case len(a.Warnings) > 0:
		return fmt.Sprintf("allowed, %d warnings", len(a.Warnings))
	}
	return "allowed"
}
