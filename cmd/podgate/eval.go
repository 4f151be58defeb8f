package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/inventory"
	"github.com/podgate/podgate/policies"
)

type evalOptions struct {
	inputFlags
	old       string
	operation string
	output    string
}

func newEvalCommand() *cobra.Command {
	o := &evalOptions{}
	cmd := &cobra.Command{
		Use:   "eval -f FILE|DIR|- [flags]",
		Short: "Print what admission would do with each object: allowed or denied, every violation, the warnings, the mutation",
		Long: `Runs each object through podgate's mutating and then validating webhook logic,
exactly as the API server would call them. Exit code: 0 when every object is
admitted, 1 when one is denied, 2 for bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.operation, "operation", "", "CREATE or UPDATE (default: UPDATE with --old, else CREATE)")
	f.StringVar(&o.old, "old", "", "the objects as they are now, for an UPDATE (matched by kind, namespace and name)")
	f.StringVarP(&o.output, "output", "o", "text", "text, json or yaml")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

func (o *evalOptions) run(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
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
	docs, err := o.documents(stdin)
	if err != nil {
		return err
	}
	olds, err := o.oldObjects(stdin)
	if err != nil {
		return err
	}
	d := newDecider(eng, o.namespace)
	decisions := make([]decision, 0, len(docs))
	denied := 0
	for _, doc := range docs {
		old := olds[key(doc, o.namespace)]
		if o.old != "" && old == nil {
			return badInput("%s: %s is not in --old %s: an UPDATE needs the object as it is now", doc.where(), key(doc, o.namespace), o.old)
		}
		dec, err := d.decide(ctx, doc, old)
		if err != nil {
			return err
		}
		if !dec.Allowed {
			denied++
		}
		decisions = append(decisions, dec)
	}
	if err := printDecisions(stdout, o.output, decisions); err != nil {
		return err
	}
	if denied > 0 {
		return &exitError{exitFailed, fmt.Errorf("")}
	}
	return nil
}

func (o *evalOptions) oldObjects(stdin io.Reader) (map[string]*document, error) {
	olds := map[string]*document{}
	if o.old == "" {
		return olds, nil
	}
	docs, err := readDocuments(o.old, o.recursive, stdin)
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
	if err := eng.Load(ctx, engine.Sources{Builtin: policies.FS, PolicyDir: policyDir, ConfigFile: config}); err != nil {
		return nil, badInput("load policies: %v", err)
	}
	if nodesFile == "" {
		return eng, nil
	}
	raw, err := os.ReadFile(nodesFile)
	if err != nil {
		return nil, badInput("%v", err)
	}
	var list corev1.NodeList
	if err := yaml.Unmarshal(raw, &list); err != nil {
		return nil, badInput("%s: not a node list: %v", nodesFile, err)
	}
	if len(list.Items) == 0 {
		var node corev1.Node
		if err := yaml.Unmarshal(raw, &node); err == nil && node.Name != "" {
			list.Items = append(list.Items, node)
		}
	}
	nodes := make(map[string]engine.Node, len(list.Items))
	for i := range list.Items {
		nodes[list.Items[i].Name] = inventory.Facts(&list.Items[i])
	}
	if err := eng.SetNodes(ctx, nodes); err != nil {
		return nil, err
	}
	return eng, nil
}

func printDecisions(w io.Writer, format string, decisions []decision) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
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
	if !d.Allowed {
		verdict = "denied"
	}
	fmt.Fprintf(w, "%s: %s (%s#%d)\n", d.Object, verdict, d.Source, d.Index)
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
