// Package bench holds what podgate's benchmarks and its load test send:
// realistic objects (testdata/), the AdmissionReview requests around them,
// generated Node inventories shaped like a large cluster, and generated
// custom policies, so `make bench` and `make loadtest` measure the same
// payloads. The benchmarks themselves are in bench_test.go.
package bench

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/inventory"
	"github.com/podgate/podgate/mutate"
	"github.com/podgate/podgate/policies"
)

//go:embed testdata/*.json
var testdata embed.FS

// ObjectNames are the testdata objects, in the order reports list them.
var ObjectNames = []string{"deployment", "statefulset", "pod"}

// Object returns a testdata object as compact JSON, the way the API server
// sends it.
func Object(name string) []byte {
	raw, err := testdata.ReadFile(path.Join("testdata", name+".json"))
	if err != nil {
		panic(fmt.Sprintf("bench: no testdata object %s", name))
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		panic(fmt.Sprintf("bench: testdata/%s.json: %v", name, err))
	}
	return out.Bytes()
}

// Request is one admission request of the benchmarks and the load test.
type Request struct {
	Name      string            // "validate/deployment"
	Path      string            // "/validate" or "/mutate"
	Admission admission.Request // what a handler gets
	Body      []byte            // the AdmissionReview the API server POSTs
}

// Requests builds, for each testdata object, the request to /mutate (the
// object as written) and the request to /validate (the object as the API
// server passes it on after podgate's mutation: validating webhooks run
// after mutating ones). The mutation is computed with the built-in policies
// and no Node inventory; it does not depend on the inventory.
func Requests(ctx context.Context) ([]Request, error) {
	eng := engine.New()
	if err := eng.Load(ctx, engine.Sources{Builtin: policies.FS}); err != nil {
		return nil, fmt.Errorf("load built-in policies: %w", err)
	}
	mutator := &mutate.Handler{Engine: eng, Log: logr.Discard()}
	var out []Request
	for _, name := range ObjectNames {
		obj := Object(name)
		mut, err := NewRequest("mutate", name, obj)
		if err != nil {
			return nil, err
		}
		resp := mutator.Handle(ctx, mut.Admission)
		if !resp.Allowed {
			return nil, fmt.Errorf("mutate %s: not allowed: %v", name, resp.Result)
		}
		mutated, err := applyPatches(obj, resp)
		if err != nil {
			return nil, fmt.Errorf("mutate %s: %w", name, err)
		}
		val, err := NewRequest("validate", name, mutated)
		if err != nil {
			return nil, err
		}
		out = append(out, val, mut)
	}
	return out, nil
}

// Only returns the requests to path ("/validate" or "/mutate").
func Only(reqs []Request, path string) []Request {
	return slices.DeleteFunc(slices.Clone(reqs), func(r Request) bool { return r.Path != path })
}

func applyPatches(obj []byte, resp admission.Response) ([]byte, error) {
	if len(resp.Patches) == 0 {
		return obj, nil
	}
	raw, err := json.Marshal(resp.Patches)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		return nil, err
	}
	return p.Apply(obj)
}

