package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podgate/podgate/api/v1alpha1"
	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/exception"
)

// readExceptions reads the PolicyExceptions of path: a file or a directory
// of .yaml, .yml and .json files, each with one or more documents or
// Lists. An exception without a namespace is in namespace.
func readExceptions(path, namespace string) ([]engine.Exception, error) {
	files := []string{path}
	if info, err := os.Stat(path); err != nil {
		return nil, badInput("--exceptions: %v", err)
	} else if info.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, badInput("--exceptions: %v", err)
		}
		files = nil
		for _, e := range entries {
			if !e.IsDir() && slices.Contains([]string{".yaml", ".yml", ".json"}, filepath.Ext(e.Name())) {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	var out []engine.Exception
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, badInput("--exceptions: %v", err)
		}
		list, err := decodeExceptions(f, raw, namespace)
		if err != nil {
			return nil, err
		}
		out = append(out, list...)
	}
	return out, nil
}

func decodeExceptions(file string, raw []byte, namespace string) ([]engine.Exception, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []engine.Exception
	for i := 1; ; i++ {
		var list v1alpha1.PolicyExceptionList
		var one v1alpha1.PolicyException
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, badInput("%s: document %d: not YAML or JSON: %v", file, i, err)
		}
		if doc == nil {
			i--
			continue
		}
		items := []v1alpha1.PolicyException{}
		switch doc["kind"] {
		case "PolicyException":
			if err := convert(doc, &one); err != nil {
				return nil, badInput("%s: document %d: %v", file, i, err)
			}
			items = append(items, one)
		case "PolicyExceptionList", "List":
			if err := convert(doc, &list); err != nil {
				return nil, badInput("%s: document %d: %v", file, i, err)
			}
			items = list.Items
		default:
			return nil, badInput("%s: document %d: a %v, not a PolicyException (%s)", file, i, doc["kind"], v1alpha1.GroupVersion)
		}
		for j := range items {
			if items[j].Namespace == "" {
				items[j].Namespace = namespace
			}
			ex, err := exception.FromObject(&items[j])
			if err != nil {
				return nil, badInput("%s: %v", file, err)
			}
			out = append(out, ex)
		}
	}
}

func convert(doc map[string]any, into any) error {
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, into)
}

// clusterExceptions lists the cluster's PolicyExceptions; none, with a
// note on w, when the CRD is not installed.
func clusterExceptions(ctx context.Context, c client.Client, w io.Writer) ([]engine.Exception, error) {
	var list v1alpha1.PolicyExceptionList
	if err := c.List(ctx, &list); err != nil {
		if meta.IsNoMatchError(err) {
			fmt.Fprintln(w, "podgate: the PolicyException CRD is not installed: judging without exceptions")
			return nil, nil
		}
		return nil, failed("list PolicyExceptions: %v", err)
	}
	out := make([]engine.Exception, 0, len(list.Items))
	for i := range list.Items {
		ex, err := exception.FromObject(&list.Items[i])
		if err != nil {
			fmt.Fprintf(w, "podgate: %v: ignored\n", err)
			continue
		}
		out = append(out, ex)
	}
	return out, nil
}

// setExceptions gives the engine the exceptions, saying on w which of them
// the webhook would refuse and why (they apply all the same: an expired one
// simply matches nothing).
func setExceptions(eng *engine.Engine, list []engine.Exception, w io.Writer) error {
	for _, ex := range list {
		problems, err := eng.CheckException(ex, time.Now())
		if err != nil {
			return err
		}
		if problems != "" {
			fmt.Fprintf(w, "podgate: PolicyException %s/%s: %s\n", ex.Namespace, ex.Name, problems)
		}
	}
	eng.SetExceptions(list)
	return nil
}
