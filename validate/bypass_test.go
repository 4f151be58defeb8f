package validate

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podgate/podgate/internal/testenv"
)

// bypassAttempts are labels and annotations a user might put on a workload
// to get past podgate: the one opt-out podgate knows (which counts only
// when the config allows it, and the default does not), and names that
// sound like switches for each policy and rule. The probes.podgate.dev
// annotations that name a probe are not here: they choose the probe the
// mutating webhook injects, which is what satisfies the probe rule, and
// have cases of their own.
func bypassAttempts() map[string]string {
	m := map[string]string{
		"podgate.dev/stateful":    "false",
		"podgate.dev/skip":        "true",
		"podgate.dev/ignore":      "true",
		"podgate.dev/enforcement": "off",
		"podgate.dev/enabled":     "false",
		"podgate.dev/exclude":     "true",
		"podgate.dev/bypass":      "true",
		"podgate.dev/dry-run":     "true",
		"podgate.dev/policies":    "off",
		"probes.podgate.dev/skip": "true",
		"probes.podgate.dev/none": "true",
	}
	for policy, rules := range map[string][]string{
		"probes":           {"required", "valid"},
		"stateful-volumes": {"persistent-storage"},
		"tolerations":      {"control-plane", "schedulable"},
		"rollout":          {"max-unavailable", "revision-history"},
	} {
		m["podgate.dev/"+policy] = "off"
		for _, r := range rules {
			m["podgate.dev/"+policy+"."+r] = "off"
		}
	}
	return m
}

// withMetadata adds labels and annotations to the object's metadata and to
// every Pod template in it.
func withMetadata(t *testing.T, raw []byte, kv map[string]string) []byte {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	add := func(m map[string]any) {
		meta, _ := m["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			m["metadata"] = meta
		}
		for _, field := range []string{"labels", "annotations"} {
			set, _ := meta[field].(map[string]any)
			if set == nil {
				set = map[string]any{}
				meta[field] = set
			}
			for k, v := range kv {
				// A label the workload already has is the user's own
				// choice (podgate.dev/stateful: "true" opts in); the
				// attempt is to add switches, not to undo an opt-in.
				if _, ok := set[k]; !ok {
					set[k] = v
				}
			}
		}
	}
	add(obj)
	spec, _ := obj["spec"].(map[string]any)
	if tmpl, ok := spec["template"].(map[string]any); ok {
		add(tmpl)
	}
	if job, ok := spec["jobTemplate"].(map[string]any); ok {
		if jspec, ok := job["spec"].(map[string]any); ok {
			if tmpl, ok := jspec["template"].(map[string]any); ok {
				add(tmpl)
			}
		}
	}
	out, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every testdata case that is denied stays denied, for every rule that
// denied it, whatever labels and annotations the user adds: only an admin's
// config (excluded namespaces, a rule turned off, allowOptOut) lets a
// workload past a deny rule.
func TestLabelsAndAnnotationsCannotSwitchOffADeny(t *testing.T) {
	attempts := bypassAttempts()
	denied := 0
	for _, c := range testenv.Cases(t) {
		eng := testenv.Engine(t, "")
		if err := eng.SetNodes(t.Context(), testenv.Nodes(t, c)); err != nil {
			t.Fatal(err)
		}
		h := &Handler{Engine: eng, Log: logr.Discard()}
		before := h.Handle(t.Context(), testenv.Request(t, c.Operation, c.Namespace, c.Object, c.OldObject))
		if before.Allowed {
			continue
		}
		denied++
		after := h.Handle(t.Context(), testenv.Request(t, c.Operation, c.Namespace, withMetadata(t, c.Object, attempts), c.OldObject))
		if after.Allowed {
			t.Errorf("%s/%s: denied as written, admitted with bypass labels and annotations (warnings %q)", c.Policy, c.Name, after.Warnings)
			continue
		}
		gone := slices.DeleteFunc(deniedRules(before), func(r string) bool { return slices.Contains(deniedRules(after), r) })
		if len(gone) > 0 {
			t.Errorf("%s/%s: labels and annotations switched off %v:\n%s", c.Policy, c.Name, gone, after.Result.Message)
		}
	}
	if denied < 10 {
		t.Fatalf("only %d testdata cases are denied; the property is not being tested", denied)
	}
	t.Logf("%d denied cases stay denied with %d bypass labels and annotations", denied, len(attempts))
}

var ruleRef = regexp.MustCompile(`^\[([a-z0-9-]+)/([a-z0-9-]+)\] `)

// deniedRules is "policy/rule" of every line of a denial, as kubectl
// prints it.
func deniedRules(resp admission.Response) []string {
	if resp.Allowed || resp.Result == nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(resp.Result.Message, "\n") {
		if m := ruleRef.FindStringSubmatch(l); m != nil {
			out = append(out, m[1]+"/"+m[2])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
