package validate

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/exception"
	"github.com/podgate/podgate/metrics"
)

// isException says whether req is for a PolicyException, which podgate
// checks itself rather than with its policies.
func isException(req admission.Request) bool {
	return req.Kind.Group == exception.GroupKind.Group && req.Kind.Kind == exception.GroupKind.Kind
}

// checkException denies a PolicyException that names a rule no loaded
// policy has, or one config puts out of exceptions' reach, or whose expiry
// is missing, past or too far ahead (engine.CheckException); the CRD's
// schema has checked its shape already.
func (h *Handler) checkException(req admission.Request) (admission.Response, string) {
	pe, err := exception.Decode(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err), metrics.Errored
	}
	ex, err := exception.FromObject(pe)
	if err != nil {
		return admission.Denied(err.Error()), metrics.Denied
	}
	if ex.Namespace == "" {
		ex.Namespace = req.Namespace
	}
	problems, err := h.Engine.CheckException(ex, time.Now())
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("podgate could not check the exception: %w", err)), metrics.Errored
	}
	if problems == "" {
		return admission.Allowed(""), metrics.Allowed
	}
	lines := strings.Split(problems, "\n")
	for i, l := range lines {
		lines[i] = fmt.Sprintf("[podgate/exception] PolicyException %s/%s: %s", req.Namespace, pe.Name, l)
	}
	h.Log.Info("denied", "object", "PolicyException "+req.Namespace+"/"+pe.Name, "operation", req.Operation, "problems", len(lines))
	return admission.Denied(strings.Join(lines, "\n")), metrics.Denied
}
