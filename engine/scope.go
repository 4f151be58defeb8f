package engine

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The operations policies look at; any other is allowed unchecked.
const (
	OperationCreate = "CREATE"
	OperationUpdate = "UPDATE"
)

// Skip says why policies do not look at req at all, or "" when they do.
// Both webhooks, the CLI and the audit use it, so they always agree on
// what is in scope:
//   - operations other than CREATE and UPDATE;
//   - namespaces excluded in config (kube-system and kube-node-lease by default);
//   - an object that a controller writes for its owner: a user in config
//     controllerUsers (the kube-controller-manager's identities by default)
//     writing an object whose ownerReferences name a controller (the Pods of
//     a ReplicaSet, the ReplicaSet of a Deployment, the Job of a CronJob).
//     Its template was checked as its owner's, and a denied ReplicaSet pod
//     would only show up as an event nobody reads. Anyone may write an
//     ownerReference, so from any other user the object is checked like
//     every other.
//
// The chart's matchConditions keep the same controller writes away from
// the webhook altogether (so a podgate outage cannot stop them); Skip
// decides alike for a request that reaches it anyway.
func (e *Engine) Skip(req *Request) string {
	if req.Operation != OperationCreate && req.Operation != OperationUpdate {
		return fmt.Sprintf("operation %s is not checked", req.Operation)
	}
	s := e.current.Load()
	if s == nil {
		return ""
	}
	if slices.Contains(s.config.ExcludedNamespaces, req.Namespace) {
		return fmt.Sprintf("namespace %s is excluded", req.Namespace)
	}
	if slices.Contains(s.config.ControllerUsers, req.UserInfo.Username) {
		owner := controllerOf(req.Object)
		if owner == "" && req.Operation == OperationUpdate {
			owner = controllerOf(req.OldObject) // a controller releasing what it owned
		}
		if owner != "" {
			return fmt.Sprintf("written by controller %s for its owner %s, whose pod template was checked", req.UserInfo.Username, owner)
		}
	}
	return ""
}

// controllerOf returns "Kind/name" of the controller in an object's
// ownerReferences, or "".
func controllerOf(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	var obj struct {
		Metadata struct {
			OwnerReferences []struct {
				Kind       string `json:"kind"`
				Name       string `json:"name"`
				Controller *bool  `json:"controller"`
			} `json:"ownerReferences"`
		} `json:"metadata"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return ""
	}
	for _, o := range obj.Metadata.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			return o.Kind + "/" + o.Name
		}
	}
	return ""
}

// templatePaths is where each workload kind keeps its pod template.
var templatePaths = map[string][]string{
	"Deployment":  {"spec", "template"},
	"StatefulSet": {"spec", "template"},
	"DaemonSet":   {"spec", "template"},
	"ReplicaSet":  {"spec", "template"},
	"Job":         {"spec", "template"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template"},
}

// updateSkip says why an UPDATE gets no mutation: podgate never starts a
// rollout by itself, so it mutates only when the pod template changed (a
// rollout is happening anyway). A Pod's containers cannot gain probes
// after creation, so Pod updates are never mutated.
func updateSkip(req *Request) string {
	if req.Kind.Kind == "Pod" {
		return "a pod's containers cannot change after creation"
	}
	path, ok := templatePaths[req.Kind.Kind]
	if !ok {
		return ""
	}
	var obj, old map[string]any
	if json.Unmarshal(req.Object, &obj) != nil || json.Unmarshal(req.OldObject, &old) != nil {
		return ""
	}
	template, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	oldTemplate, _, _ := unstructured.NestedFieldNoCopy(old, path...)
	if reflect.DeepEqual(template, oldTemplate) {
		return "pod template unchanged; podgate mutates only when a rollout happens anyway"
	}
	return ""
}
