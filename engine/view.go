package engine

import (
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The workload view is what policies see as input.workload: the facts
// about the admitted object that nearly every rule needs, computed once per
// request in Go rather than by each rule in Rego (docs/rule-contract.md
// documents it; policies/lib/workload.rego computes the same in Rego where
// the engine does not run, as in `opa test`, and a test holds the two to
// each other). It shares the object's terms: nothing is copied.
//
//	kind, namespace     the request's
//	name                metadata.name, else metadata.generateName + "*", else "<unnamed>"
//	object              how messages name it: "Deployment shop/web", "Node w1"
//	replicas            spec.replicas as written, 1 when absent
//	longRunning         a Deployment, StatefulSet, DaemonSet, ReplicaSet, or a
//	                    Pod with restartPolicy Always (the default)
//	podSpec             the pod spec, null when the kind has none
//	podSpecField        where it is, as a violation's field: "spec.template.spec"
//	podSpecPointer      where it is, as a mutation's path: "/spec/template/spec"
//	templateMetadata    the metadata the pods will carry ({} when none)
//	labels, annotations the object's, overlaid by its pod template's
//	containers          every container of the pod spec, see containerEntry

// Where the pod spec and the pod template's metadata live, by kind.
var (
	specPaths = map[string][]string{
		"Pod":         {"spec"},
		"Deployment":  {"spec", "template", "spec"},
		"StatefulSet": {"spec", "template", "spec"},
		"DaemonSet":   {"spec", "template", "spec"},
		"ReplicaSet":  {"spec", "template", "spec"},
		"Job":         {"spec", "template", "spec"},
		"CronJob":     {"spec", "jobTemplate", "spec", "template", "spec"},
	}
	specFields     = map[string][2]*ast.Term{}
	longRunning    = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true}
	containerLists = [...]string{"containers", "initContainers", "ephemeralContainers"}
)

func init() {
	for kind, path := range specPaths {
		specFields[kind] = [2]*ast.Term{ast.StringTerm(strings.Join(path, ".")), ast.StringTerm("/" + strings.Join(path, "/"))}
	}
}

// Keys of the view and of its container entries.
var (
	keyKind, keyNamespace, keyName, keyObject  = ast.StringTerm("kind"), ast.StringTerm("namespace"), ast.StringTerm("name"), ast.StringTerm("object")
	keyReplicas, keyLongRunning, keyPodSpec    = ast.StringTerm("replicas"), ast.StringTerm("longRunning"), ast.StringTerm("podSpec")
	keyPodSpecField, keyPodSpecPointer         = ast.StringTerm("podSpecField"), ast.StringTerm("podSpecPointer")
	keyTemplateMetadata, keyLabels             = ast.StringTerm("templateMetadata"), ast.StringTerm("labels")
	keyAnnotations, keyContainers              = ast.StringTerm("annotations"), ast.StringTerm("containers")
	keyList, keyIndex, keyRegular, keySidecar  = ast.StringTerm("list"), ast.StringTerm("index"), ast.StringTerm("regular"), ast.StringTerm("sidecar")
	keyContainer, keyField, keyPointer         = ast.StringTerm("container"), ast.StringTerm("field"), ast.StringTerm("pointer")
	keyImage, keyRepository, keyTag, keyDigest = ast.StringTerm("image"), ast.StringTerm("repository"), ast.StringTerm("tag"), ast.StringTerm("digest")
	keyMetadata, keySpec, keyRestartPolicy     = ast.StringTerm("metadata"), ast.StringTerm("spec"), ast.StringTerm("restartPolicy")
	keyGenerateName                            = ast.StringTerm("generateName")
	emptyObject                                = ast.NewTerm(ast.NewObject())
	emptyString                                = ast.StringTerm("")
	defaultReplicas                            = ast.InternedTerm(1)
)

