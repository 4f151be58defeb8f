package main

import (
	"context"
	"errors"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/api/v1alpha1"
	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/inventory"
)

// clusterFlags find the cluster as kubectl does: --kubeconfig, else
// $KUBECONFIG, else ~/.kube/config (or the in-cluster config), with the
// current context's namespace unless -n says otherwise.
type clusterFlags struct {
	kubeconfig string
	context    string
	namespace  string
}

func (f *clusterFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default $KUBECONFIG, else ~/.kube/config)")
	fs.StringVar(&f.context, "context", "", "the kubeconfig context to use (default its current context)")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "namespace (default the context's namespace)")
}

func (f *clusterFlags) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: f.context, Context: clientcmdapi.Context{Namespace: f.namespace}})
}

// client connects to the cluster and says which namespace -n means.
func (f *clusterFlags) client() (client.Client, string, error) {
	cc := f.clientConfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", badInput("kubeconfig: %v", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", badInput("kubeconfig: %v", err)
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1alpha1.AddToScheme(scheme)); err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", badInput("connect to the cluster: %v", err)
	}
	return c, ns, nil
}

// loadNodes gives the engine the cluster's Nodes, as the webhook's
// inventory does.
func loadNodes(ctx context.Context, c client.Client, eng *engine.Engine) error {
	var list corev1.NodeList
	if err := c.List(ctx, &list); err != nil {
		return failed("list nodes: %v", err)
	}
	nodes := make(map[string]engine.Node, len(list.Items))
	for i := range list.Items {
		nodes[list.Items[i].Name] = inventory.Facts(&list.Items[i])
	}
	return eng.SetNodes(ctx, nodes)
}
