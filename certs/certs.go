// Package certs makes the TLS material a webhook serves with when no
// cert-manager is at hand (local runs, the real-API-server tests, the demo):
// a self-signed CA, whose certificate goes into the webhook configurations'
// caBundle, and a serving certificate it signs. Keys are ECDSA P-256: every
// TLS stack the API server uses accepts them, and they are quick to make.
//
// In a cluster the chart uses cert-manager instead; this package only writes
// the same three files cert-manager's Secret would hold, so the webhook
// reads its certificates the same way in both cases.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

const (
	// DefaultCAValidity is ten years: the CA certificate is copied into the
	// caBundle of every webhook configuration, so replacing it means
	// re-registering the webhook. It should outlive the installation.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// DefaultServingValidity is one year: a serving certificate is cheap to
	// replace (rewrite the files; the webhook reloads them without a
	// restart and the caBundle stays), so it need not live long, and a
	// leaked key stops being useful within a year.
	DefaultServingValidity = 365 * 24 * time.Hour

	// clockSkew backdates NotBefore, so a certificate made on one machine is
	// already valid on an API server whose clock runs a little behind.
	clockSkew = 5 * time.Minute
)

// CA is a self-signed certificate authority. WriteDir never writes its
// private key (a webhook's cert dir needs only ca.crt); the self-managed
// TLS mode keeps it in the webhook's own Secret (see Rotator), the one
// place replicas can share it.
type CA struct {
	// CertPEM is the CA certificate, PEM encoded: the caBundle of a webhook
	// configuration and the ca.crt file.
	CertPEM []byte

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// KeyPair is a certificate and its private key, both PEM encoded.
type KeyPair struct {
	CertPEM []byte // "CERTIFICATE" block
	KeyPEM  []byte // "PRIVATE KEY" block (PKCS #8)
}

// NewCA makes a self-signed CA certificate valid for validity from now.
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if commonName == "" {
		return nil, errors.New("new CA: common name is empty")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("new CA %q: validity %s is not positive", commonName, validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: generate key: %w", commonName, err)
	}
	tmpl, err := template(pkix.Name{CommonName: commonName}, validity)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", commonName, err)
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	// It signs serving certificates directly, never another CA.
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: sign: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: parse own certificate: %w", commonName, err)
	}
	return &CA{CertPEM: encodeCert(der), cert: cert, key: key}, nil
}

// Issue signs a serving certificate (TLS server authentication only) for the
// given DNS names and IP addresses, valid for validity from now. At least one
// name or address is needed, and the certificate may not outlive the CA.
func (ca *CA) Issue(dnsNames []string, ips []net.IP, validity time.Duration) (*KeyPair, error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, errors.New("issue serving certificate: no DNS name and no IP address")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("issue serving certificate: validity %s is not positive", validity)
	}
	if end := time.Now().Add(validity); end.After(ca.cert.NotAfter) {
		return nil, fmt.Errorf("issue serving certificate: it would expire %s, after its CA (%s)",
			end.UTC().Format(time.RFC3339), ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issue serving certificate: generate key: %w", err)
	}
	tmpl, err := template(pkix.Name{CommonName: firstName(dnsNames, ips)}, validity)
	if err != nil {
		return nil, fmt.Errorf("issue serving certificate: %w", err)
	}
	tmpl.DNSNames = dnsNames
	tmpl.IPAddresses = ips
	// ECDSA keys sign the handshake; they never encipher a key, so
	// DigitalSignature is the only key usage that applies.
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("issue serving certificate: sign: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("issue serving certificate: encode key: %w", err)
	}
	return &KeyPair{
		CertPEM: encodeCert(der),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// template is what a CA and a serving certificate share: a random serial, the
// subject, and a validity window that ends validity from now.
func template(subject pkix.Name, validity time.Duration) (*x509.Certificate, error) {
	// 128 random bits, as the CA/Browser Forum asks for at least 64.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(validity),
	}, nil
}

// firstName is the subject common name: only informative (clients verify
// the subject alternative names), but it makes the certificate readable.
func firstName(dnsNames []string, ips []net.IP) string {
	if len(dnsNames) > 0 {
		return dnsNames[0]
	}
	return ips[0].String()
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