// workloadView builds input.workload for an object of kind in namespace.
func workloadView(kind, namespace string, obj ast.Object) ast.Object {
	name := objectName(obj)
	describe := kind + " " + name
	if namespace != "" {
		describe = kind + " " + namespace + "/" + name
	}
	replicas := defaultReplicas
	if spec := objectAt(obj, keySpec); spec != nil {
		if r := spec.Get(keyReplicas); r != nil {
			replicas = r
		}
	}
	podSpec, field, pointer := ast.InternedNullTerm, emptyString, emptyString
	if path, ok := specPaths[kind]; ok {
		if t := termAt(obj, path); t != nil && t.Value.Compare(ast.InternedNullValue) != 0 {
			podSpec = t
			field, pointer = specFields[kind][0], specFields[kind][1]
		}
	}
	template := templateMetadata(kind, obj)
	return ast.NewObject(
		[2]*ast.Term{keyKind, stringTerm(kind)},
		[2]*ast.Term{keyNamespace, stringTerm(namespace)},
		[2]*ast.Term{keyName, ast.StringTerm(name)},
		[2]*ast.Term{keyObject, ast.StringTerm(describe)},
		[2]*ast.Term{keyReplicas, replicas},
		[2]*ast.Term{keyLongRunning, ast.InternedTerm(isLongRunning(kind, podSpec))},
		[2]*ast.Term{keyPodSpec, podSpec},
		[2]*ast.Term{keyPodSpecField, field},
		[2]*ast.Term{keyPodSpecPointer, pointer},
		[2]*ast.Term{keyTemplateMetadata, template},
		[2]*ast.Term{keyLabels, overlay(obj, template, keyLabels)},
		[2]*ast.Term{keyAnnotations, overlay(obj, template, keyAnnotations)},
		[2]*ast.Term{keyContainers, containerEntries(podSpec, field, pointer)},
	)
}

// termAt is the term at path below obj, or nil.
func termAt(obj ast.Object, path []string) *ast.Term {
	var cur *ast.Term
	for _, key := range path {
		if cur != nil {
			next, ok := cur.Value.(ast.Object)
			if !ok {
				return nil
			}
			obj = next
		}
		if cur = obj.Get(stringTerm(key)); cur == nil {
			return nil
		}
	}
	return cur
}

// objectName is metadata.name, else metadata.generateName followed by *,
// else "<unnamed>".
func objectName(obj ast.Object) string {
	meta := objectAt(obj, keyMetadata)
	if meta == nil {
		return "<unnamed>"
	}
	if s := stringValue(meta.Get(keyName)); s != "" {
		return s
	}
	if s := stringValue(meta.Get(keyGenerateName)); s != "" {
		return s + "*"
	}
	return "<unnamed>"
}

// templateMetadata is the metadata the pods carry: a Pod's own, the pod
// template's for the other kinds ({} when absent or not an object).
func templateMetadata(kind string, obj ast.Object) *ast.Term {
	var t *ast.Term
	if kind == "Pod" {
		t = obj.Get(keyMetadata)
	} else if path, ok := specPaths[kind]; ok {
		t = termAt(obj, append(path[:len(path)-1:len(path)-1], "metadata"))
	}
	if t == nil {
		return emptyObject
	}
	if _, ok := t.Value.(ast.Object); !ok {
		return emptyObject
	}
	return t
}

// overlay is object.union(metadata.<key> of obj, the template's <key>),
// each {} when absent or not an object: the labels or annotations of a
// workload as its pods see them.
func overlay(obj ast.Object, template *ast.Term, key *ast.Term) *ast.Term {
	own, pods := emptyObject, emptyObject
	if meta := objectAt(obj, keyMetadata); meta != nil && objectAt(meta, key) != nil {
		own = meta.Get(key)
	}
	if objectAt(template.Value.(ast.Object), key) != nil {
		pods = template.Value.(ast.Object).Get(key)
	}
	a, b := own.Value.(ast.Object), pods.Value.(ast.Object)
	switch {
	case a.Len() == 0:
		return pods
	case b.Len() == 0 || a.Compare(b) == 0:
		return own
	}
	return ast.NewTerm(union(a, b))
}

// union is OPA's object.union: b's keys over a's, objects under the same
// key merged the same way.
func union(a, b ast.Object) ast.Object {
	merged, _ := a.MergeWith(b, func(v1, v2 *ast.Term) (*ast.Term, bool) {
		x, ok1 := v1.Value.(ast.Object)
		y, ok2 := v2.Value.(ast.Object)
		if !ok1 || !ok2 {
			return v2, false
		}
		return ast.NewTerm(union(x, y)), false
	})
	return merged
}

// objectAt is the object at key of obj, nil when absent or not an object.
func objectAt(obj ast.Object, key *ast.Term) ast.Object {
	if t := obj.Get(key); t != nil {
		if o, ok := t.Value.(ast.Object); ok {
			return o
		}
	}
	return nil
}

