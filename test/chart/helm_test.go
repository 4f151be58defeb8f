package chart

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/podgate/podgate/certs"
)

const (
	// release and namespace of the rendered chart, as docs/install.md
	// installs it.
	release   = "podgate"
	namespace = "podgate-system"
	// helmTimeout bounds one Helm run: rendering takes a fraction of a
	// second, an install a few seconds.
	helmTimeout = 2 * time.Minute
)

func chartDir() string { return filepath.Join(root, "charts", "podgate") }

// values is a values file's content.
type values = map[string]any

// tlsModes are the values of each TLS mode the tests cover. manual gets a
// real CA certificate as its caBundle.
func tlsModes(t *testing.T) map[string]values {
	t.Helper()
	return map[string]values{
		"cert-manager": {},
		"self":         {"tls": values{"mode": "self"}},
		"manual": {"tls": values{"mode": "manual", "manual": values{
			"secretName": "podgate-manual-tls",
			"caBundle":   base64.StdEncoding.EncodeToString(manualCA(t)),
		}}},
	}
}

var (
	manualCAOnce sync.Once
	manualCAPEM  []byte
	manualCAErr  error
)

func manualCA(t *testing.T) []byte {
	t.Helper()
	manualCAOnce.Do(func() {
		var ca *certs.CA
		if ca, manualCAErr = certs.NewCA("podgate-manual-ca", time.Hour); manualCAErr == nil {
			manualCAPEM = ca.CertPEM
		}
	})
	if manualCAErr != nil {
		t.Fatal(manualCAErr)
	}
	return manualCAPEM
}

// runHelm runs a Helm CLI with its own, empty config, cache and data dirs
// (nothing read from or written to the user's), against the test API
// server when there is one.
func runHelm(t *testing.T, bin string, v values, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	home := t.TempDir()
	if v != nil {
		data, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(home, "values.yaml")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--values", file)
	}
	ctx, cancel := context.WithTimeout(t.Context(), helmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	if bed != nil {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+bed.Kubeconfig())
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	t.Logf("%s %s", filepath.Base(bin), strings.Join(args, " "))
	err = cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return out.String(), errOut.String(), err
}

// render runs helm template and returns the manifest text.
func render(t *testing.T, bin string, v values) string {
	t.Helper()
	out, stderr, err := runHelm(t, bin, v, "template", release, chartDir(), "--namespace", namespace)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr)
	}
	return out
}

// objects is a rendered manifest, by "Kind/name".
type objects map[string]*unstructured.Unstructured

func decode(t *testing.T, manifest string) objects {
	t.Helper()
	out := objects{}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("decode rendered manifest: %v", err)
		}
		if obj == nil {
			continue // an empty document
		}
		u := &unstructured.Unstructured{Object: obj}
		key := u.GetKind() + "/" + u.GetName()
		if out[key] != nil {
			t.Fatalf("%s rendered twice", key)
		}
		out[key] = u
	}
}

// get returns the object, failing t when it was not rendered.
func (o objects) get(t *testing.T, key string) *unstructured.Unstructured {
	t.Helper()
	obj := o[key]
	if obj == nil {
		t.Fatalf("%s not rendered; rendered: %v", key, o.keys())
	}
	return obj
}

func (o objects) keys() []string {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// into converts an unstructured object into a typed one.
func into(t *testing.T, u *unstructured.Unstructured, typed any) {
	t.Helper()
	data, err := u.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, typed); err != nil {
		t.Fatalf("%s/%s as %T: %v", u.GetKind(), u.GetName(), typed, err)
	}
}
