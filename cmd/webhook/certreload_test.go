package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podgate/podgate/certs"
)

// The serving certificate replaced on disk (cert-manager renewing it, the
// self-managed mode rotating it) while requests keep coming: every request
// is answered, and new connections get the new certificate.
func TestCertificateReplacedOnDiskUnderLoadFailsNoRequest(t *testing.T) {
	dir := t.TempDir()
	addr, pool := serveIn(t, dir)
	ca, err := certs.NewCA("rotated", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca.CertPEM) // clients trust both CAs, as a caBundle does during a rotation

	var sent, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			// A new connection now and then, so handshakes see the new
			// certificate too, not only kept-alive connections.
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
				for range 20 {
					sent.Add(1)
					resp, err := client.Post("https://"+addr+"/validate", "application/json", bytes.NewBufferString(review))
					if err == nil {
						resp.Body.Close()
					}
					if err != nil || resp.StatusCode != 200 {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				}
				client.CloseIdleConnections()
			}
		})
	}
	for range 5 {
		time.Sleep(200 * time.Millisecond)
		pair, err := ca.Issue([]string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := certs.WriteDir(dir, ca, pair); err != nil {
			t.Fatal(err)
		}
	}
	var served *x509.Certificate
	for deadline := time.Now().Add(10 * time.Second); served == nil || served.Issuer.CommonName != "rotated"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the new certificate was not picked up; serving one from %v", served.Issuer)
		}
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
		if err == nil {
			served = c.ConnectionState().PeerCertificates[0]
			c.Close()
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed during 5 certificate replacements; first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
	t.Logf("%d requests during 5 certificate replacements, none failed", sent.Load())
}
