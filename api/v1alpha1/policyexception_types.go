package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PolicyExceptionSpec says which rules the matched workloads may break,
// why, and until when.
//
// +kubebuilder:validation:XValidation:rule="self.reason.trim().size() > 0",message="reason must say why (the ticket, who approved)"
type PolicyExceptionSpec struct {
	// Rules are the rules excepted, each "policy/rule" (tolerations/control-plane)
	// or "policy/*" (every rule of the policy).
	//
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.all(r, r.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?/([*]|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$'))",message="each rule is policy/rule or policy/*, e.g. tolerations/control-plane"
	// +listType=set
	Rules []string `json:"rules"`

	// Match selects the workloads of the exception's namespace it applies to.
	Match ExceptionMatch `json:"match"`

	// Expires is when the exception stops counting (RFC 3339, e.g.
	// 2027-01-31T00:00:00Z). podgate's config says whether it is required
	// and how far ahead it may be (exceptions.requireExpiry,
	// exceptions.maxDuration).
	//
	// +optional
	Expires *metav1.Time `json:"expires,omitempty"`

	// Reason says why the workloads may break the rules: the ticket, who
	// approved. Every violation it excepts carries it.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason"`
}

// ExceptionMatch selects workloads by kind, name and labels; a workload
// must match every field that is set, and at least names or selector must
// be: an exception names what it lets through.
//
// +kubebuilder:validation:XValidation:rule="has(self.names) || has(self.selector)",message="match needs names or a selector: an exception says which workloads it lets through"
type ExceptionMatch struct {
	// Kinds are the kinds matched (Pod, Deployment, StatefulSet, DaemonSet,
	// ReplicaSet, Job, CronJob); empty matches every kind.
	//
	// +optional
	// +kubebuilder:validation:items:Enum=Pod;Deployment;StatefulSet;DaemonSet;ReplicaSet;Job;CronJob
	// +listType=set
	Kinds []string `json:"kinds,omitempty"`

	// Names are the workload names matched; "*" matches any run of
	// characters (node-exporter, web-*).
	//
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:items:MinLength=1
	// +listType=set
	Names []string `json:"names,omitempty"`

	// Selector selects by the workload's own labels (metadata.labels, not
	// its pod template's).
	//
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// PolicyException lets the workloads it matches, in its own namespace,
// break the rules it names until it expires. Each violation it covers is
// admitted with a warning that names it, and reported by the audit as
// skip.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=pex,categories=podgate
// +kubebuilder:printcolumn:name="Rules",type=string,JSONPath=`.spec.rules`
// +kubebuilder:printcolumn:name="Expires",type=string,format=date-time,JSONPath=`.spec.expires`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PolicyException struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PolicyExceptionSpec `json:"spec"`
}

// PolicyExceptionList is a list of PolicyExceptions.
//
// +kubebuilder:object:root=true
type PolicyExceptionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PolicyException `json:"items"`
}