// stringValue is t's string, "" when t is nil or no string.
func stringValue(t *ast.Term) string {
	if t != nil {
		if s, ok := t.Value.(ast.String); ok {
			return string(s)
		}
	}
	return ""
}

// isLongRunning: the workload kinds that keep their pods running, and a
// Pod whose restartPolicy is Always (the default).
func isLongRunning(kind string, podSpec *ast.Term) bool {
	if kind != "Pod" {
		return longRunning[kind]
	}
	spec, ok := podSpec.Value.(ast.Object)
	if !ok {
		return false
	}
	p := spec.Get(keyRestartPolicy)
	return p == nil || p.Value.Compare(ast.String("Always")) == 0
}

// containerEntries lists every container of the pod spec, regular, init
// and ephemeral, in that order, each with where it is:
//
//	{"name": "app", "list": "containers", "index": 0, "regular": true,
//	 "sidecar": false, "container": {...},
//	 "field": "spec.template.spec.containers[0]",
//	 "pointer": "/spec/template/spec/containers/0",
//	 "image": {"repository": "app", "tag": "1.2", "digest": ""}}
//
// sidecar is an init container with restartPolicy Always; name is the
// container's, left out when it has none; image is left out when the
// container's is not a string.
func containerEntries(podSpec, field, pointer *ast.Term) *ast.Term {
	spec, ok := podSpec.Value.(ast.Object)
	if !ok {
		return ast.NewTerm(ast.NewArray())
	}
	var entries []*ast.Term
	for li, list := range containerLists {
		t := spec.Get(stringTerm(list))
		if t == nil {
			continue
		}
		arr, ok := t.Value.(*ast.Array)
		if !ok {
			continue
		}
		fieldPrefix := string(field.Value.(ast.String)) + "." + list + "["
		pointerPrefix := string(pointer.Value.(ast.String)) + "/" + list + "/"
		for i := range arr.Len() {
			c := arr.Elem(i)
			cobj, _ := c.Value.(ast.Object)
			index := strconv.Itoa(i)
			items := make([][2]*ast.Term, 0, 9)
			items = append(items,
				[2]*ast.Term{keyList, stringTerm(list)},
				[2]*ast.Term{keyIndex, ast.InternedTerm(i)},
				[2]*ast.Term{keyRegular, ast.InternedTerm(li == 0)},
				[2]*ast.Term{keySidecar, ast.InternedTerm(li == 1 && cobj != nil && isAlways(cobj.Get(keyRestartPolicy)))},
				[2]*ast.Term{keyContainer, c},
				[2]*ast.Term{keyField, ast.StringTerm(fieldPrefix + index + "]")},
				[2]*ast.Term{keyPointer, ast.StringTerm(pointerPrefix + index)},
			)
			if cobj != nil {
				if name := cobj.Get(keyName); name != nil {
					items = append(items, [2]*ast.Term{keyName, name})
				}
				if image := cobj.Get(keyImage); image != nil {
					if s, ok := image.Value.(ast.String); ok {
						items = append(items, [2]*ast.Term{keyImage, imageTerm(string(s))})
					}
				}
			}
			entries = append(entries, ast.NewTerm(ast.NewObject(items...)))
		}
	}
	return ast.NewTerm(ast.NewArray(entries...))
}

func isAlways(t *ast.Term) bool {
	return t != nil && t.Value.Compare(ast.String("Always")) == 0
}

// imageTerm splits an image reference as lib/workload.rego's
// image_repository, image_tag and image_has_digest do: repository is the
// last path segment without tag or digest ("docker.io/library/redis:7" ->
// "redis"), tag what follows its one colon ("" when none, or several),
// digest what follows "@" when the reference has "@sha256:" ("" when not).
func imageTerm(image string) *ast.Term {
	noDigest, _, _ := strings.Cut(image, "@")
	last := noDigest[strings.LastIndexByte(noDigest, '/')+1:]
	repository, _, _ := strings.Cut(last, ":")
	tag := ""
	if pieces := strings.Split(last, ":"); len(pieces) == 2 {
		tag = pieces[1]
	}
	digest := ""
	if strings.Contains(image, "@sha256:") {
		_, digest, _ = strings.Cut(image, "@")
	}
	return ast.NewTerm(ast.NewObject(
		[2]*ast.Term{keyRepository, ast.StringTerm(repository)},
		[2]*ast.Term{keyTag, stringTerm(tag)},
		[2]*ast.Term{keyDigest, stringTerm(digest)},
	))
}
