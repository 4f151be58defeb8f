// Package review holds what podgate's two admission handlers share besides
// the engine: the check that a request is well formed, and its conversion
// to an engine.Request. Keeping it here means both webhooks reject the
// same malformed requests with the same words.
package review

import (
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/engine"
)

// Check rejects requests that no API server sends: they get 400.
func Check(req admission.Request) error {
	switch {
	case req.UID == "":
		return fmt.Errorf("admission request has no uid")
	case req.Kind.Kind == "":
		return fmt.Errorf("admission request has no kind")
	case (req.Operation == admissionv1.Create || req.Operation == admissionv1.Update) && len(req.Object.Raw) == 0:
		return fmt.Errorf("admission request for %s has no object", req.Operation)
	case req.Operation == admissionv1.Update && len(req.OldObject.Raw) == 0:
		return fmt.Errorf("admission request for UPDATE has no oldObject")
	}
	return nil
}

// EngineRequest is what the engine needs of an admission request.
func EngineRequest(req admission.Request) *engine.Request {
	return &engine.Request{
		UID:       string(req.UID),
		Kind:      engine.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind},
		Namespace: req.Namespace,
		Name:      req.Name,
		Operation: string(req.Operation),
		UserInfo:  engine.UserInfo{Username: req.UserInfo.Username, UID: req.UserInfo.UID, Groups: req.UserInfo.Groups},
		DryRun:    req.DryRun != nil && *req.DryRun,
		Object:    req.Object.Raw,
		OldObject: req.OldObject.Raw,
	}
}
