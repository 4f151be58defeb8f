// Command certs writes a self-signed CA and a serving certificate it signs
// into a directory, as tls.crt, tls.key and ca.crt: what the webhook's
// --cert-dir expects, for running it outside a cluster with cert-manager.
//
//	go run ./cmd/certs --dir /tmp/podgate-certs --dns localhost --ip 127.0.0.1
//
// The CA's private key is not kept: to renew, make a new CA and register
// its ca.crt as the webhook configurations' caBundle again.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "certs:", err)
		os.Exit(1)
	}
}

// run parses args and writes the certificates, reporting to stdout; usage and
// flag errors go to stderr.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts Options
	opts.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	return opts.Write(stdout)
}
