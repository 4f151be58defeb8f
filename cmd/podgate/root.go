package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// run executes the CLI and returns its exit code; tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:   "podgate",
		Short: "Check Kubernetes objects against podgate's policies as the webhook would: offline, or in a live cluster",
		Long: `Check Kubernetes objects against podgate's policies as the webhook would: offline, or in a live cluster.

` + exitCodes,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newEvalCommand(), newExplainCommand(), newAuditCommand(), newTestCommand(), newCheckCommand(), newFmtCommand(), newVersionCommand())
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err.Error() != "" {
			fmt.Fprintln(stderr, "podgate:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "podgate:", err) // cobra's own errors: unknown flag or command
	return exitBadArgs
}
