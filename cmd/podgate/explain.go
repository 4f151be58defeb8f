package main

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/explain"
)

// listNodesTimeout bounds reading the Nodes from the API server.
const listNodesTimeout = 30 * time.Second

type explainOptions struct {
	inputFlags
	kubeconfig string
	context    string
	output     string
}

func newExplainCommand() *cobra.Command {
	o := &explainOptions{}
	cmd := &cobra.Command{
		Use:   "explain -f FILE|DIR|- [--nodes FILE | --kubeconfig FILE] [flags]",
		Short: "Say which nodes each object's pods fit, why not the others, and how kube-scheduler ranks those that fit",
		Long: `For each workload or Pod, every node of the cluster: whether its pods fit and,
if not, which of kube-scheduler's filters rejects the node and why
(NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, PodTopologySpread's
missing topology key); for the nodes that fit, the TaintToleration and
NodeAffinity scores normalized and weighted as kube-scheduler's default profile
does (weights 3 and 2), and their ranking. The node fit is the one podgate's
tolerations and placement policies use. Resource, image, volume and running-pod
plugins are not modelled; the output names them.

The Nodes come from --nodes (what kubectl get nodes -o yaml prints) or from the
API server of --kubeconfig (default: $KUBECONFIG, then ~/.kube/config, as kubectl).
Exit code: 0, or 2 for bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "read the Nodes from this cluster (default: $KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&o.context, "context", "", "kubeconfig context to use")
	f.StringVarP(&o.output, "output", "o", "text", "text or json")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

func (o *explainOptions) run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	if o.output != "text" && o.output != "json" {
		return badInput("--output %q: want text or json", o.output)
	}
	if o.nodes != "" && (o.kubeconfig != "" || o.context != "") {
		return badInput("--nodes and --kubeconfig/--context both name the Nodes: pass one")
	}
	eng, err := loadEngine(ctx, o.policyDir, o.config, o.nodes)
	if err != nil {
		return err
	}
	if o.nodes == "" {
		if err := o.clusterNodes(ctx, eng); err != nil {
			return err
		}
	}
	docs, err := o.documents(stdin, stderr)
	if err != nil {
		return err
	}
	xs := make([]*explain.Explanation, 0, len(docs))
	for _, doc := range docs {
		x, err := explain.Explain(ctx, eng, engineRequest(doc, nil, o.namespace))
		if err != nil {
			return failed("%s: %v", doc.where(), err)
		}
		x.Source, x.Index = doc.Source, doc.Index
		xs = append(xs, x)
	}
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(xs)
	}
	return explain.WriteText(stdout, xs)
}

// clusterNodes reads the Nodes from the API server of the kubeconfig, as
// kubectl finds it, into the engine's inventory.
func (o *explainOptions) clusterNodes(ctx context.Context, eng *engine.Engine) error {
	cluster := clusterFlags{kubeconfig: o.kubeconfig, context: o.context}
	c, _, err := cluster.client()
	if err != nil {
		return badInput("explain needs the cluster's Nodes: pass --nodes FILE (kubectl get nodes -o yaml) or --kubeconfig FILE (%v)", err)
	}
	ctx, cancel := context.WithTimeout(ctx, listNodesTimeout)
	defer cancel()
	return loadNodes(ctx, c, eng)
}
