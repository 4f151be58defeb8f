package engine_test

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// A DaemonSet that tolerates the control-plane taint outside kube-system,
// as node-exporter must.
var nodeExporter = &engine.Request{
	UID: "1", Operation: "CREATE", Namespace: "monitoring", Name: "node-exporter",
	Kind: engine.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	Object: []byte(`{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"node-exporter","namespace":"monitoring","labels":{"app":"node-exporter"}},
	"spec":{"template":{"metadata":{"labels":{"app":"node-exporter"}},"spec":{
	"tolerations":[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists","effect":"NoSchedule"}],
	"containers":[{"name":"node-exporter","image":"quay.io/prometheus/node-exporter:v1.8.2","ports":[{"containerPort":9100}]}]}}}}`),
}

func exception(mod func(*engine.Exception)) engine.Exception {
	ex := engine.Exception{
		Namespace: "monitoring", Name: "node-exporter-cp", Rules: []string{"tolerations/control-plane"},
		Kinds: []string{"DaemonSet"}, Names: []string{"node-*"},
		Expires: time.Now().Add(time.Hour), Reason: "OPS-123: node metrics from every node, approved by the platform team",
	}
	if mod != nil {
		mod(&ex)
	}
	return ex
}

func controlPlane(t *testing.T, eng *engine.Engine) engine.Violation {
	t.Helper()
	d, err := eng.Decide(t.Context(), nodeExporter)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range d.Violations {
		if v.Policy == "tolerations" && v.Rule == "control-plane" {
			return v
		}
	}
	t.Fatal("no tolerations/control-plane violation")
	return engine.Violation{}
}

func TestAMatchingExceptionTurnsADenyIntoAWarningThatNamesIt(t *testing.T) {
	eng := loaded(t, "")
	if v := controlPlane(t, eng); v.Enforcement != engine.Deny || v.Exception != nil {
		t.Fatalf("without an exception: %+v", v)
	}
	ex := exception(nil)
	eng.SetExceptions([]engine.Exception{ex})
	v := controlPlane(t, eng)
	want := "(excepted by PolicyException monitoring/node-exporter-cp until " + ex.Expires.UTC().Format(time.DateOnly) + ": OPS-123: node metrics from every node, approved by the platform team)"
	if v.Enforcement != engine.Warn || v.Exception == nil || v.Exception.Enforcement != engine.Deny || !strings.HasSuffix(v.Message, want) {
		t.Fatalf("excepted violation: %+v", v)
	}
}

func TestAnExceptionThatDoesNotMatchChangesNothing(t *testing.T) {
	eng := loaded(t, "")
	for name, mod := range map[string]func(*engine.Exception){
		"expired a second ago":   func(e *engine.Exception) { e.Expires = time.Now().Add(-time.Second) },
		"in another namespace":   func(e *engine.Exception) { e.Namespace = "default" },
		"for another rule":       func(e *engine.Exception) { e.Rules = []string{"probes/*"} },
		"for another kind":       func(e *engine.Exception) { e.Kinds = []string{"Deployment"} },
		"for another name":       func(e *engine.Exception) { e.Names = []string{"kube-state-*"} },
		"for other labels":       func(e *engine.Exception) { e.Selector = labels.SelectorFromSet(labels.Set{"app": "other"}) },
		"with every field wrong": func(e *engine.Exception) { e.Namespace, e.Rules = "x", []string{"rollout/*"} },
	} {
		eng.SetExceptions([]engine.Exception{exception(mod)})
		if v := controlPlane(t, eng); v.Enforcement != engine.Deny || v.Exception != nil {
			t.Errorf("an exception %s applied: %+v", name, v)
		}
	}
	eng.SetExceptions([]engine.Exception{exception(func(e *engine.Exception) {
		e.Rules, e.Kinds, e.Names = []string{"tolerations/*"}, nil, nil
		e.Selector = labels.SelectorFromSet(labels.Set{"app": "node-exporter"})
	})})
	if v := controlPlane(t, eng); v.Exception == nil {
		t.Error("policy/* with a matching selector did not apply")
	}
}

func TestConfigCanTurnExceptionsOffOrPutARuleOutOfTheirReach(t *testing.T) {
	for name, cfg := range map[string]string{
		"off":          "exceptions: {enabled: false}\n",
		"never except": "exceptions: {neverExcept: [tolerations/control-plane]}\n",
	} {
		eng := loaded(t, cfg)
		eng.SetExceptions([]engine.Exception{exception(nil)})
		if v := controlPlane(t, eng); v.Exception != nil || v.Enforcement != engine.Deny {
			t.Errorf("%s: the exception applied: %+v", name, v)
		}
		problems, err := eng.CheckException(exception(nil), time.Now())
		if err != nil || problems == "" {
			t.Errorf("%s: CheckException found nothing wrong (%v)", name, err)
		}
	}
	dir := t.TempDir()
	if err := engine.New().Load(t.Context(), engine.Sources{Builtin: policies.FS,
		ConfigFile: write(t, dir, "c.yaml", "exceptions: {neverExcept: [tolerations/controlplane]}\n")}); err == nil ||
		!strings.Contains(err.Error(), "exceptions.neverExcept: rule tolerations/controlplane: policy tolerations has no rule controlplane") {
		t.Errorf("a misspelt neverExcept rule: %v", err)
	}
}

func TestCheckExceptionSaysWhatIsWrong(t *testing.T) {
	eng := loaded(t, "")
	now := time.Now()
	for name, c := range map[string]struct {
		mod  func(*engine.Exception)
		want string
	}{
		"an unknown policy":     {func(e *engine.Exception) { e.Rules = []string{"toleration/control-plane"} }, "no policy toleration is loaded; the policies: "},
		"an unknown rule":       {func(e *engine.Exception) { e.Rules = []string{"tolerations/controlplane"} }, "policy tolerations has no rule controlplane; its rules: "},
		"an expiry in the past": {func(e *engine.Exception) { e.Expires = now.Add(-time.Minute) }, "is already past"},
		"an expiry too far":     {func(e *engine.Exception) { e.Expires = now.Add(100 * 24 * time.Hour) }, "is more than 90 days from now (exceptions.maxDuration)"},
		"no expiry":             {func(e *engine.Exception) { e.Expires = time.Time{} }, "expires is required (exceptions.requireExpiry)"},
	} {
		problems, err := eng.CheckException(exception(c.mod), now)
		if err != nil || !strings.Contains(problems, c.want) {
			t.Errorf("%s: %q (%v), want it to say %q", name, problems, err, c.want)
		}
	}
	if problems, _ := eng.CheckException(exception(nil), now); problems != "" {
		t.Errorf("a good exception: %s", problems)
	}
}

func loaded(t *testing.T, config string) *engine.Engine {
	t.Helper()
	src := engine.Sources{Builtin: policies.FS}
	if config != "" {
		src.ConfigFile = write(t, t.TempDir(), "config.yaml", config)
	}
	eng := engine.New()
	if err := eng.Load(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	return eng
}
