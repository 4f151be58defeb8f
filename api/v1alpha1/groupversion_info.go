// Package v1alpha1 is podgate's API, group podgate.dev: the
// PolicyException, which lets named workloads of one namespace break named
// rules, for a reason and until an expiry (docs/exceptions.md). The CRD in
// charts/podgate/crds/ is generated from these types (make generate).
//
// +kubebuilder:object:generate=true
// +groupName=podgate.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is podgate.dev/v1alpha1.
	GroupVersion = schema.GroupVersion{Group: "podgate.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this group version, with
	// apimachinery's builder as k8s.io/api's groups do (controller-runtime
	// deprecates its own for API packages, which should need no more than
	// apimachinery).
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this group version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &PolicyException{}, &PolicyExceptionList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
