package chart

import (
	"strings"
	"testing"
	"unicode"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
	"github.com/podgate/podgate/test/cluster"
)

// The real-cluster tests (test/e2e, test/sim, the demo) register podgate
// with test/cluster's webhook configurations, not the chart's: they must
// be the same, or what those tests prove about the matchConditions (the
// controllers' writes go on while podgate is down) would not hold for the
// chart.
func TestTheChartsWebhooksAreThoseTheClusterTestsRegister(t *testing.T) {
	defaults, err := engine.DefaultConfig(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	wantM, wantV := cluster.WebhookConfigurations("https://127.0.0.1:9443", nil, defaults.ControllerUsers)
	objs := decode(t, render(t, requireHelms(t)["helm4"], values{"webhook": values{"url": "https://127.0.0.1:9443"}, "tls": values{"mode": "self"}}))
	gotM, gotV := webhookConfigurations(t, objs)
	if len(gotM.Webhooks) != len(wantM.Webhooks) || len(gotV.Webhooks) != len(wantV.Webhooks) {
		t.Fatalf("the chart renders %d and %d webhooks, test/cluster registers %d and %d", len(gotM.Webhooks), len(gotV.Webhooks), len(wantM.Webhooks), len(wantV.Webhooks))
	}
	for i := range wantM.Webhooks {
		g, w := gotM.Webhooks[i], wantM.Webhooks[i]
		compare(t, g.Name, w.Name, g.Rules, w.Rules, g.MatchConditions, w.MatchConditions, *g.FailurePolicy, *w.FailurePolicy)
		if *g.ClientConfig.URL != *w.ClientConfig.URL || *g.ReinvocationPolicy != *w.ReinvocationPolicy || *g.MatchPolicy != *w.MatchPolicy {
			t.Errorf("%s: url %s, reinvocation %s, matchPolicy %s; test/cluster has %s, %s, %s", g.Name,
				*g.ClientConfig.URL, *g.ReinvocationPolicy, *g.MatchPolicy, *w.ClientConfig.URL, *w.ReinvocationPolicy, *w.MatchPolicy)
		}
	}
	for i := range wantV.Webhooks {
		g, w := gotV.Webhooks[i], wantV.Webhooks[i]
		compare(t, g.Name, w.Name, g.Rules, w.Rules, g.MatchConditions, w.MatchConditions, *g.FailurePolicy, *w.FailurePolicy)
	}
}

func compare(t *testing.T, gotName, wantName string, gotRules, wantRules []admissionregistrationv1.RuleWithOperations,
	gotConds, wantConds []admissionregistrationv1.MatchCondition, gotPolicy, wantPolicy admissionregistrationv1.FailurePolicyType) {
	t.Helper()
	if gotName != wantName || gotPolicy != wantPolicy {
		t.Errorf("webhook %s (failurePolicy %s), test/cluster has %s (%s)", gotName, gotPolicy, wantName, wantPolicy)
	}
	if len(gotRules) != len(wantRules) {
		t.Errorf("%s: %d rules, test/cluster has %d", gotName, len(gotRules), len(wantRules))
	}
	for i := range min(len(gotRules), len(wantRules)) {
		g, w := gotRules[i], wantRules[i]
		if strings.Join(g.APIGroups, ",") != strings.Join(w.APIGroups, ",") || strings.Join(g.Resources, ",") != strings.Join(w.Resources, ",") ||
			len(g.Operations) != len(w.Operations) {
			t.Errorf("%s: rule %+v, test/cluster has %+v", gotName, g, w)
		}
	}
	if len(gotConds) != len(wantConds) {
		t.Fatalf("%s: matchConditions %+v, test/cluster has %+v", gotName, gotConds, wantConds)
	}
	for i := range gotConds {
		if gotConds[i].Name != wantConds[i].Name || squeeze(gotConds[i].Expression) != squeeze(wantConds[i].Expression) {
			t.Errorf("%s: matchCondition %s:\n%s\ntest/cluster has %s:\n%s", gotName, gotConds[i].Name, gotConds[i].Expression, wantConds[i].Name, wantConds[i].Expression)
		}
	}
}

// squeeze drops the whitespace of a CEL expression: the chart folds it
// over lines, test/cluster writes it on one.
func squeeze(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}
