// Package schedcheck is the differential test of podgate's
// tolerations/schedulable rule against the real kube-scheduler: on a
// simulated cluster (test/cluster's Simulated mode, without the webhook
// and without the four default Nodes) it creates layouts of tainted,
// labelled and cordoned Nodes, creates many Pods over each (a table and a
// seeded random generator), and compares what the scheduler did (bound, or
// Pending with PodScheduled=False/Unschedulable) with podgate's verdict,
// computed by the engine on the live Node objects.
//
// The Nodes kwok runs have ample capacity (1k CPUs, 1Ti, 1M pods) and the
// Pods request nothing and use no host ports, so the scheduler decides on
// taints, cordoning, nodeSelector and required node affinity alone: what
// podgate's rule models.
//
// Environment: PODGATE_SCHEDCHECK_SEED=N replaces the random generator's
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

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(cluster.RunSuite(m, "schedcheck", cluster.Options{Simulated: true, NoNodes: true}, func(c *cluster.Cluster) { bed = c }))
}
