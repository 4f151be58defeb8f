package engine

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Skip says why policies do not look at req at all, or "" when they do.
// Both webhooks use it, so the two always agree on what is in scope:
//   - namespaces excluded in config (kube-system and kube-node-lease by default);
//   - Pods owned by a controller: they were checked as their owner's pod
//     template, and a denied ReplicaSet pod would only show up as an event
//     nobody reads.
func (e *Engine) Skip(req *Request) string {
	if s := e.current.Load(); s != nil && slices.Contains(s.config.ExcludedNamespaces, req.Namespace) {
		return fmt.Sprintf("namespace %s is excluded", req.Namespace)
	}
	if req.Kind.Kind == "Pod" && req.Kind.Group == "" {
		if owner := controllerOf(req.Object); owner != "" {
			return "pod is controlled by " + owner + ", whose pod template was checked"
		}
	}
	return ""
}

// controllerOf returns "Kind/name" of the controller in an object's
// ownerReferences, or "".
func controllerOf(raw []byte) string {
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
