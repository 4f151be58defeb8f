// Package v1alpha1 is podgate's API, group podgate.dev: the
// PolicyException, which lets named workloads of one namespace break named
// rules, for a reason and until an expiry (docs/exceptions.md). The CRD in
// charts/podgate/crds/ is generated from these types (make generate).
//
// +kubebuilder:object:generate=true
// +groupName=podgate.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is podgate.dev/v1alpha1.
	GroupVersion = schema.GroupVersion{Group: "podgate.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this group version.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
