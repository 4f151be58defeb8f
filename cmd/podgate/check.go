package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

func newCheckCommand() *cobra.Command {
	var config string
	cmd := &cobra.Command{
		Use:   "check [DIR]",
		Short: "Compile the built-in policies, DIR's custom policies and the config with the webhook's strict checks",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := engine.Sources{Builtin: policies.FS, ConfigFile: config}
			if len(args) == 1 {
				src.PolicyDir = args[0]
			}
			eng := engine.New()
			if err := eng.Load(cmd.Context(), src); err != nil {
				return failed("%v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d policies compile (policy set %s)\n", len(eng.Policies()), eng.Hash())
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "podgate config file to validate with the policies")
	return cmd
}
