package main

import (
	"io"

	"github.com/spf13/cobra"
)

// inputFlags are what eval and explain both read: the objects, the policy
// set, the cluster's Nodes and the namespace of objects that name none.
type inputFlags struct {
	files     []string
	recursive bool
	policyDir string
	config    string
	nodes     string
	namespace string
}

func (o *inputFlags) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVarP(&o.files, "filename", "f", nil, "manifest file, directory or - for standard input (repeatable)")
	f.BoolVarP(&o.recursive, "recursive", "R", false, "read the sub-directories of -f directories too")
	f.StringVar(&o.policyDir, "policy-dir", "", "directory of custom policies, loaded next to the built-in ones")
	f.StringVar(&o.config, "config", "", "podgate config file (data.podgate.config)")
	f.StringVar(&o.nodes, "nodes", "", "`FILE` of the cluster's Nodes, as kubectl get nodes -o yaml (or -o json) prints them")
	f.StringVar(&o.namespace, "namespace", "default", "namespace of objects that name none")
}

// documents reads every object of the -f flags, in order.
func (o *inputFlags) documents(stdin io.Reader, stderr io.Writer) ([]document, error) {
	var docs []document
	for _, f := range o.files {
		d, err := readDocuments(f, o.recursive, stdin, stderr)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d...)
	}
	return docs, nil
}
