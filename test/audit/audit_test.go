package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	reportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"

	"github.com/podgate/podgate/test/cluster"
)

// The story of an operator who installs podgate into a running cluster:
// what was created before it is judged and reported, the reports follow
// fixes, deletions, Node changes and new policies, and of two replicas
// exactly one audits, the other taking over when it stops.
func TestAuditOfWorkloadsCreatedBeforePodgate(t *testing.T) {
	c := requireBed(t)
	ns := namespace(t, "shop")
	for _, f := range []string{"redis-pod.yaml", "deployment-max-unavailable-50.yaml", "pod-control-plane-toleration.yaml", "mysql-statefulset.yaml"} {
		kubectl(t, "apply", "-n", ns, "-f", filepath.Join("examples", f))
	}

	started := time.Now()
	first, err := c.StartWebhook(t.Context(), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.StartWebhook(t.Context(), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	webhooks := []*cluster.Webhook{first, second}

	t.Run("each object's report names the rules it breaks", func(t *testing.T) {
		want := map[string][][3]string{
			"pod-redis":         {{"stateful-volumes", "persistent-storage", "fail"}, {"probes", "required", "fail"}, {"rollout", "pinned-image", "warn"}},
			"deployment-web":    {{"rollout", "min-available", "fail"}, {"probes", "mutation", "warn"}},
			"pod-sneaky":        {{"tolerations", "control-plane", "fail"}},
			"statefulset-mysql": {{"probes", "mutation", "warn"}},
		}
		took := waitFor(t, 30*time.Second, "every report written", func() bool {
			for name, results := range want {
				for _, w := range results {
					if r := result(report(t, ns, name), w[0], w[1]); r == nil || string(r.Result) != w[2] {
						return false
					}
				}
			}
			return true
		})
		t.Logf("all four reports written %s after the webhooks started (%s after the wait began)", time.Since(started).Round(time.Millisecond), took.Round(time.Millisecond))
		for _, r := range report(t, ns, "statefulset-mysql").Results {
			if r.Result == "fail" {
				t.Errorf("the admitted mysql StatefulSet has a fail result: %+v", r)
			}
		}
	})

	t.Run("a report is scoped to and owned by its object, with kubectl's words", func(t *testing.T) {
		rep := report(t, ns, "pod-redis")
		var pod struct {
			Metadata struct{ UID string } `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(kubectl(t, "get", "pod", "-n", ns, "redis", "-o", "json")), &pod); err != nil {
			t.Fatal(err)
		}
		if rep.Source != "podgate" || rep.Scope == nil || rep.Scope.Kind != "Pod" || rep.Scope.APIVersion != "v1" ||
			rep.Scope.Namespace != ns || rep.Scope.Name != "redis" || string(rep.Scope.UID) != pod.Metadata.UID {
			t.Errorf("source %q, scope %+v", rep.Source, rep.Scope)
		}
		if len(rep.OwnerReferences) != 1 || string(rep.OwnerReferences[0].UID) != pod.Metadata.UID || rep.OwnerReferences[0].Kind != "Pod" {
			t.Errorf("owner references %+v", rep.OwnerReferences)
		}
		r := result(rep, "stateful-volumes", "persistent-storage")
		if !strings.HasPrefix(r.Description, "[stateful-volumes/persistent-storage] Pod "+ns+"/redis: ") ||
			!strings.Contains(r.Description, `"redis-storage"`) || r.Properties["enforcement"] != "deny" || r.Properties["field"] != "spec.volumes[0]" {
			t.Errorf("result %+v", r)
		}
		fails := 0
		for _, r := range rep.Results {
			if r.Result == "fail" {
				fails++
			}
		}
		if rep.Summary.Fail != fails || rep.Summary.Fail < 2 {
			t.Errorf("summary %+v for %d fail results", rep.Summary, fails)
		}
		out := kubectl(t, "get", "reports", "-n", ns)
		if !strings.Contains(out, "pod-redis") || !strings.Contains(out, "deployment-web") {
			t.Errorf("kubectl get reports:\n%s", out)
		}
	})

	leader, follower := first, second
	t.Run("only one process audits and writes reports", func(t *testing.T) {
		waitFor(t, 30*time.Second, "one leader", func() bool {
			return metric(t, first, "podgate_audit_leader", nil)+metric(t, second, "podgate_audit_leader", nil) == 1
		})
		if metric(t, second, "podgate_audit_leader", nil) == 1 {
			leader, follower = second, first
		}
		if w := metric(t, leader, "podgate_audit_report_writes_total", nil); w < 4 {
			t.Errorf("the leader wrote %v reports", w)
		}
		if w := metric(t, follower, "podgate_audit_report_writes_total", nil); w != 0 {
			t.Errorf("the follower wrote %v reports", w)
		}
		if v := metric(t, leader, "podgate_audit_violations", map[string]string{"policy": "rollout", "rule": "min-available", "enforcement": "deny"}); v != 1 {
			t.Errorf("podgate_audit_violations{rollout/min-available, deny} = %v, want 1", v)
		}
	})

	t.Run("podgate audit lists the same violations as the reports", func(t *testing.T) {
		fromReports := map[string]bool{}
		var list reportsv1alpha1.ReportList
		if err := reports.List(t.Context(), &list); err != nil {
			t.Fatal(err)
		}
		for _, rep := range list.Items {
			for _, r := range rep.Results {
				if r.Rule != "mutation" {
					fromReports[fmt.Sprintf("%s %s/%s %s/%s %s", rep.Scope.Kind, rep.Namespace, rep.Scope.Name, r.Policy, r.Rule, r.Properties["enforcement"])] = true
				}
			}
		}
		cmd := exec.Command(podgate, "audit", "-A", "-o", "json", "--policy-dir", policyDir)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig())
		out, err := cmd.Output()
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Fatalf("podgate audit -A exited %d (%v), want 1 (there are deny violations)\n%s", code, err, out)
		}
		var decisions []struct {
			Object     string `json:"object"`
			Violations []struct {
				Policy, Rule, Enforcement string
			} `json:"violations"`
		}
		if err := json.Unmarshal(out, &decisions); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		fromCLI := map[string]bool{}
		for _, d := range decisions {
			for _, v := range d.Violations {
				fromCLI[fmt.Sprintf("%s %s/%s %s", d.Object, v.Policy, v.Rule, v.Enforcement)] = true
			}
		}
		if !mapsEqual(fromReports, fromCLI) {
			t.Errorf("reports:\n%s\npodgate audit:\n%s", keys(fromReports), keys(fromCLI))
		}

		text := exec.Command(podgate, "audit", "-n", ns, "--warn-as-deny")
		text.Env = cmd.Env
		printed, _ := text.CombinedOutput()
		for _, want := range []string{
			"Pod " + ns + "/redis: would be denied",
			"deny     [rollout/pinned-image]", // a warn rule, counted as deny
			// Its replicas fit one node only: a placement warning, here a denial.
			"StatefulSet " + ns + "/mysql: would be denied", "counted as deny by --warn-as-deny",
			"mutation [probes] added readinessProbe",
			"POLICY/RULE", "stateful-volumes/persistent-storage",
		} {
			if !strings.Contains(string(printed), want) {
				t.Errorf("podgate audit -n %s --warn-as-deny does not print %q:\n%s", ns, want, printed)
			}
		}
	})

	t.Run("a rescan that finds nothing new writes nothing", func(t *testing.T) {
		writes := metric(t, leader, "podgate_audit_report_writes_total", nil)
		last := metric(t, leader, "podgate_audit_last_scan_timestamp_seconds", nil)
		// A label that no policy reads: the inventory changes, every
		// workload is judged again, and every answer is the same.
		kubectl(t, "label", "node", "worker-3", "podgate.dev/touched=yes")
		waitFor(t, 30*time.Second, "a rescan", func() bool {
			return metric(t, leader, "podgate_audit_last_scan_timestamp_seconds", nil) > last
		})
		if w := metric(t, leader, "podgate_audit_report_writes_total", nil); w != writes {
			t.Errorf("the rescan wrote %v reports", w-writes)
		}
	})

	t.Run("tainting the only node a deployment fits reports it unschedulable", func(t *testing.T) {
		kubectl(t, "taint", "node", "worker-1", "maintenance=planned:NoSchedule")
		took := waitFor(t, 30*time.Second, "tolerations/schedulable in the report", func() bool {
			return result(report(t, ns, "deployment-web"), "tolerations", "schedulable") != nil
		})
		t.Logf("reported %s after the taint", took.Round(time.Millisecond))
		msg := result(report(t, ns, "deployment-web"), "tolerations", "schedulable").Description
		if !strings.Contains(msg, "maintenance=planned:NoSchedule") {
			t.Errorf("message does not name the taint: %s", msg)
		}
		kubectl(t, "taint", "node", "worker-1", "maintenance=planned:NoSchedule-")
		waitFor(t, 30*time.Second, "tolerations/schedulable gone", func() bool {
			return result(report(t, ns, "deployment-web"), "tolerations", "schedulable") == nil
		})
	})

	t.Run("a custom policy added to the policy directory shows up in the reports", func(t *testing.T) {
		src, err := os.ReadFile(filepath.Join(c.Root(), "examples", "policies", "resources", "resources.rego"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(policyDir, "resources.rego"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "resources/* in the redis report", func() bool {
			rep := report(t, ns, "pod-redis")
			return rep != nil && slices.ContainsFunc(rep.Results, func(r reportsv1alpha1.ReportResult) bool { return r.Policy == "resources" })
		})
		if err := os.Remove(filepath.Join(policyDir, "resources.rego")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "resources/* gone again", func() bool {
			rep := report(t, ns, "pod-redis")
			return rep != nil && !slices.ContainsFunc(rep.Results, func(r reportsv1alpha1.ReportResult) bool { return r.Policy == "resources" })
		})
	})

	t.Run("fixing an object clears its result", func(t *testing.T) {
		fixed := strings.Replace(readExample(t, "deployment-max-unavailable-50.yaml"), "maxUnavailable: 50%", "maxUnavailable: 25%", 1)
		applyText(t, ns, fixed)
		waitFor(t, 30*time.Second, "rollout/min-available gone", func() bool {
			return result(report(t, ns, "deployment-web"), "rollout", "min-available") == nil
		})
		// The update did not touch the pod template, so podgate did not
		// inject the probes (it never starts a rollout by itself): they
		// are still pending.
		if result(report(t, ns, "deployment-web"), "probes", "mutation") == nil {
			t.Errorf("the pending probes left the report: %+v", report(t, ns, "deployment-web"))
		}
	})

	t.Run("deleting an object deletes its report", func(t *testing.T) {
		kubectl(t, "delete", "pod", "-n", ns, "redis", "--wait=true")
		waitFor(t, 30*time.Second, "pod-redis report deleted", func() bool { return report(t, ns, "pod-redis") == nil })
	})

	t.Run("an exception turns a failure into skip until it expires", func(t *testing.T) {
		expires := time.Now().Add(10 * time.Second).Truncate(time.Second)
		applyText(t, ns, fmt.Sprintf(`apiVersion: podgate.dev/v1alpha1
kind: PolicyException
metadata: {name: sneaky-cp}
spec:
  rules: [tolerations/control-plane]
  match: {kinds: [Pod], names: [sneaky]}
  expires: %q
  reason: "OPS-7: a week to move it to kube-system"
`, expires.UTC().Format(time.RFC3339)))
		waitFor(t, 10*time.Second, "the excepted result reported as skip", func() bool {
			r := result(report(t, ns, "pod-sneaky"), "tolerations", "control-plane")
			return r != nil && r.Result == "skip"
		})
		r := result(report(t, ns, "pod-sneaky"), "tolerations", "control-plane")
		if r.Properties["exception"] != ns+"/sneaky-cp" || r.Properties["expires"] != expires.UTC().Format(time.RFC3339) || r.Properties["enforcement"] != "deny" {
			t.Errorf("skip result properties %v", r.Properties)
		}
		time.Sleep(time.Until(expires))
		took := waitFor(t, 30*time.Second, "fail again after the expiry", func() bool {
			r := result(report(t, ns, "pod-sneaky"), "tolerations", "control-plane")
			return r != nil && r.Result == "fail"
		})
		t.Logf("reported fail again %s after the exception expired", took.Round(time.Millisecond))
	})

	t.Run("when the auditing process stops the other takes over", func(t *testing.T) {
		if err := leader.Stop(os.Stderr); err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, 60*time.Second, "the other process leads", func() bool {
			return metric(t, follower, "podgate_audit_leader", nil) == 1
		})
		t.Logf("took over %s after the leader stopped", took.Round(time.Millisecond))
		kubectl(t, "taint", "node", "worker-1", "maintenance=planned:NoSchedule")
		defer kubectl(t, "taint", "node", "worker-1", "maintenance=planned:NoSchedule-")
		waitFor(t, 30*time.Second, "the new leader reports the taint", func() bool {
			return result(report(t, ns, "statefulset-mysql"), "tolerations", "schedulable") != nil
		})
		if w := metric(t, follower, "podgate_audit_report_writes_total", nil); w < 1 {
			t.Errorf("the new leader wrote %v reports", w)
		}
	})

	t.Run("with no audit running, garbage collection deletes a report with its object", func(t *testing.T) {
		for _, w := range webhooks {
			if err := w.Stop(os.Stderr); err != nil {
				t.Fatal(err)
			}
		}
		if report(t, ns, "pod-sneaky") == nil {
			t.Fatal("no report of pod sneaky to begin with")
		}
		kubectl(t, "delete", "pod", "-n", ns, "sneaky", "--wait=true")
		waitFor(t, waitTimeout, "the garbage collector deletes pod-sneaky's report", func() bool { return report(t, ns, "pod-sneaky") == nil })
	})
}

func readExample(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(requireBed(t).Root(), "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func applyText(t *testing.T, ns, manifest string) {
	t.Helper()
	stdout, stderr, err := requireBed(t).Kubectl(t.Context(), strings.NewReader(manifest), "apply", "-n", ns, "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, stdout, stderr)
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, "  "+k)
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}
