package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/podgate/podgate/test/cluster"
)

// kubectlTimeout bounds one step's kubectl run: the API server answers in
// milliseconds, so a run this long is stuck.
const kubectlTimeout = time.Minute

// run starts the cluster, tells the story, optionally keeps the cluster
// running until ctx is cancelled, and stops it. Its error says which steps
// contradicted their heading.
func run(ctx context.Context, o options) error {
	heading(o.out, "Start a simulated cluster on 127.0.0.1 (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok running four fake Nodes), without podgate yet")
	c, err := cluster.Start(ctx, cluster.Options{Root: o.root, BuildWebhook: true, Simulated: true, ReloadSources: true, Log: o.out,
		WebhookArgs: []string{"--audit"}})
	if err != nil {
		return err
	}
	var storyErr error
	if o.story {
		storyErr = tell(ctx, c, o.out, beforePodgate())
	}
	if storyErr == nil && ctx.Err() == nil {
		heading(o.out, "Install podgate: the webhook with a certificate from its own CA and the audit on (--audit), registered with the API server")
		if _, err := c.StartWebhook(ctx, nil, true); err != nil {
			storyErr = err
		}
	}
	if o.story && storyErr == nil {
		storyErr = tell(ctx, c, o.out, story())
	}
	if storyErr != nil && ctx.Err() == nil {
		// What podgate logged is what explains a contradiction.
		c.WriteLogTails(os.Stderr, false)
	}
	if o.keep && ctx.Err() == nil {
		keepRunning(ctx, c, o.out)
	}
	heading(o.out, "Stop kwok, the scheduler, the controller-manager, the webhook, kube-apiserver and etcd")
	stopped := time.Now()
	if err := c.Stop(); err != nil {
		return errors.Join(storyErr, fmt.Errorf("stop: %w", err))
	}
	fmt.Fprintf(o.out, "stopped in %s\n", time.Since(stopped).Round(time.Millisecond))
	return storyErr
}

// tell runs the steps in order. A step whose output contradicts its heading
// is reported and the story goes on, so one run shows everything that is
// broken; kubectl failing to run at all, or ctx ending, stops it.
func tell(ctx context.Context, c *cluster.Cluster, out io.Writer, steps []step) error {
	start := time.Now()
	var podgateBin string
	if slices.ContainsFunc(steps, func(s step) bool { return s.program == podgate }) {
		var err error
		if podgateBin, err = buildPodgate(ctx, c, out); err != nil {
			return err
		}
	}
	var contradictions []error
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted before step %d: %w", i+1, context.Cause(ctx))
		}
		printed, runErr := runStep(ctx, c, podgateBin, out, s)
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted in step %d: %w", i+1, context.Cause(ctx))
		}
		if err := s.check(printed, runErr); err != nil {
			var contra *contradiction
			if !errors.As(err, &contra) {
				return fmt.Errorf("step %d (%s): %w", i+1, s.heading, err)
			}
			fmt.Fprintf(out, "!!! step %d contradicts its heading: %v\n", i+1, err)
			contradictions = append(contradictions, fmt.Errorf("step %d (%s): %w", i+1, s.heading, err))
		}
		fmt.Fprintln(out)
	}
	if len(contradictions) > 0 {
		return fmt.Errorf("%d of %d steps contradict their heading:\n%w", len(contradictions), len(steps), errors.Join(contradictions...))
	}
	fmt.Fprintf(out, "All %d steps showed what their heading said, in %s.\n", len(steps), time.Since(start).Round(time.Millisecond))
	return nil
}

// buildPodgate builds the podgate CLI of the working tree into the
// cluster's scratch dir, for the steps that run it.
func buildPodgate(ctx context.Context, c *cluster.Cluster, out io.Writer) (string, error) {
	start := time.Now()
	bin := filepath.Join(c.Dir(), podgate)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/podgate")
	cmd.Dir = c.Root()
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/podgate: %w\n%s", err, output)
	}
	fmt.Fprintf(out, "podgate CLI built in %s\n", time.Since(start).Round(time.Millisecond))
	return bin, nil
}

// runStep prints the step's heading and command, runs kubectl (or the
// podgate CLI, with the same kubeconfig) and prints exactly what it
// printed: stdout and stderr go to one buffer, through one pipe, so they
// stay in the order a terminal would show them.
func runStep(ctx context.Context, c *cluster.Cluster, podgateBin string, out io.Writer, s step) (string, error) {
	heading(out, s.heading)
	ctx, cancel := context.WithTimeout(ctx, kubectlTimeout)
	defer cancel()
	program, cmd := "kubectl", c.KubectlCommand(ctx, s.args...)
	if s.program == podgate {
		program, cmd = podgate, exec.CommandContext(ctx, podgateBin, s.args...)
		cmd.Dir = c.Root()
		cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig())
	}
	fmt.Fprintf(out, "$ %s\n", commandLine(program, s.args...))
	var printed bytes.Buffer
	cmd.Stdout, cmd.Stderr = &printed, &printed
	err := cmd.Run()
	_, _ = out.Write(printed.Bytes())
	if n := printed.Len(); n > 0 && printed.Bytes()[n-1] != '\n' {
		fmt.Fprintln(out) // so the next heading starts a line
	}
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%s: %w", program, ctx.Err())
	}
	return printed.String(), err
}

// kubeconfigLink is where a running KEEP=1 cluster's admin kubeconfig is
// linked, for `make try-chart` in another shell.
const kubeconfigLink = "bin/cluster-kubeconfig"

// keepRunning says how to reach the cluster and waits for ctx to end.
func keepRunning(ctx context.Context, c *cluster.Cluster, out io.Writer) {
	link := filepath.Join(c.Root(), kubeconfigLink)
	_ = os.Remove(link)
	if err := os.Symlink(c.Kubeconfig(), link); err != nil {
		fmt.Fprintf(out, "(could not link %s: %v)\n", kubeconfigLink, err)
	} else {
		defer os.Remove(link)
	}
	heading(out, "KEEP=1: the simulated cluster and podgate keep running. To use them from another shell:")
	fmt.Fprintf(out, "export KUBECONFIG=%s   # also linked as %s\n", shellQuote(c.Kubeconfig()), kubeconfigLink)
	fmt.Fprintf(out, "export PATH=%s:\"$PATH\"   # the pinned kubectl, if you have none\n", shellQuote(filepath.Dir(c.KubectlPath())))
	fmt.Fprintf(out, "The webhook logs to %s; its metrics are at %s, its readiness at %s.\n", c.WebhookLogPath(), c.MetricsURL(), c.ReadyzURL())
	fmt.Fprintf(out, "It reloads its config %s and its policy directory %s when they change:\n", c.ConfigFile(), c.PolicyDir())
	fmt.Fprintf(out, "  cp examples/policies/resources/resources.rego %s/   # docs/authoring.md, \"Watch it reload\"\n", shellQuote(c.PolicyDir()))
	fmt.Fprintf(out, "To install the chart from this working tree next to it: make try-chart (docs/install.md).\n")
	fmt.Fprintf(out, "Press Ctrl-C (or send SIGTERM to PID %d) to stop.\n", os.Getpid())
	<-ctx.Done()
	fmt.Fprintf(out, "%v\n", context.Cause(ctx))
}

func heading(out io.Writer, text string) { fmt.Fprintf(out, "==> %s\n", text) }
