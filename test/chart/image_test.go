package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// No Docker engine runs where these tests run, so the Dockerfile is kept
// correct by reading it: these tests read it, and .dockerignore, the way
// `docker build` would.

func TestTheDockerfileBuildsAStaticNonRootImage(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(data)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The image is built with the Go release go.mod's toolchain line names:
	// the patched release `make vulncheck` was run against.
	goVersion := regexp.MustCompile(`(?m)^toolchain go(\d+\.\d+\.\d+)$`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod names no toolchain go1.x.y")
	}
	tests := []struct {
		name, pattern string
	}{
		{"the builder's Go is go.mod's toolchain", `ARG GO_VERSION=` + regexp.QuoteMeta(string(goVersion[1])) + `\n`},
		{"the builder is the official Go image", `FROM --platform=\$BUILDPLATFORM golang:\$\{GO_VERSION\} AS build`},
		{"cgo is off, so the binary is static", `CGO_ENABLED=0`},
		{"paths are trimmed", `go build -trimpath`},
		{"the version comes from the VERSION build argument", `ARG VERSION=dev[\s\S]*-X main\.version=\$\{VERSION\}`},
		{"it builds the webhook command", `-o /out/webhook \./cmd/webhook\n`},
		{"the base is distroless static, pinned by digest", `\nFROM gcr\.io/distroless/static-debian12@sha256:[0-9a-f]{64}\n`},
		{"it runs as the UID the chart's securityContext names", `\nUSER 65532:65532\n`},
		{"the entrypoint is the webhook", `\nENTRYPOINT \["/webhook"\]\n?$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !regexp.MustCompile(tt.pattern).MatchString(dockerfile) {
				t.Errorf("Dockerfile does not match %s", tt.pattern)
			}
		})
	}
	if chart, err := os.ReadFile(filepath.Join(chartDir(), "templates", "deployment.yaml")); err != nil || !strings.Contains(string(chart), "runAsUser: 65532") {
		t.Errorf("the chart must run the image as 65532 (err %v)", err)
	}
}

// TestTheDockerBuildContextHoldsEveryPackageOfTheWebhook checks that
// .dockerignore leaves in every folder the webhook's packages (and the
// policies they embed) live in.
func TestTheDockerBuildContextHoldsEveryPackageOfTheWebhook(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var ignored []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			ignored = append(ignored, strings.TrimSuffix(line, "/"))
		}
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd/webhook")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dirs := append(strings.Fields(string(out)), filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum"))
	for _, dir := range dirs {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, pattern := range ignored {
			if match, _ := filepath.Match(pattern, strings.Split(rel, string(filepath.Separator))[0]); match {
				t.Errorf(".dockerignore pattern %q leaves %s out of the build context", pattern, rel)
			}
		}
	}
}
