package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// document is one Kubernetes object read from a file.
type document struct {
	Source string // file name, or "-" for standard input
	Index  int    // the object's position in its file, from 1 (see decodeObjects)
	Raw    []byte // the object as JSON
	GVK    schema.GroupVersionKind
	Name   string
	Ns     string
	// Unchecked says why podgate does not look at this object at all (a
	// kind the webhooks are not registered for); "" for the kinds it checks.
	Unchecked string
}

func (d document) where() string { return fmt.Sprintf("%s#%d", d.Source, d.Index) }

// admitted are the kinds podgate's webhooks receive, with their resources.
var admitted = map[schema.GroupVersionKind]string{
	{Version: "v1", Kind: "Pod"}:                        "pods",
	{Group: "apps", Version: "v1", Kind: "Deployment"}:  "deployments",
	{Group: "apps", Version: "v1", Kind: "StatefulSet"}: "statefulsets",
	{Group: "apps", Version: "v1", Kind: "DaemonSet"}:   "daemonsets",
	{Group: "apps", Version: "v1", Kind: "ReplicaSet"}:  "replicasets",
	{Group: "batch", Version: "v1", Kind: "Job"}:        "jobs",
	{Group: "batch", Version: "v1", Kind: "CronJob"}:    "cronjobs",
}

// readDocuments reads every object of path: a file, a directory (its
// .yaml, .yml and .json files in name order; sub-directories only when
// recursive, as with kubectl apply -R) or "-". A recursive walk leaves out
// the testdata folders of policy folders (podgate test cases, which
// `podgate test` runs), and says so on warn.
func readDocuments(path string, recursive bool, stdin io.Reader, warn io.Writer) ([]document, error) {
	if path == "-" {
		raw, err := io.ReadAll(stdin)
		if err != nil {
			return nil, badInput("read standard input: %w", err)
		}
		return splitDocuments("-", raw)
	}
	files, err := manifestFiles(path, recursive, warn)
	if err != nil {
		return nil, err
	}
	var docs []document
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, badInput("%w", err)
		}
		d, err := splitDocuments(f, raw)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d...)
	}
	return docs, nil
}

// manifestFiles lists the files readDocuments reads for path.
func manifestFiles(path string, recursive bool, warn io.Writer) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, badInput("%w", err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && p != path && !recursive:
			return filepath.SkipDir
		case d.IsDir() && d.Name() == "testdata" && holdsPolicies(filepath.Dir(p)):
			fmt.Fprintf(warn, "podgate: skipping %s: test cases of the policies in %s (podgate test runs them)\n", p, filepath.Dir(p))
			return filepath.SkipDir
		case !d.IsDir() && slices.Contains([]string{".yaml", ".yml", ".json"}, filepath.Ext(p)):
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, badInput("%w", err)
	}
	return files, nil
}

// holdsPolicies says whether dir holds .rego files: a policy folder.
func holdsPolicies(dir string) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.rego"))
	return len(matches) > 0
}

// rawObject is one object of a file, as decodeObjects found it.
type rawObject struct {
	index int
	obj   map[string]any
}

// decodeObjects decodes multi-document YAML or JSON and counts its objects
// as a reader of the file would: from 1, each item of a List (what
// `kubectl get -o yaml` prints) on its own, and empty documents (a
// leading ---, two in a row) not at all.
func decodeObjects(source string, raw []byte) ([]rawObject, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []rawObject
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, badInput("%s#%d: not YAML or JSON: %v", source, len(out)+1, err)
		}
		if obj == nil {
			continue // an empty document
		}
		items, isList := obj["items"].([]any)
		if !isList || !strings.HasSuffix(fmt.Sprint(obj["kind"]), "List") {
			out = append(out, rawObject{index: len(out) + 1, obj: obj})
			continue
		}
		for _, item := range items {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, badInput("%s#%d: an item of a %v is not an object", source, len(out)+1, obj["kind"])
			}
			out = append(out, rawObject{index: len(out) + 1, obj: m})
		}
	}
}

// splitDocuments decodes the objects of a file into documents.
func splitDocuments(source string, raw []byte) ([]document, error) {
	objs, err := decodeObjects(source, raw)
	if err != nil {
		return nil, err
	}
	docs := make([]document, 0, len(objs))
	for _, o := range objs {
		d, err := newDocument(source, o.index, o.obj)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
	return docs, nil
}

func newDocument(source string, index int, m map[string]any) (document, error) {
	d := document{Source: source, Index: index}
	if m == nil {
		return d, badInput("%s: not a Kubernetes object", d.where())
	}
	apiVersion, _ := m["apiVersion"].(string)
	kind, _ := m["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	switch {
	case apiVersion == "" && kind == "" && m["object"] != nil && m["expect"] != nil:
		return d, badInput("%s: a podgate testdata case, not a Kubernetes object: `podgate test` runs it", d.where())
	case err != nil || apiVersion == "" || kind == "":
		return d, badInput("%s: an object needs apiVersion and kind", d.where())
	}
	d.GVK = gv.WithKind(kind)
	meta, hasMeta := m["metadata"].(map[string]any)
	d.Name, _ = meta["name"].(string)
	d.Ns, _ = meta["namespace"].(string)
	if _, ok := admitted[d.GVK]; !ok {
		// As in a cluster: the webhooks are not called for it.
		d.Unchecked = fmt.Sprintf("podgate checks no %s %s: the webhooks are not called for it", apiVersion, kind)
	} else {
		if !hasMeta {
			return d, badInput("%s: %s has no metadata", d.where(), kind)
		}
		if g, _ := meta["generateName"].(string); d.Name == "" && g == "" {
			return d, badInput("%s: %s has no metadata.name", d.where(), kind)
		}
	}
	if d.Raw, err = json.Marshal(m); err != nil {
		return d, badInput("%s: %v", d.where(), err)
	}
	return d, nil
}
