package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/podgate/podgate/internal/testenv"
	"github.com/podgate/podgate/validate"
)

func parse(t *testing.T, args ...string) (Options, error) {
	t.Helper()
	var got Options
	err := newCommand(func(_ context.Context, o Options) error { got = o; return nil }).Execute(t.Context(), args)
	return got, err
}

func TestFlagsOverrideDefaults(t *testing.T) {
	o, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if o.Port != DefaultPort || o.CertDir != DefaultCertDir || o.EvalTimeout != DefaultEvalTimeout || o.BodyTimeout != DefaultBodyTimeout || o.EnableHTTP2 {
		t.Fatalf("defaults: %+v", o)
	}
	o, err = parse(t, "--port", "8443", "--cert-dir", "/certs", "--policy-dir", "/p", "--config", "/c.yaml",
		"--eval-timeout", "1s", "--body-timeout", "2s", "--metrics-bind-address", "127.0.0.1:9", "--health-probe-bind-address", ":7")
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Port: 8443, CertDir: "/certs", PolicyDir: "/p", ConfigFile: "/c.yaml", EvalTimeout: time.Second,
		BodyTimeout: 2 * time.Second, MetricsAddr: "127.0.0.1:9", ProbeAddr: ":7", Audit: newAuditOptions()}
	o.Zap = want.Zap
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("got %+v, want %+v", o, want)
	}
}

func TestAuditFlags(t *testing.T) {
	o, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if o.Audit.Enabled || !o.Audit.LeaderElect || o.Audit.Interval != time.Hour {
		t.Fatalf("audit defaults: off, leader election on, hourly rescan; got %+v", o.Audit)
	}
	o, err = parse(t, "--audit", "--audit-interval", "10m", "--audit-max-results", "5", "--audit-write-qps", "3.5",
		"--audit-pass-results", "--audit-workers", "2", "--leader-elect=false", "--leader-election-namespace", "ops")
	if err != nil {
		t.Fatal(err)
	}
	a := o.Audit
	if !a.Enabled || a.Interval != 10*time.Minute || a.MaxResults != 5 || a.WriteQPS != 3.5 || !a.PassResults ||
		a.Workers != 2 || a.LeaderElect || a.LeaseNamespace != "ops" {
		t.Fatalf("got %+v", a)
	}
	_, err = parse(t, "--audit-interval", "5s", "--audit-max-results", "-1", "--audit-write-qps", "-2", "--audit-workers", "-3")
	for _, want := range []string{"--audit-interval 5s", "--audit-max-results -1", "--audit-write-qps -2", "--audit-workers -3"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

func TestBadFlagsAreAllReported(t *testing.T) {
	_, err := parse(t, "--port", "0", "--eval-timeout", "-1s", "--body-timeout", "0s", "--cert-dir", "")
	for _, want := range []string{"--port 0", "--eval-timeout -1s", "--body-timeout 0s", "--cert-dir"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	if _, err := parse(t, "extra"); err == nil {
		t.Error("stray arguments must be rejected")
	}
}

const review = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
"namespace":"default","operation":"CREATE","userInfo":{"username":"u"},
"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx:1.27",
"ports":[{"containerPort":80}],"readinessProbe":{"tcpSocket":{"port":80}},"livenessProbe":{"tcpSocket":{"port":80}}}]}}}}`

const configMapReview = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u2",
"kind":{"group":"","version":"v1","kind":"ConfigMap"},"resource":{"group":"","version":"v1","resource":"configmaps"},
"namespace":"default","operation":"CREATE","userInfo":{"username":"u"},
"object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"b"}}}}`

// TestHTTPAnswers checks the answers of the error scheme (package review)
// that controller-runtime's decoder and podgate's request checks give:
// HTTP 200 every time, the code and the reason in the AdmissionReview.
func TestHTTPAnswers(t *testing.T) {
	h := &webhook.Admission{
		Handler:      &validate.Handler{Engine: testenv.Engine(t, ""), Log: logr.Discard()},
		RecoverPanic: ptr.To(true),
	}
	for name, tc := range map[string]struct {
		body        string
		contentType string
		code        int32
		allowed     bool
		reason      string
	}{
		"a good review is allowed":                        {review, "application/json", 200, true, ""},
		"an empty body gets 400":                          {"", "application/json", 400, false, "request body is empty"},
		"a body that is not JSON gets 400":                {"{not json", "application/json", 400, false, "couldn't get version/kind"},
		"JSON of the wrong type gets 400":                 {`[1,2]`, "application/json", 400, false, ""},
		"a review without request gets 400":               {`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, "application/json", 400, false, "no uid"},
		"a wrong content type gets 400":                   {review, "text/plain", 400, false, "contentType=text/plain"},
		"a 10 MiB body gets 413":                          {`{"x":"` + strings.Repeat("a", 10<<20) + `"}`, "application/json", 413, false, "too large"},
		"a review without object gets 400 with a reason":  {strings.Replace(review, `"object"`, `"unused"`, 1), "application/json", 400, false, "has no object"},
		"an object of a kind no policy checks is allowed": {configMapReview, "application/json", 200, true, ""},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewBufferString(tc.body))
			if tc.body == "" {
				req = httptest.NewRequest(http.MethodPost, "/validate", http.NoBody)
			}
			req.Header.Set("Content-Type", tc.contentType)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var out struct {
				Response struct {
					Allowed bool `json:"allowed"`
					Status  struct {
						Code    int32  `json:"code"`
						Message string `json:"message"`
					} `json:"status"`
				} `json:"response"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("answer is not an AdmissionReview: %v: %s", err, rec.Body.String())
			}
			r := out.Response
			if rec.Code != http.StatusOK || r.Status.Code != tc.code || r.Allowed != tc.allowed || !strings.Contains(r.Status.Message, tc.reason) {
				t.Fatalf("got HTTP %d, code %d allowed=%v %q; want HTTP 200, code %d allowed=%v with %q",
					rec.Code, r.Status.Code, r.Allowed, r.Status.Message, tc.code, tc.allowed, tc.reason)
			}
		})
	}
}
