// Package schedcheck holds the differential tests of podgate's scheduling
// model against the real kube-scheduler, on a simulated cluster
// (test/cluster's Simulated mode, without the webhook and without the four
// default Nodes) whose kube-apiserver, kube-controller-manager and
// kube-scheduler run with the feature gate TaintTolerationComparisonOperators,
// so Gt and Lt tolerations are accepted and matched (podgate is told so by
// its config, comparisonOperators: true):
//
//   - tolerations/schedulable: layouts of tainted, labelled and cordoned
//     Nodes, many Pods over each (a table and a seeded random generator),
//     and what the scheduler did (bound, or Pending with
//     PodScheduled=False/Unschedulable) against podgate's verdict, computed
//     by the engine on the live Node objects;
//   - podgate explain: Pods with PreferNoSchedule and NoSchedule taints,
//     tolerations, and preferred and required node affinity, each created
//     alone, and the node the scheduler binds against explain's ranking;
//   - the placement policy: Deployments on the demo's four Nodes, and the
//     Pending pods podgate announces against those the scheduler leaves.
//
// The Nodes kwok runs have ample and equal capacity (1k CPUs, 1Ti, 1M pods)
// and the Pods request nothing and use no host ports, so the scheduler
// decides on taints, cordoning, nodeSelector, node affinity and spread
// alone: what podgate models.
//
// Environment: PODGATE_SCHEDCHECK_SEED=N replaces the random generators'
// fixed seed. `go test -short` skips the package.
package schedcheck

import (
	"flag"
	"os"
	"testing"

	"github.com/podgate/podgate/test/cluster"
)

// bed is the cluster TestMain started; nil in -short mode.
var bed *cluster.Cluster

// comparisonGate is the feature gate of Gt and Lt tolerations (KEP-5471).
const comparisonGate = "TaintTolerationComparisonOperators"

// podgateConfig tells podgate the cluster runs comparisonGate.
const podgateConfig = "policies:\n  tolerations:\n    comparisonOperators: true\n"

func TestMain(m *testing.M) {
	flag.Parse()
	o := cluster.Options{Simulated: true, NoNodes: true, FeatureGates: comparisonGate + "=true"}
	os.Exit(cluster.RunSuite(m, "schedcheck", o, func(c *cluster.Cluster) { bed = c }))
}
