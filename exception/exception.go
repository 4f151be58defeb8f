// Package exception connects PolicyExceptions (podgate.dev/v1alpha1) to
// the engine: it turns them into engine.Exceptions, and Feeder keeps the
// engine's list in step with the cluster's, as the inventory does with
// Nodes, so no request waits on an API call. The engine applies them after
// evaluation (engine.SetExceptions); docs/exceptions.md.
package exception

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/podgate/podgate/api/v1alpha1"
	"github.com/podgate/podgate/engine"
)

// GroupKind is the PolicyException's group and kind.
var GroupKind = schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: "PolicyException"}

// FromObject is what the engine applies of a PolicyException.
func FromObject(pe *v1alpha1.PolicyException) (engine.Exception, error) {
	ex := engine.Exception{
		Namespace: pe.Namespace,
		Name:      pe.Name,
		Rules:     pe.Spec.Rules,
		Kinds:     pe.Spec.Match.Kinds,
		Names:     pe.Spec.Match.Names,
		Reason:    pe.Spec.Reason,
	}
	if pe.Spec.Expires != nil {
		ex.Expires = pe.Spec.Expires.Time
	}
	if pe.Spec.Match.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(pe.Spec.Match.Selector)
		if err != nil {
			return ex, fmt.Errorf("PolicyException %s/%s: match.selector: %w", pe.Namespace, pe.Name, err)
		}
		ex.Selector = sel
	} else {
		ex.Selector = labels.Everything()
	}
	return ex, nil
}

// Decode reads a PolicyException from its JSON, as an admission request
// carries it.
func Decode(raw []byte) (*v1alpha1.PolicyException, error) {
	var pe v1alpha1.PolicyException
	if err := json.Unmarshal(raw, &pe); err != nil {
		return nil, fmt.Errorf("decode PolicyException: %w", err)
	}
	return &pe, nil
}
