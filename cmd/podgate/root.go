package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes, as CI pipelines read them.
const (
	exitOK      = 0 // everything admitted, every test passed
	exitFailed  = 1 // something denied, a test failed, a policy does not compile
	exitBadArgs = 2 // bad input: unreadable file, not YAML, unknown kind, bad flags
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func failed(format string, args ...any) error {
	return &exitError{exitFailed, fmt.Errorf(format, args...)}
}

func badInput(format string, args ...any) error {
	return &exitError{exitBadArgs, fmt.Errorf(format, args...)}
}

// run executes the CLI and returns its exit code; tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "podgate",
		Short:         "Check Kubernetes objects against podgate's policies as the webhook would: offline, or in a live cluster",
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
