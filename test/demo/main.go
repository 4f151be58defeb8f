// Command demo tells podgate's story against a real API server (`make
// demo`): it starts etcd, kube-apiserver, four Nodes and the podgate webhook
// with test/cluster, applies each manifest of examples/ with the pinned
// kubectl, and prints, step by step, a heading saying what the step shows,
// the command as a user would type it, and exactly what kubectl printed.
//
// A denial is the point of most steps, so kubectl's exit status does not
// stop the demo; but output that contradicts a step's heading (a manifest
// announced as denied was created, a promised warning is missing) makes the
// demo exit 1, so a broken podgate cannot produce a cheerful demo.
//
// Environment:
//
//	KEEP=1  leave the control plane and the webhook running after the
//	        steps, print the `export KUBECONFIG=...` line to use them, and
//	        stop them on SIGINT or SIGTERM
//	STORY=0 start the cluster but tell no story (`make cluster`, with KEEP=1)
//
// Output is plain text, for a terminal and a CI log alike.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

// options is everything the demo takes; main fills it from the environment.
type options struct {
	root  string    // repository root; empty: found from the working directory
	keep  bool      // leave the cluster running until SIGINT or SIGTERM
	story bool      // run the steps (STORY, default true)
	out   io.Writer // the story
}

func main() {
	o, err := optionsFromEnv(os.Getenv)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = run(ctx, o)
		stop()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// optionsFromEnv reads KEEP and STORY (1, true, 0, false, or unset).
func optionsFromEnv(getenv func(string) string) (options, error) {
	o := options{out: os.Stdout, story: true}
	for name, dst := range map[string]*bool{"KEEP": &o.keep, "STORY": &o.story} {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("%s=%q: want 1 or 0", name, v)
			}
			*dst = b
		}
	}
	return o, nil
}
