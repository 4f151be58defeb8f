package review

import (
	"errors"
	"net/http"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/engine"
)

func TestRequestsNoAPIServerSendsAreRejected(t *testing.T) {
	good := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create,
		Object: runtime.RawExtension{Raw: []byte(` {"kind":"Pod"}`)},
	}}
	if err := Check(good); err != nil {
		t.Fatalf("a well-formed request is rejected: %v", err)
	}
	tests := map[string]func(*admission.Request){
		"a request without uid":                  func(r *admission.Request) { r.UID = "" },
		"a request without kind":                 func(r *admission.Request) { r.Kind.Kind = "" },
		"a CREATE without object":                func(r *admission.Request) { r.Object.Raw = nil },
		"an UPDATE without oldObject":            func(r *admission.Request) { r.Operation = admissionv1.Update },
		"an object that is a list":               func(r *admission.Request) { r.Object.Raw = []byte(`[{"kind":"Pod"}]`) },
		"an oldObject that is a string":          func(r *admission.Request) { r.OldObject.Raw = []byte(`"Pod"`) },
		"an UPDATE whose oldObject is JSON null": func(r *admission.Request) { r.Operation, r.OldObject.Raw = admissionv1.Update, []byte("null") },
	}
	for name, change := range tests {
		t.Run(name+" is rejected", func(t *testing.T) {
			req := good
			change(&req)
			if err := Check(req); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestAFailedEvaluationIsNeverAnAllow(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int32
	}{
		{"an object that is not JSON is the request's fault: 400", &engine.ObjectError{Field: "object", Err: errors.New("unexpected end of JSON input")}, http.StatusBadRequest},
		{"so is one wrapped by the engine", errors.Join(errors.New("old object"), &engine.ObjectError{Field: "oldObject", Err: errors.New("bad")}), http.StatusBadRequest},
		{"no policy set is podgate's fault: 500", engine.ErrNotLoaded, http.StatusInternalServerError},
		{"an evaluation error is podgate's fault: 500", errors.New("eval_conflict_error"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := Failed(tt.err)
			if resp.Allowed || resp.Result == nil || resp.Result.Code != tt.code || resp.Result.Message == "" {
				t.Fatalf("want allowed=false, code %d and a reason; got allowed=%v %+v", tt.code, resp.Allowed, resp.Result)
			}
		})
	}
}
