package chart

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/podgate/podgate/certs"
)

// Without the PolicyException and Report CRDs (a cluster where only the
// webhook was installed, or the CRDs were removed), the webhook serves
// admission all the same, says on /readyz?verbose what it does without,
// and takes the PolicyException CRD up as soon as it is installed.
func TestTheWebhookServesWithoutItsCRDsAndSaysSo(t *testing.T) {
	requireCluster(t)
	if _, stderr, err := bed.Kubectl(t.Context(), nil, "delete", "crd", "policyexceptions.podgate.dev", "reports.openreports.io",
		"--ignore-not-found", "--wait=true"); err != nil {
		t.Fatalf("delete the CRDs: %v\n%s", err, stderr)
	}
	binary := buildWebhook(t, t.TempDir())
	ca, err := certs.NewCA("test", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(nil, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := startReplica(t, binary, "no-crds", freePorts(t, 1)[0], []string{"--kubeconfig=" + bed.Kubeconfig(), "--audit", "--leader-elect=false"})
	if err := certs.WriteDir(r.certDir, ca, pair); err != nil {
		t.Fatal(err)
	}
	r.waitReady(t)
	readyz := func() string {
		body, status, err := get(t.Context(), "http://"+loopback(r.health)+"/readyz?verbose")
		if err != nil || status != 200 {
			t.Fatalf("/readyz: %d %v\n%s", status, err, body)
		}
		return body
	}
	deadline := time.Now().Add(30 * time.Second)
	for body := readyz(); !strings.Contains(body, "[!]audit:"); body = readyz() {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz?verbose says nothing of the audit:\n%s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	body := readyz()
	for _, want := range []string{
		"[!]exceptions: the PolicyException CRD (podgate.dev/v1alpha1) is not installed: no exception applies",
		"[!]audit: audit stopped", "Report CRD is not installed",
		"readyz check passed",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz?verbose lacks %q:\n%s", want, body)
		}
	}

	// Admission is served: the source notes' redis Pod is denied.
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
		"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
		"namespace":"default","operation":"CREATE","userInfo":{"username":"alice"},
		"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"redis","namespace":"default"},
		"spec":{"containers":[{"name":"redis","image":"redis","volumeMounts":[{"name":"d","mountPath":"/data"}]}],"volumes":[{"name":"d","emptyDir":{}}]}}}}`
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Post("https://"+loopback(r.port)+"/validate", "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(answer), `"allowed":false`) || !strings.Contains(string(answer), "[stateful-volumes/persistent-storage]") {
		t.Errorf("the redis Pod was not denied without the CRDs: %s", answer)
	}

	if _, stderr, err := bed.Kubectl(t.Context(), nil, "apply", "-f", chartDir()+"/crds/podgate.dev_policyexceptions.yaml"); err != nil {
		t.Fatalf("install the PolicyException CRD: %v\n%s", err, stderr)
	}
	for deadline := time.Now().Add(45 * time.Second); strings.Contains(readyz(), "[!]exceptions:"); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the webhook did not take up the PolicyException CRD:\n%s", readyz())
		}
	}
}