// NewRequest builds the AdmissionReview that the API server sends to
// webhook ("validate" or "mutate") when a serviceaccount creates obj.
func NewRequest(webhook, name string, obj []byte) (Request, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(obj, &meta); err != nil {
		return Request{}, fmt.Errorf("%s: %w", name, err)
	}
	group, version, _ := strings.Cut(meta.APIVersion, "/")
	if version == "" {
		group, version = "", group
	}
	ar := admissionv1.AdmissionRequest{
		UID:         types.UID(fmt.Sprintf("705ab4f5-6393-11e8-b7cc-42010a8000%02d", len(name))),
		Kind:        metav1.GroupVersionKind{Group: group, Version: version, Kind: meta.Kind},
		Resource:    metav1.GroupVersionResource{Group: group, Version: version, Resource: strings.ToLower(meta.Kind) + "s"},
		RequestKind: &metav1.GroupVersionKind{Group: group, Version: version, Kind: meta.Kind},
		Name:        meta.Metadata.Name,
		Namespace:   meta.Metadata.Namespace,
		Operation:   admissionv1.Create,
		UserInfo: authenticationv1.UserInfo{
			Username: "system:serviceaccount:argocd:argocd-application-controller",
			UID:      "2d9f6a2c-3d0a-4a8e-9c61-0b7f5e0a1c2d",
			Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:argocd", "system:authenticated"},
		},
		Object:  runtime.RawExtension{Raw: obj},
		DryRun:  new(bool),
		Options: runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"argocd-controller"}`)},
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &ar,
	})
	if err != nil {
		return Request{}, err
	}
	return Request{
		Name:      webhook + "/" + name,
		Path:      "/" + webhook,
		Admission: admission.Request{AdmissionRequest: ar},
		Body:      body,
	}, nil
}

// NodeObjects returns n Nodes shaped like a large cloud cluster: the
// labels every kubelet and cloud provider set (about a dozen, hostname
// unique), three zones, three tainted control-plane nodes, a GPU pool
// tainted dedicated=gpu:NoSchedule and nvidia.com/gpu (one node in 20), a
// spot pool tainted spot=true:NoSchedule (3 in 20) and one node in 100
// cordoned. Only what the inventory keeps is set.
func NodeObjects(n int) []*corev1.Node {
	nodes := make([]*corev1.Node, n)
	zones := []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}
	for i := range nodes {
		name := fmt.Sprintf("node-%05d", i)
		pool, instance := "general", "m6i.2xlarge"
		var taints []corev1.Taint
		unschedulable := false
		switch {
		case i < 3:
			pool, instance = "control-plane", "m6i.xlarge"
			taints = []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}
		case i%20 == 3:
			pool, instance = "gpu", "p4d.24xlarge"
			taints = []corev1.Taint{
				{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule},
				{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule},
			}
		case i%100 == 4:
			unschedulable = true
			taints = []corev1.Taint{{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule}}
		case i%20 >= 5 && i%20 <= 7:
			pool, instance = "spot", "c6i.4xlarge"
			taints = []corev1.Taint{{Key: "spot", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
		}
		zone := zones[i%len(zones)]
		labels := map[string]string{
			"kubernetes.io/hostname":                   name,
			"kubernetes.io/arch":                       "amd64",
			"kubernetes.io/os":                         "linux",
			"beta.kubernetes.io/arch":                  "amd64",
			"beta.kubernetes.io/os":                    "linux",
			"node.kubernetes.io/instance-type":         instance,
			"beta.kubernetes.io/instance-type":         instance,
			"topology.kubernetes.io/region":            "eu-west-1",
			"topology.kubernetes.io/zone":              zone,
			"failure-domain.beta.kubernetes.io/region": "eu-west-1",
			"failure-domain.beta.kubernetes.io/zone":   zone,
			"node-pool":                                pool,
		}
		switch pool {
		case "control-plane":
			labels["node-role.kubernetes.io/control-plane"] = ""
		case "gpu":
			labels["gpu"] = "true"
			labels["nvidia.com/gpu.product"] = "NVIDIA-A100-SXM4-40GB"
		case "spot":
			labels["spot"] = "true"
		}
		nodes[i] = &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec:       corev1.NodeSpec{Taints: taints, Unschedulable: unschedulable},
		}
	}
	return nodes
}

// Nodes is NodeObjects as the engine's inventory, converted as the webhook's
// inventory converts what its informer holds.
func Nodes(n int) map[string]engine.Node {
	out := make(map[string]engine.Node, n)
	for _, node := range NodeObjects(n) {
		out[node.Name] = inventory.Facts(node)
	}
	return out
}

// CustomPolicies returns n custom policies (file name -> Rego), the kind
// operators add: banned registries, forbidden labels and environment
// variables, annotations that must not be empty. Each looks at every
// container or at the labels of the object; none is broken by the testdata
// objects, as in a cluster where most requests comply.
func CustomPolicies(n int) map[string]string {
	out := make(map[string]string, n)
	for i := range n {
		name := fmt.Sprintf("custom_%03d", i)
		var rule, body string
		switch i % 4 {
		case 0:
			rule = "banned-registry"
			body = fmt.Sprintf(`	some i, c in workload.containers
	startswith(c.image, "banned-%03d.example.com/")
	v := {"rule": %q, "msg": sprintf("image %%s comes from a banned registry", [c.image]), "field": workload.field(workload.container_path(i, ["image"]))}`, i, rule)
		case 1:
			rule = "forbidden-label"
			body = fmt.Sprintf(`	workload.labels["example.com/forbidden-%03d"]
	v := {"rule": %q, "msg": "label example.com/forbidden-%03d is not allowed", "field": "metadata.labels"}`, i, rule, i)
		case 2:
			rule = "legacy-env"
			body = fmt.Sprintf(`	some i, c in workload.containers
	some e in object.get(c, "env", [])
	e.name == "LEGACY_FLAG_%03d"
	v := {"rule": %q, "msg": sprintf("container %%s sets LEGACY_FLAG_%03d, which was removed", [c.name]), "field": workload.field(workload.container_path(i, ["env"]))}`, i, rule, i)
		case 3:
			rule = "owner-annotation"
			body = fmt.Sprintf(`	workload.annotations["example.com/owner-%03d"] == ""
	v := {"rule": %q, "msg": "annotation example.com/owner-%03d is empty", "field": "metadata.annotations"}`, i, rule, i)
		}
		out[name+".rego"] = fmt.Sprintf(`# METADATA
# title: Custom policy %03d
# description: A generated policy of the kind operators add.
# custom:
#   enforcement: deny
#   rules:
#     %s: {enforcement: deny, summary: generated}
package podgate.policies.%s

import data.podgate.lib.workload

violation contains v if {
%s
}
`, i, rule, name, body)
	}
	return out
}
