// Command soak is `make soak`: the webhook under a steady load for a long
// while, first straight over HTTPS, then behind a real kube-apiserver,
// checking that every answer is right, that memory stays flat and that no
// goroutine leaks. It exits non-zero when a criterion fails. See
// docs/performance.md, "Soak".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/podgate/podgate/test/load/soak"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first Ctrl-C stops the load and everything started; a second one
	// kills this process at once, and the cluster's reaper what is left.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	o := soak.NewOptions()
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	rep, err := soak.Run(ctx, o)
	if rep != nil && len(rep.Phases) > 0 {
		rep.Print(os.Stdout)
	}
	if err != nil {
		return err
	}
	if failed := rep.Failed(); len(failed) > 0 {
		var names []string
		for _, c := range failed {
			names = append(names, c.Phase+" "+c.Name)
		}
		return errors.New("criteria not met: " + strings.Join(names, ", "))
	}
	return nil
}
