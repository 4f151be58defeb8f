package explain

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes the explanations for a terminal: per object its name,
// the answer, a table of every node and podgate's findings, then once what
// the scores are and what they leave out.
func WriteText(w io.Writer, xs []*Explanation) error {
	for i, x := range xs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		where := ""
		if x.Source != "" {
			where = fmt.Sprintf(" (%s#%d)", x.Source, x.Index)
		}
		fmt.Fprintf(w, "%s%s\n%s\n\n", x.Object, where, x.Answer)
		if err := writeTable(w, x.Nodes); err != nil {
			return err
		}
		if len(x.Findings) > 0 {
			fmt.Fprintln(w, "\npodgate says:")
			for _, f := range x.Findings {
				fmt.Fprintf(w, "  %s\n", f)
			}
		}
	}
	if len(xs) == 0 {
		return nil
	}
	var skipped []string
	for _, p := range NotModelled {
		skipped = append(skipped, fmt.Sprintf("%s (%s)", p.Name, p.What))
	}
	_, err := fmt.Fprintf(w, "\nSCORE is kube-scheduler's default profile restricted to the scores that depend only on the pod and the node: "+
		"3 x TaintToleration (100 less 100 x the node's PreferNoSchedule taints the pod does not tolerate / the most on a node that fits) "+
		"+ 2 x NodeAffinity (100 x the weights of the preferred node affinity terms the node matches / the most on a node that fits).\n"+
		"Not modelled: %s.\n", strings.Join(skipped, ", "))
	return err
}

// writeTable writes one row per node, and one more per further reason of
// a node that does not fit; the padding of empty cells at the end of a row
// is cut off.
func writeTable(w io.Writer, nodes []Node) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  RANK\tNODE\tSCORE\tTaintToleration x3\tNodeAffinity x2\tWHY NOT")
	for _, n := range nodes {
		if n.Fits {
			taints, affinity := n.Scores[0], n.Scores[1]
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%d (%s)\t%d (%s)\t\n", n.Rank, n.Name, *n.Score,
				taints.Normalized, count(taints.Raw, "PreferNoSchedule taint"), affinity.Normalized, fmt.Sprintf("weight %d", affinity.Raw))
			continue
		}
		for i, reason := range n.Reasons {
			if i == 0 {
				fmt.Fprintf(tw, "  -\t%s\t-\t-\t-\t%s\n", n.Name, reason)
			} else {
				fmt.Fprintf(tw, "  \t\t\t\t\t%s\n", reason)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+strings.Repeat("\n", strings.Count(line, "\n"))); err != nil {
			return err
		}
	}
	return nil
}

func count(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
