package loadgen

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// server answers /ok with an AdmissionReview and /fail with a 500, over
// HTTPS, and counts the connections it accepted.
func server(t *testing.T) (*httptest.Server, *x509.CertPool, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"response":{"uid":%q,"allowed":true}}`, bytes.TrimSpace(body))
	}))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return ts, pool, &conns
}

func TestOpenLoopSendsAtTheRateOverKeptAliveConnections(t *testing.T) {
	ts, pool, conns := server(t)
	res, err := Run(t.Context(), Options{
		URL: ts.URL, RootCAs: pool, Rate: 200, Duration: time.Second, Warmup: 200 * time.Millisecond,
		Requests: []Request{{Name: "ok", Path: "/ok", Body: []byte("abc")}},
		Check: func(_ Request, body []byte) error {
			if !strings.Contains(string(body), `"uid":"abc"`) {
				return fmt.Errorf("answer %s has not the request's uid", body)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Summary()
	if st.Requests < 190 || st.Requests > 201 {
		t.Errorf("%d requests in 1s at 200/s, want about 200", st.Requests)
	}
	if st.Errors != 0 || st.P50 <= 0 || st.P99 < st.P50 || st.Max < st.P99 {
		t.Errorf("stats %v: want no errors and ordered percentiles", st)
	}
	if n := conns.Load(); n > 50 {
		t.Errorf("%d connections for 240 requests: keep-alive is not working", n)
	}
}

func TestClosedLoopCountsErrorsAndStopsAtMaxRequests(t *testing.T) {
	ts, pool, _ := server(t)
	res, err := Run(t.Context(), Options{
		URL: ts.URL, RootCAs: pool, Workers: 4, Duration: 5 * time.Second, MaxRequests: 300,
		Requests: []Request{{Path: "/ok", Body: []byte("a")}, {Path: "/fail", Body: []byte("b")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Summary()
	if st.Requests != 300 || st.Errors != 150 {
		t.Errorf("%d requests, %d errors; want 300 and 150 (every /fail)", st.Requests, st.Errors)
	}
	if res.ErrorsBy["/fail: HTTP 500"] != 150 {
		t.Errorf("errors by text: %v", res.ErrorsBy)
	}
	if res.Elapsed > 4*time.Second {
		t.Errorf("took %s: MaxRequests did not stop the run", res.Elapsed)
	}
}

func TestOnlyLoopbackIsLoadTested(t *testing.T) {
	for _, u := range []string{"https://10.0.0.1:443", "https://example.com", "http://127.0.0.1:80"} {
		o := Options{URL: u, Duration: time.Second, Requests: []Request{{Path: "/"}}}
		if err := o.Validate(); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}

func TestPercentilesOfKnownLatencies(t *testing.T) {
	var samples []Sample
	for i := 1; i <= 1000; i++ {
		samples = append(samples, Sample{Latency: time.Duration(i) * time.Millisecond})
	}
	samples = append(samples, Sample{Failed: true})
	st := Summarize(samples, time.Second)
	if st.P50 != 501*time.Millisecond || st.P99 != 991*time.Millisecond || st.Max != time.Second || st.Errors != 1 || st.Throughput != 1000 {
		t.Errorf("stats %+v", st)
	}
}

func TestExpectJudgesEveryAnswerThroughTheGivenClient(t *testing.T) {
	ts, _, _ := server(t)
	client := ts.Client() // trusts the test server's certificate; RootCAs stays unset
	var statuses atomic.Int64
	res, err := Run(t.Context(), Options{
		URL: ts.URL, Client: client, Workers: 2, Duration: 5 * time.Second, MaxRequests: 100,
		Requests: []Request{{Name: "ok", Path: "/ok", Body: []byte("a")}, {Name: "fail", Path: "/fail", Body: []byte("b")}},
		Expect: func(req Request, resp *http.Response, _ []byte) error {
			statuses.Add(1)
			if req.Name == "fail" && resp.StatusCode == http.StatusInternalServerError {
				return nil // the expected answer to this one
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: HTTP %d", req.Name, resp.StatusCode)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := res.Summary(); st.Requests != 100 || st.Errors != 0 || statuses.Load() != 100 {
		t.Errorf("%d requests, %d errors, %d judged; want 100, 0 and 100 (the 500s expected)", st.Requests, st.Errors, statuses.Load())
	}
}
