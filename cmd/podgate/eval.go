package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/podgate/podgate/engine"
)

type evalOptions struct {
	inputFlags
	old          string
	operation    string
	output       string
	exceptions   string
	profile      bool
	profileLimit int
}

func newEvalCommand() *cobra.Command {
	o := &evalOptions{}
	cmd := &cobra.Command{
		Use:   "eval -f FILE|DIR|- [flags]",
		Short: "Print what admission would do with each object: allowed or denied, every violation, the warnings, the mutation",
		Long: `Runs each object through podgate's mutating and then validating webhook logic,
exactly as the API server would call them, as a user that is not a controller
(podgate-eval): an object that names a controller owner is judged like any
other. Objects of kinds podgate does not check (a Service, a ConfigMap, a
custom resource) are reported as not checked, as the webhooks never see them.
Objects are numbered in each file from 1; each item of a List counts.

` + exitCodes,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.operation, "operation", "", "CREATE or UPDATE (default: UPDATE with --old, else CREATE)")
	f.StringVar(&o.old, "old", "", "the objects as they are now, for an UPDATE (matched by kind, namespace and name)")
	f.StringVar(&o.exceptions, "exceptions", "", "PolicyExceptions (podgate.dev/v1alpha1) to apply, as the webhook applies the cluster's: a file or a directory")
	f.StringVarP(&o.output, "output", "o", "text", "text, json or yaml")
	f.BoolVar(&o.profile, "profile", false, "print to standard error the Rego expressions that cost the most, as opa eval --profile does: where each is, how often it was evaluated and the time in it")
	f.IntVar(&o.profileLimit, "profile-limit", 20, "how many expressions --profile prints (0 for all)")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

func (o *evalOptions) run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	if o.output != "text" && o.output != "json" && o.output != "yaml" {
		return badInput("--output %q: want text, json or yaml", o.output)
	}
	switch {
	case o.operation == "" || o.operation == "CREATE" && o.old == "" || o.operation == "UPDATE" && o.old != "":
	case o.operation == "UPDATE":
		return badInput("--operation UPDATE needs --old: the objects as they are now")
	case o.operation == "CREATE":
		return badInput("--old is for --operation UPDATE")
	default:
		return badInput("--operation %q: want CREATE or UPDATE", o.operation)
	}
	eng, err := loadEngine(ctx, o.policyDir, o.config, o.nodes)
	if err != nil {
		return err
	}
	if o.exceptions != "" {
		list, err := readExceptions(o.exceptions, o.namespace)
		if err != nil {
			return err
		}
		if err := setExceptions(eng, list, stderr); err != nil {
			return err
		}
	}
	docs, err := o.documents(stdin, stderr)
	if err != nil {
		return err
	}
	olds, err := o.oldObjects(stdin, stderr)
	if err != nil {
		return err
	}
	var profile *engine.Profile
	if o.profile {
		profile = engine.NewProfile()
		ctx = engine.WithProfile(ctx, profile)
	}
	d := newDecider(eng, o.namespace)
	decisions := make([]decision, 0, len(docs))
	for _, doc := range docs {
		old := olds[key(doc, o.namespace)]
		if o.old != "" && old == nil && doc.Unchecked == "" {
			return badInput("%s: %s is not in --old %s: an UPDATE needs the object as it is now", doc.where(), key(doc, o.namespace), o.old)
		}
		decisions = append(decisions, d.decide(ctx, doc, old))
	}
	if err := printDecisions(stdout, o.output, decisions); err != nil {
		return err
	}
	if profile != nil {
		printProfile(stderr, eng, profile, len(decisions), o.profileLimit)
	}
	return silent(verdict(decisions))
}

func (o *evalOptions) oldObjects(stdin io.Reader, stderr io.Writer) (map[string]*document, error) {
	olds := map[string]*document{}
	if o.old == "" {
		return olds, nil
	}
	docs, err := readDocuments(o.old, o.recursive, stdin, stderr)
	if err != nil {
		return nil, err
	}
	for i := range docs {
		olds[key(docs[i], o.namespace)] = &docs[i]
	}
	return olds, nil
}

