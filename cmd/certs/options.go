package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/podgate/podgate/certs"
)

// DefaultCAName is the CA's common name unless --ca-name says otherwise.
const DefaultCAName = "podgate-webhook-ca"

// Options are the command's flags.
type Options struct {
	Dir        string
	DNSNames   []string
	IPs        []net.IP
	CAName     string
	CAValidity time.Duration
	Validity   time.Duration

	dns, ips string // raw comma-separated flag values, split by Validate
}

// AddFlags registers the options on fs with their defaults.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Dir, "dir", "", "directory to write tls.crt, tls.key and ca.crt into (created if missing; required)")
	fs.StringVar(&o.dns, "dns", "", "comma-separated DNS names the serving certificate is for")
	fs.StringVar(&o.ips, "ip", "", "comma-separated IP addresses the serving certificate is for")
	fs.StringVar(&o.CAName, "ca-name", DefaultCAName, "common name of the CA certificate")
	fs.DurationVar(&o.CAValidity, "ca-validity", certs.DefaultCAValidity, "how long the CA certificate is valid")
	fs.DurationVar(&o.Validity, "validity", certs.DefaultServingValidity, "how long the serving certificate is valid")
}

// Validate splits the name lists and checks the options are usable.
func (o *Options) Validate() error {
	if o.Dir == "" {
		return errors.New("--dir is required")
	}
	o.DNSNames = splitList(o.dns)
	o.IPs = o.IPs[:0]
	for _, s := range splitList(o.ips) {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("--ip: %q is not an IP address", s)
		}
		o.IPs = append(o.IPs, ip)
	}
	if len(o.DNSNames) == 0 && len(o.IPs) == 0 {
		return errors.New("give at least one --dns name or --ip address")
	}
	if o.Validity > o.CAValidity {
		return fmt.Errorf("--validity %s is longer than --ca-validity %s", o.Validity, o.CAValidity)
	}
	return nil
}

// Write makes the CA and the serving certificate and writes them to Dir.
func (o *Options) Write(out io.Writer) error {
	ca, err := certs.NewCA(o.CAName, o.CAValidity)
	if err != nil {
		return err
	}
	pair, err := ca.Issue(o.DNSNames, o.IPs, o.Validity)
	if err != nil {
		return err
	}
	if err := certs.WriteDir(o.Dir, ca, pair); err != nil {
		return err
	}
	names := append([]string{}, o.DNSNames...)
	for _, ip := range o.IPs {
		names = append(names, ip.String())
	}
	_, err = fmt.Fprintf(out, "wrote %s, %s and %s for %s to %s\n", certs.CertFile, certs.KeyFile, certs.CAFile,
		strings.Join(names, ", "), filepath.Clean(o.Dir))
	return err
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
