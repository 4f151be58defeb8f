package cluster

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/go-logr/logr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// RunSuite is a test package's TestMain body: it starts a cluster with o,
// hands it to ready, runs the tests and stops the cluster whatever
// happened, printing the end of the logs when anything failed. Ctrl-C or
// SIGTERM while the tests run stops the cluster before the binary exits
// (a second signal kills at once; the reaper cleans up). name prefixes its
// messages. In -short mode it starts nothing and ready is not called.
func RunSuite(m *testing.M, name string, o Options, ready func(*Cluster)) (code int) {
	if testing.Short() {
		return m.Run()
	}
	// envtest and the clients log through controller-runtime; the
	// suites read what they need from the API server instead.
	logf.SetLogger(logr.Discard())
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	if o.Log == nil {
		o.Log = os.Stderr
	}
	c, err := Start(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	// Deferred before stopSignals, which cancels ctx too.
	defer context.AfterFunc(ctx, func() {
		stopSignals()
		fmt.Fprintf(os.Stderr, "%s: %v: stopping everything\n", name, context.Cause(ctx))
		_ = c.Stop()
		os.Exit(1)
	})()
	defer func() {
		if code != 0 {
			c.WriteLogTails(os.Stderr, o.Simulated || !c.HasWebhook())
		}
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: stop: %v\n", name, err)
			code = 1
		}
	}()
	ready(c)
	return m.Run()
}
