package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/podgate/podgate/certs"
	"github.com/podgate/podgate/internal/testenv"
)

// serve starts the webhook server as run() configures it, on loopback with
// a fresh certificate, and returns its address and a client trusting it.
func serve(t *testing.T) (string, *x509.CertPool) {
	t.Helper()
	return serveIn(t, t.TempDir())
}

// writeCerts writes a fresh CA and a serving certificate for localhost and
// 127.0.0.1 into dir, as the webhook's --cert-dir.
func writeCerts(t *testing.T, dir string) *certs.CA {
	t.Helper()
	ca, err := certs.NewCA("test", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue([]string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteDir(dir, ca, pair); err != nil {
		t.Fatal(err)
	}
	return ca
}

// serveIn is serve with the certificate files in dir, and the options
// changed by each of with.
func serveIn(t *testing.T, dir string, with ...func(*Options)) (string, *x509.CertPool) {
	t.Helper()
	ca := writeCerts(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	o := NewOptions()
	o.Port, o.CertDir = port, dir
	for _, f := range with {
		f(&o)
	}
	srv := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir, TLSOpts: []func(*tls.Config){o.tlsConfig}})
	registerHandlers(srv, testenv.Engine(t, ""), o, logr.Discard())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the server did not stop cleanly: %v", err)
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool}); err == nil {
			c.Close()
			return addr, pool
		} else if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTLSBelow12IsRefusedAndHTTP2IsOffByDefault(t *testing.T) {
	addr, pool := serve(t)
	if _, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p == "h2" {
		t.Fatalf("negotiated %q; HTTP/2 must be off unless --enable-http2", p)
	}
}

func TestRealServerAnswersBadInput(t *testing.T) {
	// The 6.5 MiB Pod takes longer than the default 3 s to evaluate under
	// the race detector on a busy machine.
	addr, pool := serveIn(t, t.TempDir(), func(o *Options) { o.EvalTimeout = time.Minute })
	// The 6.5 MiB Pod takes seconds under the race detector.
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	v1beta1 := strings.Replace(review, "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1)
	// 6.5 MiB of annotation: a Pod as large as an API server lets through.
	huge := strings.Replace(review, `"metadata":{"name":"p"}`, `"metadata":{"name":"p","annotations":{"a":"`+strings.Repeat("a", 6<<20+1<<19)+`"}}`, 1)
	notAnObject := strings.Replace(review, `"object":{`, `"object":"a Pod","unused":{`, 1)
	wrongTypes := strings.Replace(review, `"spec":{"containers":[`, `"spec":{"volumes":5,"tolerations":"all","containers":[`, 1)
	for name, tc := range map[string]struct {
		path, body, contentType string
		code                    int // response.status.code; the HTTP status is 200 (404 for an unknown path)
		want                    string
	}{
		"a v1 review is answered as v1":                     {"/validate", review, "application/json", 200, `"apiVersion":"admission.k8s.io/v1"`},
		"a v1beta1 review is answered as v1beta1":           {"/validate", v1beta1, "application/json", 200, `"apiVersion":"admission.k8s.io/v1beta1"`},
		"8 MiB, over the 7 MiB an API server sends, is 413": {"/mutate", `{"x":"` + strings.Repeat("a", 8<<20) + `"}`, "application/json", 413, "too large"},
		"a 6.5 MiB Pod, under that limit, is evaluated":     {"/validate", huge, "application/json", 200, `"allowed":true`},
		"an object that is not a JSON object is 400":        {"/validate", notAnObject, "application/json", 400, "object is not a JSON object"},
		"fields of the wrong type are evaluated, not 500":   {"/validate", wrongTypes, "application/json", 200, `"uid":"u1"`},
		"deeply nested JSON is 400":                         {"/mutate", strings.Repeat("[", 100000), "application/json", 400, "max depth"},
		"a form post is 400":                                {"/validate", "a=b", "application/x-www-form-urlencoded", 400, "contentType"},
		"an unknown path is 404":                            {"/admit", review, "application/json", 404, ""},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := client.Post("https://"+addr+tc.path, tc.contentType, bytes.NewBufferString(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			if tc.code == http.StatusNotFound {
				if resp.StatusCode != http.StatusNotFound {
					t.Fatalf("got HTTP %d, want 404", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusOK || answerCode(t, buf.Bytes()) != tc.code || !strings.Contains(buf.String(), tc.want) {
				t.Fatalf("got HTTP %d %.300s; want HTTP 200, code %d, with %q", resp.StatusCode, buf.String(), tc.code, tc.want)
			}
		})
	}
}

// answerCode is the code of an AdmissionReview answer: response.status.code,
// or 200 when an allowed answer has no status.
func answerCode(t *testing.T, body []byte) int {
	t.Helper()
	var out struct {
		Response *struct {
			Status *struct {
				Code int `json:"code"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Response == nil {
		t.Fatalf("answer is not an AdmissionReview: %v: %.300s", err, body)
	}
	if out.Response.Status == nil || out.Response.Status.Code == 0 {
		return http.StatusOK
	}
	return out.Response.Status.Code
}

// A client that sends its headers and then trickles the body, or stops,
// gets a 400 once --body-timeout has passed, and its connection is closed:
// it does not hold a connection and a goroutine for as long as it likes.
func TestSlowBodyIsCutOffAfterBodyTimeout(t *testing.T) {
	addr, pool := serveIn(t, t.TempDir(), func(o *Options) { o.BodyTimeout = 500 * time.Millisecond })
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /validate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(review), review[:20])
	// The deadline only keeps a broken server from hanging the test.
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || answerCode(t, body) != http.StatusBadRequest || !strings.Contains(string(body), "timeout") {
		t.Fatalf("got HTTP %d %s, want a 400 naming the timeout", resp.StatusCode, body)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("connection still open after the answer (read: %v)", err)
	}
}

// A client that never finishes its headers has its connection closed
// (controller-runtime's server gives headers 32s): a slowloris holds no
// connection for long. It takes that long, so it runs beside the others.
func TestUnfinishedHeadersAreCutOff(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits out the 32s header timeout")
	}
	addr, pool := serve(t)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /validate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n", addr)
	// The deadline only keeps a broken server from hanging the test.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	start := time.Now()
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v with unfinished headers", time.Since(start).Round(time.Second))
	}
	t.Logf("closed after %v (%d bytes answered, %v)", time.Since(start).Round(time.Second), n, err)
}
