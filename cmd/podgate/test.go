package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/spf13/cobra"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

type testOptions struct {
	verbose  bool
	coverage bool
	run      string
}

func newTestCommand() *cobra.Command {
	o := &testOptions{}
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the Rego unit tests and the testdata cases of the built-in policies and of DIR's custom policies",
		Long: `Runs every _test.rego of the built-in policies (and of DIR, when given) with
OPA's test runner, then judges every <policy>/testdata/<case>/data.yaml through
the full engine (mutation, then validation) against the case's expect block:
exactly the rules of its policy that fire, exactly the paths its policy
mutates, the patch making them, a second admission of the patched object
changing nothing. Every rule a policy's METADATA declares must be expected by
a case, and some case must expect none. When DIR is a built-in tree itself (the repository's
policies/, being edited), it is tested in place of the embedded one.

` + exitCodes,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			}
			return o.runAll(cmd.Context(), dir, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "print every test, not only failures")
	cmd.Flags().BoolVar(&o.coverage, "coverage", false, "print the test coverage of each policy file")
	cmd.Flags().StringVarP(&o.run, "run", "r", "", "only tests whose name matches this regular expression")
	return cmd
}

func (o *testOptions) runAll(ctx context.Context, dir string, w io.Writer) error {
	regoFailed, err := o.regoTests(ctx, dir, w)
	if err != nil {
		return err
	}
	casesFailed, err := o.cases(ctx, dir, w)
	if err != nil {
		return err
	}
	if regoFailed+casesFailed > 0 {
		return failed("%d Rego tests failed, and %d testdata cases or policies whose cases leave a rule untested", regoFailed, casesFailed)
	}
	return nil
}

// load reads modules and data (config defaults, testdata) as `opa test`
// would: the built-in tree, plus dir.
func load(dir string) (map[string]*ast.Module, map[string]any, error) {
	builtin, err := loader.NewFileLoader().WithFS(builtinFS(dir)).WithProcessAnnotation(true).All([]string{"."})
	if err != nil {
		return nil, nil, err
	}
	modules := builtin.ParsedModules()
	data := builtin.Documents
	if dir == "" || builtinTree(dir) {
		return modules, data, nil
	}
	custom, err := loader.NewFileLoader().WithProcessAnnotation(true).All([]string{dir})
	if err != nil {
		return nil, nil, err
	}
	maps.Copy(modules, custom.ParsedModules())
	for k, v := range custom.Documents {
		if _, clash := data[k]; clash {
			return nil, nil, fmt.Errorf("%s: data.%s is also defined by the built-in policies: a folder of custom policies must not reuse a built-in policy's name (to test the built-in policies alone, run podgate test without DIR)", dir, k)
		}
		data[k] = v
	}
	return modules, data, nil
}

func (o *testOptions) regoTests(ctx context.Context, dir string, w io.Writer) (int, error) {
	modules, data, err := load(dir)
	if err != nil {
		return 0, badInput("%v", err)
	}
	var cov *cover.Cover
	runner := tester.NewRunner().
		SetCompiler(ast.NewCompiler().WithStrict(true).WithEnablePrintStatements(true)).
		SetStore(inmem.NewFromObject(data)).
		CapturePrintOutput(true).
		EnableTracing(o.verbose).
		SetModules(modules).
		Filter(o.run)
	if o.coverage {
		cov = cover.New()
		runner = runner.SetCoverageQueryTracer(cov)
	}
	ch, err := runner.RunTests(ctx, nil)
	if err != nil {
		return 0, failed("%v", err)
	}
	var results []*tester.Result
	failures := 0
	for r := range ch {
		if r.Fail || r.Error != nil {
			failures++
		}
		results = append(results, r)
	}
	report := make(chan *tester.Result, len(results))
	for _, r := range results {
		report <- r
	}
	close(report)
	if err := (tester.PrettyReporter{Output: w, Verbose: o.verbose, FailureLine: true}).Report(report); err != nil {
		return failures, err
	}
	if cov != nil {
		printCoverage(w, cov.Report(modules))
	}
	return failures, nil
}

func printCoverage(w io.Writer, r cover.Report) {
	fmt.Fprintf(w, "coverage: %.1f%%\n", r.Coverage)
	for _, file := range slices.Sorted(maps.Keys(r.Files)) {
		if strings.HasSuffix(file, "_test.rego") {
			continue
		}
		fmt.Fprintf(w, "  %5.1f%%  %s\n", r.Files[file].Coverage, file)
	}
}

// cases judges every testdata case of the built-in policies, and of dir's
// custom ones, through the full engine (judgeCases).
func (o *testOptions) cases(ctx context.Context, dir string, w io.Writer) (int, error) {
	all, err := policies.LoadCases(builtinFS(dir), "policies")
	if err != nil {
		return 0, badInput("%v", err)
	}
	if dir != "" && !builtinTree(dir) {
		custom, err := policies.LoadCases(os.DirFS(dir), dir)
		if err != nil {
			return 0, badInput("%v", err)
		}
		all = append(all, custom...)
	}
	eng := engine.New()
	if err := eng.Load(ctx, policySources(dir, "")); err != nil {
		return 0, failed("%v", err)
	}
	return judgeCases(ctx, eng, all, w, o.verbose), nil
}
