package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/v1/format"
	"github.com/spf13/cobra"
)

func newFmtCommand() *cobra.Command {
	var write, fail bool
	cmd := &cobra.Command{
		Use:   "fmt [PATH...]",
		Short: "Format Rego files with OPA's formatter; list the files that change",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			changed, err := formatPaths(args, write)
			for _, f := range changed {
				fmt.Fprintln(cmd.OutOrStdout(), f)
			}
			if err != nil {
				return failed("%v", err)
			}
			if fail && len(changed) > 0 && !write {
				return failed("%d files need formatting (podgate fmt -w)", len(changed))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&write, "write", "w", false, "rewrite the files in place")
	cmd.Flags().BoolVar(&fail, "fail", false, "exit 1 when a file needs formatting")
	return cmd
}

func formatPaths(paths []string, write bool) ([]string, error) {
	var changed []string
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") {
				return err
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out, err := format.Source(p, src)
			if err != nil {
				return err
			}
			if bytes.Equal(src, out) {
				return nil
			}
			changed = append(changed, p)
			if write {
				return os.WriteFile(p, out, 0o644)
			}
			return nil
		})
		if err != nil {
			return changed, err
		}
	}
	return changed, nil
}
