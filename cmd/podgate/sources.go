package main

import (
	"io/fs"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// policySources is the policy set the commands load: the built-in
// policies, the custom ones of dir and the config file. A dir that is a
// built-in tree itself (the repository's policies/ folder, or a copy of it
// being edited: a data.yaml holding podgate.config at its top) takes the
// place of the embedded policies rather than adding to them, so that
// `podgate test policies` tests the files as they are on disk.
func policySources(dir, config string) engine.Sources {
	if builtinTree(dir) {
		return engine.Sources{Builtin: os.DirFS(dir), ConfigFile: config}
	}
	return engine.Sources{Builtin: policies.FS, PolicyDir: dir, ConfigFile: config}
}

// builtinTree says whether dir holds a built-in policy tree: policies/
// data.yaml with the config defaults.
func builtinTree(dir string) bool {
	if dir == "" {
		return false
	}
	raw, err := os.ReadFile(filepath.Join(dir, "data.yaml"))
	if err != nil {
		return false
	}
	var doc struct {
		Podgate struct {
			Config map[string]any `json:"config"`
		} `json:"podgate"`
	}
	return yaml.Unmarshal(raw, &doc) == nil && doc.Podgate.Config != nil
}

// builtinFS is the tree of built-in policies, tests and testdata that
// `podgate test` runs: dir when it is one (policySources), else the
// embedded one.
func builtinFS(dir string) fs.FS {
	if builtinTree(dir) {
		return os.DirFS(dir)
	}
	return policies.FS
}
