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
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/podgate/podgate/test/cluster"
)

// bed is the cluster TestMain started; nil in -short mode.
var bed *cluster.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) (code int) {
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	c, err := cluster.Start(ctx, cluster.Options{Simulated: true, NoNodes: true, Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "schedcheck: %v\n", err)
		return 1
	}
	defer context.AfterFunc(ctx, func() {
		fmt.Fprintf(os.Stderr, "schedcheck: %v: stopping everything\n", context.Cause(ctx))
		_ = c.Stop()
		os.Exit(1)
	})()
	defer func() {
		if code != 0 {
			c.WriteLogTails(os.Stderr, true)
		}
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "schedcheck: stop: %v\n", err)
			code = 1
		}
	}()
	bed = c
	return m.Run()
}
