package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTheChartREADMEIsUpToDateWithValuesYAML(t *testing.T) {
	dir := filepath.Join("..", "..", "charts", "podgate")
	if err := run(dir, true); err != nil {
		t.Fatal(err)
	}
}

func TestGenerate(t *testing.T) {
	chart := []byte("name: demo\ndescription: A demo.\nversion: 1.0.0\nappVersion: \"2.0\"\nkubeVersion: \">=1.30.0-0\"\n")
	tests := []struct {
		name    string
		values  string
		want    []string
		wantErr string
	}{
		{
			name:   "each leaf becomes a row with its type, default and comment",
			values: "# Replicas.\nreplicas: 2\nimage:\n  # The tag | pinned.\n  tag: \"1.0\"\n  # Pull secrets.\n  secrets: [a, b]\n# Extra labels.\nlabels: {}\n",
			want: []string{
				"| `replicas` | int | `2` | Replicas. |",
				"| `image.tag` | string | `\"1.0\"` | The tag \\| pinned. |",
				"| `image.secrets` | list | `[a, b]` | Pull secrets. |",
				"| `labels` | object | `{}` | Extra labels. |",
				"podgate 2.0, Kubernetes >=1.30.0-0",
			},
		},
		{
			name:   "a documented map is a heading row of its own",
			values: "# Resources of the pod.\nresources:\n  # CPU.\n  cpu: 100m\n",
			want:   []string{"| `resources` | object |  | Resources of the pod. |", "| `resources.cpu` | string | `\"100m\"` | CPU. |"},
		},
		{
			name:    "an undocumented value is an error naming its line",
			values:  "# Documented.\na: 1\nb:\n  c: 2\n",
			wantErr: "values.yaml:4: b.c has no comment",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Generate(chart, []byte(tt.values))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !bytes.Contains(got, []byte(w)) {
					t.Errorf("README lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestCheckFailsOnAStaleREADME(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"Chart.yaml": "name: demo\n", "values.yaml": "# A.\na: 1\n", "README.md": "old\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := run(dir, true); err == nil || !strings.Contains(err.Error(), "make chart-readme") {
		t.Fatalf("check of a stale README = %v, want an error saying how to fix it", err)
	}
	if err := run(dir, false); err != nil {
		t.Fatal(err)
	}
	if err := run(dir, true); err != nil {
		t.Errorf("check right after writing = %v", err)
	}
}
