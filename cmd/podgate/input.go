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
	Index  int    // position among the file's YAML documents, from 0
	Raw    []byte // the object as JSON
	GVK    schema.GroupVersionKind
	Name   string
	Ns     string
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

func admittedKinds() string {
	var kinds []string
	for gvk := range admitted {
		kinds = append(kinds, gvk.GroupVersion().String()+" "+gvk.Kind)
	}
	slices.Sort(kinds)
	return strings.Join(kinds, ", ")
}

// readDocuments reads every object of path: a file, a directory (its
// .yaml, .yml and .json files in name order; sub-directories only when
// recursive, as with kubectl apply -R) or "-".
func readDocuments(path string, recursive bool, stdin io.Reader) ([]document, error) {
	if path == "-" {
		raw, err := io.ReadAll(stdin)
		if err != nil {
			return nil, badInput("read standard input: %w", err)
		}
		return splitDocuments("-", raw)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, badInput("%w", err)
	}
	files := []string{path}
	if info.IsDir() {
		files = nil
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && p != path && !recursive {
				return filepath.SkipDir
			}
			if err == nil && !d.IsDir() && slices.Contains([]string{".yaml", ".yml", ".json"}, filepath.Ext(p)) {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return nil, badInput("%w", err)
		}
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

// splitDocuments decodes multi-document YAML or JSON; a List (what
// `kubectl get -o yaml` prints) is expanded into its items.
func splitDocuments(source string, raw []byte) ([]document, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var docs []document
	for i := 0; ; i++ {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, badInput("%s#%d: not YAML or JSON: %v", source, i, err)
		}
		if obj == nil {
			continue // an empty document between two ---
		}
		if items, ok := obj["items"].([]any); ok && strings.HasSuffix(fmt.Sprint(obj["kind"]), "List") {
			for _, item := range items {
				d, err := newDocument(source, i, item)
				if err != nil {
					return nil, err
				}
				docs = append(docs, d)
			}
			continue
		}
		d, err := newDocument(source, i, obj)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
}

func newDocument(source string, index int, obj any) (document, error) {
	d := document{Source: source, Index: index}
	m, ok := obj.(map[string]any)
	if !ok {
		return d, badInput("%s: not a Kubernetes object", d.where())
	}
	apiVersion, _ := m["apiVersion"].(string)
	kind, _ := m["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || apiVersion == "" || kind == "" {
		return d, badInput("%s: an object needs apiVersion and kind", d.where())
	}
	d.GVK = gv.WithKind(kind)
	if _, ok := admitted[d.GVK]; !ok {
		return d, badInput("%s: unknown kind %s %s: podgate admits %s", d.where(), apiVersion, kind, admittedKinds())
	}
	meta, ok := m["metadata"].(map[string]any)
	if !ok {
		return d, badInput("%s: %s has no metadata", d.where(), kind)
	}
	d.Name, _ = meta["name"].(string)
	d.Ns, _ = meta["namespace"].(string)
	if d.Name == "" {
		if g, _ := meta["generateName"].(string); g == "" {
			return d, badInput("%s: %s has no metadata.name", d.where(), kind)
		}
	}
	if d.Raw, err = json.Marshal(m); err != nil {
		return d, badInput("%s: %v", d.where(), err)
	}
	return d, nil
}