func key(d document, defaultNs string) string {
	ns := d.Ns
	if ns == "" {
		ns = defaultNs
	}
	return d.GVK.String() + "/" + ns + "/" + d.Name
}

// loadEngine compiles the policy set as the webhook would and loads the
// Node inventory from a `kubectl get nodes -o yaml` file.
func loadEngine(ctx context.Context, policyDir, config, nodesFile string) (*engine.Engine, error) {
	eng := engine.New()
	if err := eng.Load(ctx, policySources(policyDir, config)); err != nil {
		return nil, badInput("load policies: %v", err)
	}
	if nodesFile == "" {
		return eng, nil
	}
	nodes, err := readNodes(nodesFile)
	if err != nil {
		return nil, err
	}
	if err := eng.SetNodes(ctx, nodes); err != nil {
		return nil, err
	}
	return eng, nil
}

// printDecisions writes decisions as text, JSON or YAML. JSON keeps < and >
// as they are: messages quote "<port>:<path>" and are read by people.
func printDecisions(w io.Writer, format string, decisions []decision) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(decisions)
	case "yaml":
		raw, err := yaml.Marshal(decisions)
		if err != nil {
			return err
		}
		_, err = w.Write(raw)
		return err
	}
	for _, d := range decisions {
		printText(w, d)
	}
	return nil
}

func printText(w io.Writer, d decision) {
	verdict := "admitted"
	switch {
	case d.Error != "":
		verdict = "not evaluated"
	case !d.Allowed:
		verdict = "denied"
	case d.Skipped != "":
		verdict = "not checked"
	}
	where := ""
	if d.Source != "" {
		where = fmt.Sprintf(" (%s#%d)", d.Source, d.Index)
	}
	fmt.Fprintf(w, "%s: %s%s\n", d.Object, verdict, where)
	if d.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", d.Error)
	}
	if d.Skipped != "" {
		fmt.Fprintf(w, "  not checked: %s\n", d.Skipped)
	}
	for _, v := range d.Violations {
		fmt.Fprintf(w, "  %-6s [%s/%s] %s\n", v.Enforcement, v.Policy, v.Rule, v.Message)
		if v.Field != "" {
			fmt.Fprintf(w, "         field: %s\n", v.Field)
		}
	}
	if len(d.Mutated) > 0 {
		fmt.Fprintf(w, "  mutated:\n%s", indent(diff(d.original, d.Mutated, fmt.Sprintf("%s#%d", d.Source, d.Index)), "    "))
	}
}

// diff is a unified diff of two objects as YAML.
func diff(before, after []byte, name string) string {
	a, _ := yaml.JSONToYAML(before)
	b, _ := yaml.JSONToYAML(after)
	text, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(a)), B: difflib.SplitLines(string(b)),
		FromFile: name, ToFile: "mutated", Context: 2,
	})
	return text
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// printProfile writes the costliest expressions of the evaluations, most
// time first. An expression's time includes what it calls and, in Rego,
// the rest of its rule evaluated with each value it binds.
func printProfile(w io.Writer, eng *engine.Engine, p *engine.Profile, objects, limit int) {
	lines := p.Lines()
	total := 0
	for _, l := range lines {
		total += l.Evaluations
	}
	fmt.Fprintf(w, "profile: %s, %s, %s\n", counted(objects, "object"), counted(p.Queries(), "policy evaluation"), counted(total, "expression evaluation"))
	if limit > 0 && len(lines) > limit {
		lines = lines[:limit]
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "time\tevaluations\t\twhere")
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t%d\t\t%s:%d  %s\n", time.Duration(l.TimeNs).Round(time.Microsecond), l.Evaluations, l.File, l.Row, eng.SourceLine(l.File, l.Row))
	}
	_ = tw.Flush()
}

// counted is "1 object" or "2 objects".
func counted(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
