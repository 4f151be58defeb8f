// Command chart-readme writes a Helm chart's README.md from its Chart.yaml and
// the comments of its values.yaml, so that the values' documentation has
// one source: the comment above each value. A value without a comment is
// an error, so every value stays documented.
//
//	go run ./hack/chart-readme charts/podgate          # rewrite README.md
//	go run ./hack/chart-readme -check charts/podgate   # fail if it is stale
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

func main() {
	check := flag.Bool("check", false, "do not write: fail if README.md is not what would be written")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: chart-readme [-check] CHART_DIR")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *check); err != nil {
		fmt.Fprintln(os.Stderr, "chart-readme:", err)
		os.Exit(1)
	}
}

func run(dir string, check bool) error {
	chart, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return err
	}
	values, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		return err
	}
	want, err := Generate(chart, values)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "README.md")
	if check {
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			return fmt.Errorf("%s is not up to date with values.yaml: run `make chart-readme`", path)
		}
		return nil
	}
	return os.WriteFile(path, want, 0o644)
}

// Generate returns the README of the chart with the given Chart.yaml and
// values.yaml.
func Generate(chartYAML, valuesYAML []byte) ([]byte, error) {
	var chart struct {
		Name        string `yaml:"name"`
		Description string `yaml:"description"`
		Version     string `yaml:"version"`
		AppVersion  string `yaml:"appVersion"`
		KubeVersion string `yaml:"kubeVersion"`
	}
	if err := yaml.Unmarshal(chartYAML, &chart); err != nil {
		return nil, fmt.Errorf("read Chart.yaml: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(valuesYAML, &doc); err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("values.yaml: not a mapping")
	}
	var rows []row
	if err := walk(doc.Content[0], "", &rows); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- Generated from values.yaml by `make chart-readme`; edit the comments there, not this file. -->\n")
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", chart.Name, chart.Description)
	fmt.Fprintf(&b, "Chart version %s, podgate %s, Kubernetes %s.\n\n", chart.Version, chart.AppVersion, chart.KubeVersion)
	b.WriteString("Installing, upgrading, uninstalling, and what to do when the webhook is down:\n")
	b.WriteString("[docs/install.md](../../docs/install.md).\n\n")
	b.WriteString("```sh\nhelm install podgate charts/podgate --namespace podgate-system --create-namespace\n```\n\n")
	b.WriteString("## Values\n\n| Key | Type | Default | Description |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.key, r.typ, r.def, r.doc)
	}
	return []byte(b.String()), nil
}

type row struct{ key, typ, def, doc string }

// walk adds a row for every value under m: leaves (scalars, lists, empty
// maps) with their default, and documented maps as headings of their keys.
func walk(m *yaml.Node, prefix string, rows *[]row) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := prefix + k.Value
		doc := comment(k.HeadComment)
		if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
			if doc != "" {
				*rows = append(*rows, row{key, "object", "", doc})
			}
			if err := walk(v, key+".", rows); err != nil {
				return err
			}
			continue
		}
		if doc == "" {
			return fmt.Errorf("values.yaml:%d: %s has no comment: document every value where it is set", k.Line, key)
		}
		def, err := inline(v)
		if err != nil {
			return fmt.Errorf("values.yaml:%d: %s: %w", k.Line, key, err)
		}
		*rows = append(*rows, row{key, typeOf(v), "`" + escape(def) + "`", doc})
	}
	return nil
}

// comment turns a head comment into one Markdown table cell.
func comment(c string) string {
	var lines []string
	for _, l := range strings.Split(c, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
		if l != "" {
			lines = append(lines, l)
		}
	}
	return escape(strings.Join(lines, " "))
}

func typeOf(v *yaml.Node) string {
	switch {
	case v.Kind == yaml.SequenceNode:
		return "list"
	case v.Kind == yaml.MappingNode:
		return "object"
	case v.Tag == "!!int":
		return "int"
	case v.Tag == "!!bool":
		return "bool"
	case v.Tag == "!!float":
		return "float"
	}
	return "string"
}

// inline renders a default value on one line, in YAML flow style.
func inline(v *yaml.Node) (string, error) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
		return fmt.Sprintf("%q", v.Value), nil
	}
	flow := *v
	flow.Style = yaml.FlowStyle
	flow.HeadComment, flow.LineComment, flow.FootComment = "", "", ""
	out, err := yaml.Marshal(&flow)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
