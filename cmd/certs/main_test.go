package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podgate/podgate/certs"
)

func TestRunWritesCertificatesForTheGivenNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	err := run([]string{"--dir", dir, "--dns", "localhost, podgate.svc", "--ip", "127.0.0.1"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, stderr.String())
	}
	if want := "for localhost, podgate.svc, 127.0.0.1 to " + dir; !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout = %q, want it to contain %q", stdout.String(), want)
	}
	data, err := os.ReadFile(filepath.Join(dir, certs.CertFile))
	if err != nil {
		t.Fatalf("read serving certificate: %v", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM block", certs.CertFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse serving certificate: %v", err)
	}
	if got := strings.Join(cert.DNSNames, ","); got != "localhost,podgate.svc" {
		t.Errorf("DNS names = %s, want localhost,podgate.svc", got)
	}
	if len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "127.0.0.1" {
		t.Errorf("IP addresses = %v, want [127.0.0.1]", cert.IPAddresses)
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no directory is refused", []string{"--dns", "localhost"}, "--dir is required"},
		{"no name and no address is refused", []string{"--dir", dir}, "at least one --dns name or --ip address"},
		{"a malformed address is refused", []string{"--dir", dir, "--ip", "127.0.0.300"}, `"127.0.0.300" is not an IP address`},
		{"a leaf outliving the CA is refused", []string{"--dir", dir, "--dns", "a", "--validity", "2h", "--ca-validity", "1h"}, "longer than --ca-validity"},
		{"stray arguments are refused", []string{"--dir", dir, "--dns", "a", "extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(tt.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
