package policies

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Case is one testdata case: an object, the request around it, and the
// rules of its policy that must fire. `opa test` loads the same files as
// data.<policy>.testdata.<case>; the Go handler tests and `podgate test`
// run them through the full engine.
type Case struct {
	Policy      string                     `json:"-"` // the folder's name
	Name        string                     `json:"-"` // the case folder's name
	File        string                     `json:"-"`
	Description string                     `json:"description"`
	Operation   string                     `json:"operation"`
	Namespace   string                     `json:"namespace"`
	Object      json.RawMessage            `json:"object"`
	OldObject   json.RawMessage            `json:"oldObject"`
	Nodes       map[string]json.RawMessage `json:"nodes"`
	Expect      struct {
		Violations []string `json:"violations"`
		Mutations  []string `json:"mutations"`
	} `json:"expect"`
}

// LoadCases reads every <policy>/testdata/<case>/data.yaml of fsys;
// prefix is put before file names in errors (the folder fsys stands for).
func LoadCases(fsys fs.FS, prefix string) ([]Case, error) {
	files, err := fs.Glob(fsys, "*/testdata/*/data.yaml")
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	cases := make([]Case, 0, len(files))
	for _, f := range files {
		c, err := loadCase(fsys, f, prefix)
		if err != nil {
			return nil, err
		}
		cases = append(cases, c)
	}
	return cases, nil
}

func loadCase(fsys fs.FS, name, prefix string) (Case, error) {
	var c Case
	file := path.Join(prefix, name)
	raw, err := fs.ReadFile(fsys, name)
	if err != nil {
		return c, err
	}
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		return c, fmt.Errorf("%s: %w", file, err)
	}
	parts := strings.Split(name, "/")
	c.File, c.Name, c.Policy = file, parts[len(parts)-2], parts[len(parts)-4]
	if len(c.Object) == 0 {
		return c, fmt.Errorf("%s: no object", file)
	}
	if c.Operation == "" {
		c.Operation = "CREATE"
	}
	if c.Namespace == "" {
		var meta struct {
			Metadata struct {
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(c.Object, &meta)
		c.Namespace = meta.Metadata.Namespace
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	return c, nil
}
