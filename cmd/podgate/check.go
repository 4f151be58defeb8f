package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/podgate/podgate/engine"
)

func newCheckCommand() *cobra.Command {
	var config string
	cmd := &cobra.Command{
		Use:   "check [DIR]",
		Short: "Compile the built-in policies, DIR's custom policies and the config with the webhook's strict checks",
		Long: `Compiles the built-in policies, the custom policies of DIR and the config
file exactly as the webhook loads them: Rego's strict checks, the METADATA of
every policy (each rule id a policy reports must be declared there), and every
config key, value and policy name. Errors name file:line:col. When DIR is a
built-in tree itself (the repository's policies/), it replaces the embedded one.

` + exitCodes,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			}
			eng := engine.New()
			if err := eng.Load(cmd.Context(), policySources(dir, config)); err != nil {
				return failed("%v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d policies compile (policy set %s)\n", len(eng.Policies()), eng.Hash())
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "podgate config file to validate with the policies")
	return cmd
}
