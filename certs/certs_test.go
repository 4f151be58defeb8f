package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewCAMakesASelfSignedCAThatSignsOnlyLeaves(t *testing.T) {
	before := time.Now()
	ca, err := NewCA("podgate-ca", DefaultCAValidity)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	cert := parseCert(t, ca.CertPEM)
	if !cert.IsCA || !cert.BasicConstraintsValid {
		t.Errorf("IsCA = %v, BasicConstraintsValid = %v; want both true", cert.IsCA, cert.BasicConstraintsValid)
	}
	if cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Errorf("MaxPathLen = %d (zero %v); want 0, so it signs no intermediate CA", cert.MaxPathLen, cert.MaxPathLenZero)
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("KeyUsage %b lacks CertSign", cert.KeyUsage)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if cert.Subject.CommonName != "podgate-ca" {
		t.Errorf("CommonName = %q, want podgate-ca", cert.Subject.CommonName)
	}
	checkP256(t, cert)
	checkValidity(t, cert, before, DefaultCAValidity)
}

func TestIssuedCertificateVerifiesForEachNameAndAddress(t *testing.T) {
	ca := newCA(t)
	dns := []string{"localhost", "podgate.podgate-system.svc"}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	pair, err := ca.Issue(dns, ips, time.Hour)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	cert := parseCert(t, pair.CertPEM)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)
	tests := []struct {
		host    string
		wantErr bool
	}{
		{"localhost", false},
		{"podgate.podgate-system.svc", false},
		{"127.0.0.1", false},
		{"::1", false},
		{"podgate.other.svc", true},
		{"10.0.0.1", true},
	}
	for _, tt := range tests {
		_, err := cert.Verify(x509.VerifyOptions{
			DNSName:   tt.host,
			Roots:     roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if (err != nil) != tt.wantErr {
			t.Errorf("verify for %s: err = %v, want error %v", tt.host, err, tt.wantErr)
		}
	}
}

func TestIssuedCertificateIsForServingOnly(t *testing.T) {
	ca := newCA(t)
	before := time.Now()
	pair, err := ca.Issue([]string{"localhost"}, nil, 36*time.Hour)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	cert := parseCert(t, pair.CertPEM)
	if cert.IsCA {
		t.Error("serving certificate is a CA")
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %b, want DigitalSignature only", cert.KeyUsage)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v, want [serverAuth]", cert.ExtKeyUsage)
	}
	if cert.Subject.CommonName != "localhost" {
		t.Errorf("CommonName = %q, want the first DNS name", cert.Subject.CommonName)
	}
	checkP256(t, cert)
	checkValidity(t, cert, before, 36*time.Hour)
	if _, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM); err != nil {
		t.Errorf("certificate and key do not make a TLS key pair: %v", err)
	}
}

func TestTLSClientTrustingOnlyTheCAReachesTheServer(t *testing.T) {
	ca := newCA(t)
	pair, err := ca.Issue([]string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	srvCert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatalf("X509KeyPair: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}}
	srv.StartTLS()
	defer srv.Close()

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := client.Get("https://" + net.JoinHostPort(host, port))
		if err != nil {
			t.Errorf("GET via %s: %v", host, err)
			continue
		}
		_ = resp.Body.Close()
	}
}

func TestBadRequestsAreRefused(t *testing.T) {
	ca := newCA(t)
	tests := []struct {
		name    string
		issue   func() error
		wantErr string
	}{
		{"a CA without a common name is refused", func() error {
			_, err := NewCA("", time.Hour)
			return err
		}, "common name is empty"},
		{"a CA with no validity is refused", func() error {
			_, err := NewCA("ca", 0)
			return err
		}, "not positive"},
		{"a certificate with no name and no address is refused", func() error {
			_, err := ca.Issue(nil, nil, time.Hour)
			return err
		}, "no DNS name and no IP address"},
		{"a certificate with negative validity is refused", func() error {
			_, err := ca.Issue([]string{"localhost"}, nil, -time.Hour)
			return err
		}, "not positive"},
		{"a certificate outliving its CA is refused", func() error {
			_, err := ca.Issue([]string{"localhost"}, nil, 49*time.Hour)
			return err
		}, "after its CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.issue()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// newCA is a CA that lives two days, long enough for the tests' leaves.
func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test-ca", 48*time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func parseCert(t *testing.T, pemData []byte) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(pemData)
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("want exactly one CERTIFICATE block, got %q", pemData)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return cert
}

func checkP256(t *testing.T, cert *x509.Certificate) {
	t.Helper()
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", cert.PublicKey)
	}
}

// checkValidity checks that cert is valid now and expires validity after the
// moment it was asked for (before), give or take the test's own run time.
func checkValidity(t *testing.T, cert *x509.Certificate, before time.Time, validity time.Duration) {
	t.Helper()
	now := time.Now()
	if cert.NotBefore.After(before) {
		t.Errorf("NotBefore %s is after the request at %s", cert.NotBefore, before)
	}
	earliest, latest := before.Add(validity).Add(-time.Second), now.Add(validity)
	if cert.NotAfter.Before(earliest) || cert.NotAfter.After(latest) {
		t.Errorf("NotAfter = %s, want between %s and %s", cert.NotAfter, earliest, latest)
	}
}
