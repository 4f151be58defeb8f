// Command loadtest is `make loadtest`: podgate's webhook and `opa run
// --server` with the same policies, each under the same HTTPS load, on a
// real control plane; it prints every figure against the targets.
// See docs/performance.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/podgate/podgate/test/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	o := load.NewOptions()
	var err error
	// LOADTEST_DURATION sets the sustained run's length (issue: 60s).
	if o.Duration, err = load.DurationFromEnv("LOADTEST_DURATION", o.Duration); err != nil {
		return err
	}
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	rep, err := load.Run(ctx, o)
	if rep != nil {
		rep.Print(os.Stdout)
	}
	return err
}
