package review

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

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
	case len(req.Object.Raw) > 0 && !isObject(req.Object.Raw):
		return fmt.Errorf("admission request object is not a JSON object")
	case len(req.OldObject.Raw) > 0 && !isObject(req.OldObject.Raw):
		return fmt.Errorf("admission request oldObject is not a JSON object")
	}
	return nil
}

// isObject says whether raw, which the review decoder has already checked
// to be JSON, is an object rather than a list, string, number or null.
func isObject(raw []byte) bool {
	for _, b := range raw {
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b == '{'
	}
	return false
}

// Failed is the answer to an evaluation that failed with err: 400 when the
// request's object is to blame (engine.ObjectError), else 500 with the
// reason. Never an allow: the failurePolicy decides what the API server
// does with it.
func Failed(err error) admission.Response {
	if errors.As(err, new(*engine.ObjectError)) {
		return admission.Errored(http.StatusBadRequest, err)
	}
	return admission.Errored(http.StatusInternalServerError, fmt.Errorf("podgate could not evaluate its policies: %w", err))
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

// EvalContext bounds one evaluation by timeout (none when 0). The
// request's context ends when the server shuts down (SIGTERM): a request
// already being evaluated must still get its answer while the server
// drains, so only the evaluation deadline bounds it.
func EvalContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}
