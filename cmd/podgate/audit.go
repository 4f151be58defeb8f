package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/audit"
	"github.com/podgate/podgate/engine"
)

type auditOptions struct {
	cluster       clusterFlags
	allNamespaces bool
	policyDir     string
	config        string
	output        string
	warnAsDeny    bool
}

func newAuditCommand() *cobra.Command {
	o := &auditOptions{}
	cmd := &cobra.Command{
		Use:   "audit [-n NAMESPACE | -A] [flags]",
		Short: "Judge every workload of a live cluster as admission would, and print what breaks a policy",
		Long: `Lists the workloads of a cluster (Pods and ReplicaSets and Jobs that no
controller owns; Deployments, StatefulSets, DaemonSets, CronJobs) and judges each
as podgate's background audit does: as a new admission of the object as stored,
mutation first, with the cluster's real Nodes and PolicyExceptions. Prints every
violation (an excepted one names its exception) and every
pending mutation (what the next apply would change, e.g. a probe to inject),
then a summary per policy and rule. The policies and config are the built-in
ones unless --policy-dir and --config say otherwise.

--warn-as-deny shows what enforcing the warn rules would hit: their violations
count as deny. Exit code: 0 when nothing would be denied, 1 when something
would, 2 for bad input or an unreachable cluster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	o.cluster.addFlags(f)
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "audit every namespace")
	f.StringVar(&o.policyDir, "policy-dir", "", "directory of custom policies, loaded next to the built-in ones")
	f.StringVar(&o.config, "config", "", "podgate config file (data.podgate.config)")
	f.StringVarP(&o.output, "output", "o", "text", "text, json or yaml")
	f.BoolVar(&o.warnAsDeny, "warn-as-deny", false, "count warn violations as deny: what would enforcing them hit?")
	return cmd
}

func (o *auditOptions) run(ctx context.Context, w, stderr io.Writer) error {
	if o.output != "text" && o.output != "json" && o.output != "yaml" {
		return badInput("--output %q: want text, json or yaml", o.output)
	}
	c, namespace, err := o.cluster.client()
	if err != nil {
		return err
	}
	if o.allNamespaces {
		namespace = ""
	}
	eng, err := loadEngine(ctx, o.policyDir, o.config, "")
	if err != nil {
		return err
	}
	if err := loadNodes(ctx, c, eng); err != nil {
		return err
	}
	exceptions, err := clusterExceptions(ctx, c, stderr)
	if err != nil {
		return err
	}
	eng.SetExceptions(exceptions)
	decisions, err := o.judgeAll(ctx, c, eng, namespace)
	if err != nil {
		return err
	}
	if o.output != "text" {
		if err := printDecisions(w, o.output, decisions); err != nil {
			return err
		}
	} else {
		o.printText(w, decisions)
	}
	return silent(verdict(decisions)) // the exit codes of eval (exit.go)
}

// judgeAll judges every audited object of namespace ("" for all) and
// returns the decisions of those with a finding.
func (o *auditOptions) judgeAll(ctx context.Context, c client.Client, eng *engine.Engine, namespace string) ([]decision, error) {
	var out []decision
	for _, k := range audit.Kinds {
		list := k.NewList()
		if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
			return nil, failed("list %s: %v", k.GVK.Kind, err)
		}
		for _, obj := range audit.Items(list) {
			if !k.InScope(obj) {
				continue
			}
			dec, err := audit.Judge(ctx, eng, k, obj)
			if err != nil {
				return nil, failed("%s %s/%s: %v", k.GVK.Kind, obj.GetNamespace(), obj.GetName(), err)
			}
			if o.warnAsDeny {
				warnAsDeny(dec)
			}
			d := decision{Source: "cluster", Index: len(out) + 1, Violations: []engine.Violation{}}
			if err := d.set(dec); err != nil {
				return nil, failed("%s: %v", dec.Object, err)
			}
			if len(d.Violations) > 0 || len(d.Mutations) > 0 {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// warnAsDeny turns the warn violations of d into denials, marked so.
func warnAsDeny(d *engine.Decision) {
	for i, v := range d.Violations {
		if v.Enforcement == engine.Warn {
			d.Violations[i].Enforcement = engine.Deny
			d.Violations[i].Message += " (a warn rule, counted as deny by --warn-as-deny)"
		}
	}
}

func (o *auditOptions) printText(w io.Writer, decisions []decision) {
	type row struct{ policy, rule string }
	counts := map[row]map[string]int{}
	count := func(policy, rule, what string) {
		r := row{policy, rule}
		if counts[r] == nil {
			counts[r] = map[string]int{}
		}
		counts[r][what]++
	}
	for _, d := range decisions {
		verdict := "would be admitted"
		if !d.Allowed {
			verdict = "would be denied"
		}
		fmt.Fprintf(w, "%s: %s\n", d.Object, verdict)
		for _, v := range d.Violations {
			fmt.Fprintf(w, "  %-8s [%s/%s] %s\n", v.Enforcement, v.Policy, v.Rule, v.Message)
			if v.Field != "" {
				fmt.Fprintf(w, "           field: %s\n", v.Field)
			}
			count(v.Policy, v.Rule, string(v.Enforcement))
		}
		for _, m := range d.Mutations {
			fmt.Fprintf(w, "  %-8s [%s] %s\n", "mutation", m.Policy, m.Message)
			count(m.Policy, audit.MutationRule, "mutation")
		}
	}
	if len(decisions) == 0 {
		fmt.Fprintln(w, "No workload breaks a policy; no mutation is pending.")
		return
	}
	fmt.Fprintf(w, "\n%d workloads with findings. By policy and rule:\n", len(decisions))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY/RULE\tDENY\tWARN\tDRYRUN\tMUTATION")
	rows := slices.SortedFunc(maps.Keys(counts), func(a, b row) int {
		return cmp.Or(cmp.Compare(a.policy, b.policy), cmp.Compare(a.rule, b.rule))
	})
	for _, r := range rows {
		c := counts[r]
		fmt.Fprintf(tw, "%s/%s\t%d\t%d\t%d\t%d\n", r.policy, r.rule, c["deny"], c["warn"], c["dryrun"], c["mutation"])
	}
	_ = tw.Flush()
}
