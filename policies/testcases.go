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

// Case is one testdata case: an object, the request around it, and what
// its policy must do with it. `podgate test` judges every case through the
// full engine (docs/rule-contract.md, "Tests and test data"); `opa test`
// loads the same files as data.<policy>.testdata.<case> for the Rego unit
// tests that read them.
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
		// Violations are exactly the rule ids of the case's policy that
		// fire.
		Violations []string `json:"violations"`
		// Mutations are exactly the JSON pointers the case's policy adds,
		// replaces or removes (its notes aside); none when absent.
		Mutations []string `json:"mutations"`
		// Skipped says that the engine skips the object (an excluded
		// namespace, say), so no rule looks at it.
		Skipped bool `json:"skipped"`
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
	hasOld := len(c.OldObject) > 0 && string(c.OldObject) != "null"
	switch {
	case c.Operation != "CREATE" && c.Operation != "UPDATE":
		return c, fmt.Errorf("%s: operation %q: want CREATE or UPDATE", file, c.Operation)
	case c.Operation == "UPDATE" && !hasOld:
		return c, fmt.Errorf("%s: operation UPDATE needs an oldObject", file)
	case c.Operation == "CREATE" && hasOld:
		return c, fmt.Errorf("%s: an oldObject is for operation UPDATE", file)
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
