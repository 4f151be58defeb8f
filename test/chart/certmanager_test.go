package chart

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The cert-manager whose CRDs the install tests apply, from its Go module:
// `go mod download` fetches it through the module proxy into the module
// cache and checks it against the checksum database, and crdDir checks it
// against certManagerSum, so the CRDs are exactly those of the release.
const (
	certManagerModule  = "github.com/cert-manager/cert-manager"
	certManagerVersion = "v1.21.2"
	certManagerSum     = "h1:UWgoYM+KLNtRlqmoWOKjKBOBUPVHeepQ6/ac3ERJW68="
)

// certManagerCRDs are the CRDs the chart's cert-manager mode uses (the
// others, ACME's and ClusterIssuer, are applied too: a real install has
// them all).
var certManagerCRDs = []string{"certificates.cert-manager.io", "issuers.cert-manager.io", "certificaterequests.cert-manager.io"}

var crdsOnce struct {
	sync.Once
	err error
}

// crdDir downloads the cert-manager module at the pinned version (a no-op
// when it is in the module cache) and returns its deploy/crds folder, whose
// files are plain CRD manifests.
func crdDir() (string, error) {
	tmp, err := os.MkdirTemp("", "podgate-cert-manager-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// Outside any module, so the download touches no go.mod or go.sum.
	cmd := exec.Command("go", "mod", "download", "-json", certManagerModule+"@"+certManagerVersion)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w\n%s", certManagerModule, certManagerVersion, err, out)
	}
	var mod struct{ Dir, Sum, Error string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("go mod download: %w", err)
	}
	if mod.Error != "" {
		return "", fmt.Errorf("go mod download: %s", mod.Error)
	}
	if mod.Sum != certManagerSum {
		return "", fmt.Errorf("%s@%s has hash %s, pinned %s", certManagerModule, certManagerVersion, mod.Sum, certManagerSum)
	}
	return filepath.Join(mod.Dir, "deploy", "crds"), nil
}

// ensureCertManagerCRDs applies cert-manager's CRDs to the test API server
// once, and waits until they are served.
func ensureCertManagerCRDs(t *testing.T) {
	t.Helper()
	c := requireCluster(t)
	crdsOnce.Do(func() {
		dir, err := crdDir()
		if err != nil {
			crdsOnce.err = err
			return
		}
		// Server-side: the Certificate CRD is too large for the annotation
		// a client-side apply would store.
		if _, stderr, err := c.Kubectl(t.Context(), nil, "apply", "--server-side", "-f", dir); err != nil {
			crdsOnce.err = fmt.Errorf("apply cert-manager CRDs from %s: %w\n%s", dir, err, stderr)
			return
		}
		args := []string{"wait", "--for", "condition=Established", "--timeout", "60s"}
		for _, crd := range certManagerCRDs {
			args = append(args, "crd/"+crd)
		}
		if _, stderr, err := c.Kubectl(t.Context(), nil, args...); err != nil {
			crdsOnce.err = fmt.Errorf("wait for cert-manager CRDs: %w\n%s", err, stderr)
		}
	})
	if crdsOnce.err != nil {
		t.Fatal(crdsOnce.err)
	}
}

func TestCertManagerCRDsComeFromThePinnedModule(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads a module (-short)")
	}
	dir, err := crdDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, crd := range certManagerCRDs {
		group, plural := crd[strings.Index(crd, ".")+1:], crd[:strings.Index(crd, ".")]
		data, err := os.ReadFile(filepath.Join(dir, group+"_"+plural+".yaml"))
		if err != nil {
			t.Fatalf("cert-manager %s has no CRD file for %s: %v", certManagerVersion, crd, err)
		}
		if strings.Contains(string(data), "{{") {
			t.Errorf("%s is a template; it must be rendered before it is applied", crd)
		}
	}
}
