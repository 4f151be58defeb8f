package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// registerWebhook creates the webhook configurations that send every
// workload kind podgate checks to the webhook, as the chart does.
func registerWebhook(ctx context.Context, c client.Client, w *webhook) error {
	defaults, err := engine.DefaultConfig(policies.FS)
	if err != nil {
		return err
	}
	mutating, validating := WebhookConfigurations("https://"+loopback(w.port), w.caPEM, defaults.ControllerUsers)
	for _, obj := range []client.Object{mutating, validating} {
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("register webhook: create %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return nil
}

// WebhookConfigurations are the MutatingWebhookConfiguration and the
// ValidatingWebhookConfiguration "podgate" that call the webhook at base
// (https://host:port) as the chart's do (webhook.url, failurePolicy Fail,
// controller users as given): for each path, the webhook that gets every
// request but the controllers' own writes and the restarts and image
// rollouts of existing workloads, and the one with failurePolicy Ignore
// that gets those rollouts (see conditions.go).
func WebhookConfigurations(base string, caPEM []byte, controllerUsers []string) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: webhookConfigName}}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: webhookConfigName}}
	for _, main := range []bool{true, false} {
		name, rules, conditions, policy := "rollouts.", rolloutRules(), rolloutConditions(), admissionregistrationv1.Ignore
		if main {
			name, rules, conditions, policy = "", workloadRules(), mainConditions(controllerUsers), admissionregistrationv1.Fail
		}
		mutating.Webhooks = append(mutating.Webhooks, admissionregistrationv1.MutatingWebhook{
			Name:                    name + "mutate.podgate.dev",
			ClientConfig:            clientConfig(base+"/mutate", caPEM),
			Rules:                   rules,
			MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
			NamespaceSelector:       namespaceSelector(),
			MatchConditions:         conditions,
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			FailurePolicy:           ptr.To(policy),
			TimeoutSeconds:          ptr.To[int32](10),
			// Other mutating webhooks may change the pod spec after us; run
			// again so the probes policy sees their result.
			ReinvocationPolicy: ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
		})
		validatingRules := rules
		if main {
			validatingRules = append(slices.Clone(rules), exceptionRule())
		}
		validating.Webhooks = append(validating.Webhooks, admissionregistrationv1.ValidatingWebhook{
			Name:                    name + "validate.podgate.dev",
			ClientConfig:            clientConfig(base+"/validate", caPEM),
			Rules:                   validatingRules,
			MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
			NamespaceSelector:       namespaceSelector(),
			MatchConditions:         conditions,
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			FailurePolicy:           ptr.To(policy),
			TimeoutSeconds:          ptr.To[int32](10),
		})
	}
	return mutating, validating
}

func clientConfig(url string, caPEM []byte) admissionregistrationv1.WebhookClientConfig {
	return admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM}
}

// workloadRules are the kinds the policies cover, on CREATE and UPDATE
// (docs/policies.md, "Common ground": Scope).
func workloadRules() []admissionregistrationv1.RuleWithOperations {
	rule := func(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{group},
				APIVersions: []string{"v1"},
				Resources:   resources,
				Scope:       ptr.To(admissionregistrationv1.NamespacedScope),
			},
		}
	}
	return []admissionregistrationv1.RuleWithOperations{
		rule("", "pods"),
		rule("apps", "deployments", "statefulsets", "daemonsets", "replicasets"),
		rule("batch", "jobs", "cronjobs"),
	}
}

// exceptionRule sends PolicyExceptions to the validating webhook, which
// checks them (docs/exceptions.md).
func exceptionRule() admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups:   []string{"podgate.dev"},
			APIVersions: []string{"v1alpha1"},
			Resources:   []string{"policyexceptions"},
			Scope:       ptr.To(admissionregistrationv1.NamespacedScope),
		},
	}
}

// rolloutRules are the requests a restart or an image rollout can be:
// UPDATEs of Deployments, StatefulSets and DaemonSets.
func rolloutRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups:   []string{"apps"},
			APIVersions: []string{"v1"},
			Resources:   []string{"deployments", "statefulsets", "daemonsets"},
			Scope:       ptr.To(admissionregistrationv1.NamespacedScope),
		},
	}}
}

// namespaceSelector leaves out the namespaces podgate excludes by default,
// as the chart does: their pods must start even when the webhook is down.
func namespaceSelector() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key:      corev1.LabelMetadataName,
		Operator: metav1.LabelSelectorOpNotIn,
		Values:   []string{metav1.NamespaceSystem, corev1.NamespaceNodeLease},
	}}}
}

// validateMetric counts the webhook's admission requests by webhook path.
const validateMetric = "podgate_admission_requests_total"

// waitWired dry-runs the creation of a Pod that the probes policy mutates
// until the answer carries the injected readiness probe and the webhook's
// metrics count a validation: then the API server calls both webhooks. (It
// watches the two kinds of configuration separately, so one being in use
// says nothing of the other.)
func waitWired(ctx context.Context, c client.Client, w *webhook) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, pollInterval, webhookWiredTimeout, true, func(ctx context.Context) (bool, error) {
		pod := wiringPod()
		if last = c.Create(ctx, pod, client.DryRunAll); last != nil {
			return false, nil
		}
		if pod.Spec.Containers[0].ReadinessProbe == nil {
			last = errors.New("the dry-run Pod came back without a readinessProbe: /mutate not called")
			return false, nil
		}
		if last = w.validateCounted(ctx); last != nil {
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for the API server to call the webhook (last: %v; log %s): %w", last, w.logPath, err)
	}
	return nil
}

// wiringPod has a TCP containerPort and no probes: the probes policy adds a
// tcpSocket readiness probe on that port.
func wiringPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "podgate-wiring", Namespace: metav1.NamespaceDefault},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "app",
			Image: "registry.k8s.io/pause:3.10",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
		}}},
	}
}

// validateCounted checks the webhook's metrics for a request to /validate.
func (w *webhook) validateCounted(ctx context.Context) error {
	body, err := getText(ctx, w.metricsURL())
	if err != nil {
		return err
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, validateMetric+"{") && strings.Contains(line, `webhook="validate"`) {
			return nil
		}
	}
	return fmt.Errorf("/validate not called: no %s{webhook=\"validate\"} in %s", validateMetric, w.metricsURL())
}
