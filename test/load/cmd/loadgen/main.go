// Command loadgen sends podgate's benchmark AdmissionReviews to a webhook
// on loopback, at a fixed rate or as fast as it answers, and prints the
// latency percentiles. `make loadtest` runs the same generator (package
// loadgen) against podgate and OPA; this command is for pointing it at a
// webhook you started yourself:
//
//	loadgen --url https://127.0.0.1:9443 --ca ca.crt --rate 2000 --duration 60s
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/podgate/podgate/test/bench"
	"github.com/podgate/podgate/test/load/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	o := loadgen.Options{Duration: 10 * time.Second, Warmup: 2 * time.Second}
	var ca, path, only string
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&o.URL, "url", "https://127.0.0.1:9443", "The webhook's base URL (loopback only).")
	fs.StringVar(&ca, "ca", "", "PEM file of the CA that signed the webhook's certificate.")
	fs.Float64Var(&o.Rate, "rate", 0, "Requests per second; 0 sends as fast as --workers allow.")
	fs.IntVar(&o.Workers, "workers", loadgen.DefaultWorkers, "Concurrent senders when --rate is 0.")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "Length of the measured run.")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "Unmeasured run before it.")
	fs.IntVar(&o.MaxRequests, "max-requests", 0, "Stop after this many requests (0: no limit but --duration).")
	fs.StringVar(&path, "path", "", `Send every request to this path (e.g. "/" for OPA) instead of /validate and /mutate.`)
	fs.StringVar(&only, "only", "", `Send only the requests for "/validate" or "/mutate".`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if ca == "" {
		return errors.New("--ca: required")
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		return err
	}
	o.RootCAs = x509.NewCertPool()
	if !o.RootCAs.AppendCertsFromPEM(pem) {
		return fmt.Errorf("--ca %s: no certificate", ca)
	}
	reqs, err := bench.Requests(ctx)
	if err != nil {
		return err
	}
	if only != "" {
		reqs = bench.Only(reqs, only)
	}
	for _, r := range reqs {
		lr := loadgen.Request{Name: r.Name, Path: r.Path, Body: r.Body}
		if path != "" {
			lr.Path = path
		}
		o.Requests = append(o.Requests, lr)
	}
	res, err := loadgen.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s\n", res.Mode, res.Summary())
	for msg, n := range res.ErrorsBy {
		fmt.Printf("  %d x %s\n", n, msg)
	}
	return nil
}
