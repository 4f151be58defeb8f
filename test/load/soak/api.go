package soak

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/test/bench"
	"github.com/podgate/podgate/test/load/loadgen"
)

const (
	// webhookRequestsPerCreate: a create passes the mutating webhook, then
	// the validating one. Nothing mutates the object after podgate, so the
	// API server does not call /mutate again (reinvocationPolicy
	// IfNeeded); the report checks the ratio against the webhook's count.
	webhookRequestsPerCreate = 2
	// apiTimeout is longer than the webhook configurations' timeoutSeconds
	// (10s), so that a slow webhook shows as the API server's own "failed
	// calling webhook" answer rather than as the client giving up first.
	apiTimeout = 15 * time.Second
	// fixturePriority is the value of the PriorityClasses the testdata
	// objects name: the Priority admission plugin refuses a Pod whose
	// class does not exist, before any webhook sees it.
	fixturePriority = 1000
)

func (s *soaker) directPhase() phase {
	return phase{
		name:    PhaseDirect,
		about:   "loadgen -> webhook over HTTPS, /validate and /mutate of each testdata object",
		target:  s.o.Rate,
		perSend: 1,
		load: loadgen.Options{
			URL: s.url, RootCAs: s.roots, Requests: s.mix, Rate: s.o.Rate, Expect: s.expectReview,
		},
	}
}

// apiPhase creates what the testdata objects need in the cluster
// (namespaces, PriorityClasses) and returns the phase: a dry-run create
// of each object in turn, through the API server, which calls /mutate
// then /validate for each, with the failurePolicy Fail the chart ships.
func (s *soaker) apiPhase(ctx context.Context) (phase, error) {
	var reqs []loadgen.Request
	for _, name := range bench.ObjectNames {
		obj := bench.Object(name)
		path, err := createPath(obj)
		if err != nil {
			return phase{}, fmt.Errorf("%s: %w", name, err)
		}
		if err := s.createFixtures(ctx, obj); err != nil {
			return phase{}, fmt.Errorf("%s: %w", name, err)
		}
		reqs = append(reqs, loadgen.Request{Name: "create/" + name, Path: path + "?dryRun=All", Body: obj})
	}
	cfg := s.c.RESTConfig()
	client, err := apiClient(cfg)
	if err != nil {
		return phase{}, err
	}
	rate := s.o.apiRate()
	return phase{
		name: PhaseAPI,
		about: fmt.Sprintf("client -> kube-apiserver (HTTP/2, dryRun=All creates at %g/s) -> webhook /mutate and /validate",
			rate/webhookRequestsPerCreate),
		target:  rate,
		perSend: webhookRequestsPerCreate,
		load: loadgen.Options{
			// envtest's Host ends in "/"; the paths begin with one.
			URL: strings.TrimSuffix(cfg.Host, "/"), Client: client, Requests: reqs, Rate: rate / webhookRequestsPerCreate, Expect: s.expectCreate,
			Timeout: apiTimeout,
		},
	}, nil
}

// apiClient speaks to the API server as client-go does: HTTP/2, the
// admin's client certificate.
func apiClient(cfg *rest.Config) (*http.Client, error) {
	tc, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("API server TLS: %w", err)
	}
	return &http.Client{
		Timeout: apiTimeout,
		Transport: &http.Transport{
			TLSClientConfig:    tc,
			ForceAttemptHTTP2:  true,
			IdleConnTimeout:    time.Minute,
			DisableCompression: true,
		},
	}, nil
}

func tlsConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// objectMeta is what the API phase reads of a testdata object.
type objectMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		PriorityClassName string `json:"priorityClassName"`
		Template          struct {
			Spec struct {
				PriorityClassName string `json:"priorityClassName"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// createPath is the collection an object is created in:
// /apis/apps/v1/namespaces/shop/deployments.
func createPath(obj []byte) (string, error) {
	var m objectMeta
	if err := json.Unmarshal(obj, &m); err != nil {
		return "", err
	}
	if m.Kind == "" || m.APIVersion == "" || m.Metadata.Namespace == "" {
		return "", fmt.Errorf("want apiVersion, kind and metadata.namespace; got %q %q %q", m.APIVersion, m.Kind, m.Metadata.Namespace)
	}
	prefix := "/apis/" + m.APIVersion
	if !strings.Contains(m.APIVersion, "/") {
		prefix = "/api/" + m.APIVersion
	}
	// The testdata kinds' plurals are their lower-case names plus "s".
	return prefix + "/namespaces/" + m.Metadata.Namespace + "/" + strings.ToLower(m.Kind) + "s", nil
}

// createFixtures creates the namespace and the PriorityClass obj names.
func (s *soaker) createFixtures(ctx context.Context, obj []byte) error {
	var m objectMeta
	if err := json.Unmarshal(obj, &m); err != nil {
		return err
	}
	fixtures := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: m.Metadata.Namespace}}}
	for _, pc := range []string{m.Spec.PriorityClassName, m.Spec.Template.Spec.PriorityClassName} {
		if pc != "" {
			fixtures = append(fixtures, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: pc}, Value: fixturePriority})
		}
	}
	for _, f := range fixtures {
		if err := s.c.Client().Create(ctx, f); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %T %s: %w", f, f.GetName(), err)
		}
	}
	return nil
}
