// Package testenv helps the handler tests: it loads the built-in policy
// set and builds admission requests, from inline objects or from testdata
// cases (whose expectations `podgate test` judges; tests here use the cases
// as inputs for properties of their own).
package testenv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// PoliciesDir is the repository's policies folder.
func PoliciesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "policies")
}

// Engine returns an engine with the built-in policies and the given config
// file ("" for the defaults).
func Engine(t testing.TB, config string) *engine.Engine {
	t.Helper()
	e := engine.New()
	if err := e.Load(t.Context(), engine.Sources{Builtin: policies.FS, ConfigFile: config}); err != nil {
		t.Fatalf("load built-in policies: %v", err)
	}
	return e
}

// Cases loads every testdata case of the built-in policies.
func Cases(t testing.TB) []policies.Case {
	t.Helper()
	cases, err := policies.LoadCases(os.DirFS(PoliciesDir()), "policies")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no testdata cases found")
	}
	return cases
}

// Nodes decodes a case's inventory.
func Nodes(t testing.TB, c policies.Case) map[string]engine.Node {
	t.Helper()
	nodes := make(map[string]engine.Node, len(c.Nodes))
	for name, raw := range c.Nodes {
		var n engine.Node
		if err := json.Unmarshal(raw, &n); err != nil {
			t.Fatalf("%s: node %s: %v", c.File, name, err)
		}
		nodes[name] = n
	}
	return nodes
}

// Request builds the admission request the API server would send for obj.
func Request(t testing.TB, op, namespace string, obj, old []byte) admission.Request {
	t.Helper()
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(obj, &meta); err != nil {
		t.Fatalf("object: %v", err)
	}
	gv, err := schema.ParseGroupVersion(meta.APIVersion)
	if err != nil {
		t.Fatalf("apiVersion %q: %v", meta.APIVersion, err)
	}
	resource := strings.ToLower(meta.Kind) + "s"
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("uid-" + meta.Metadata.Name),
		Kind:      metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: meta.Kind},
		Resource:  metav1.GroupVersionResource{Group: gv.Group, Version: gv.Version, Resource: resource},
		Name:      meta.Metadata.Name,
		Namespace: namespace,
		Operation: admissionv1.Operation(op),
		UserInfo:  authenticationv1.UserInfo{Username: "tester", Groups: []string{"system:authenticated"}},
		Object:    raw(obj),
		OldObject: raw(old),
	}}
}

func raw(b []byte) k8sruntime.RawExtension { return k8sruntime.RawExtension{Raw: b} }
