package engine

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Config is the operator's configuration merged over the shipped defaults.
// Rego sees Raw as data.podgate.config; Go reads the typed fields.
type Config struct {
	// ExcludedNamespaces are namespaces no policy looks at.
	ExcludedNamespaces []string
	// ControllerUsers are the users whose writes of an object with a
	// controller ownerReference are not checked (see Engine.Skip).
	ControllerUsers []string
	// Policies holds what Go needs of each policy's section.
	Policies map[string]PolicyConfig
	// Exceptions is what PolicyExceptions may do.
	Exceptions ExceptionConfig
	// Raw is the whole merged document.
	Raw map[string]any

	file string             // the operator's file, as errors name it
	pos  map[string]nodePos // where each key of that file is, by dotted path
}

// nodePos is where a key and its value are in the operator's file.
type nodePos struct{ key, value *yaml.Node }

// PolicyConfig is the part of a policy's config section the engine applies
// itself; everything else in the section is the policy's own parameters.
type PolicyConfig struct {
	Enforcement        Enforcement            // "" when the policy's METADATA decides
	Rules              map[string]Enforcement // per-rule overrides
	ExcludedNamespaces []string
}

// Keys every policy section may carry, whatever the policy.
var commonPolicyKeys = []string{"enforcement", "rules", "excludedNamespaces"}

// parseConfig merges the operator's YAML (file names it in errors) over the
// defaults. Unknown keys and values of the wrong type are errors that name
// the file, line and key: a typo must not silently keep a default.
func parseConfig(defaults map[string]any, file string, src []byte) (*Config, error) {
	merged := runtime.DeepCopyJSON(defaults)
	cfg := &Config{file: file, pos: map[string]nodePos{}}
	if cfg.file == "" {
		cfg.file = "config"
	}
	if len(bytes.TrimSpace(src)) > 0 {
		var doc yaml.Node
		if err := yaml.Unmarshal(src, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.file, err)
		}
		if len(doc.Content) > 0 {
			if err := cfg.merge(merged, doc.Content[0], ""); err != nil {
				return nil, err
			}
		}
	}
	cfg.Raw = merged
	return cfg, cfg.typed()
}

// merge merges a YAML mapping into dst, checking each key against the
// defaults. Policy sections accept keys their defaults do not have only
// when the policy is not a built-in one (a custom policy's parameters).
func (c *Config) merge(dst map[string]any, node *yaml.Node, path string) error {
	if node.Kind != yaml.MappingNode {
		return c.nodeErr(node, path, "want a mapping, got a "+yamlKind(node))
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		key := joinKey(path, k.Value)
		c.record(key, k, v)
		def, known := dst[k.Value]
		switch {
		case known && isMap(def) && !isPolicyRules(key):
			if err := c.merge(def.(map[string]any), v, key); err != nil {
				return err
			}
			continue
		case !known && !openKey(path, k.Value):
			return c.nodeErr(k, key, fmt.Sprintf("unknown key; known keys here: %s", strings.Join(sortedKeys(dst, path), ", ")))
		}
		var val any
		if err := v.Decode(&val); err != nil {
			return c.nodeErr(v, key, err.Error())
		}
		val = normalize(val)
		if known && def != nil && kindOf(def) != kindOf(val) {
			return c.nodeErr(v, key, fmt.Sprintf("want a %s, got a %s", kindOf(def), kindOf(val)))
		}
		dst[k.Value] = val
	}
	return nil
}

// record remembers where key and, inside a mapping value taken whole (a
// rules section, a custom policy's section), every key below it are.
func (c *Config) record(key string, k, v *yaml.Node) {
	c.pos[key] = nodePos{key: k, value: v}
	if v.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		c.record(joinKey(key, v.Content[i].Value), v.Content[i], v.Content[i+1])
	}
}

// openKey says whether key may be new under path: any policy name under
// "policies" (a custom policy's section is taken whole; compile checks that
// the policy is loaded), and the keys every policy section may carry. A
// built-in policy's own parameters are all in the defaults, so any other
// key there is a typo.
func openKey(path, key string) bool {
	parts := strings.Split(path, ".")
	switch {
	case path == "policies":
		return true
	case len(parts) == 2 && parts[0] == "policies":
		return slices.Contains(commonPolicyKeys, key)
	}
	return false
}

func isPolicyRules(key string) bool {
	parts := strings.Split(key, ".")
	return len(parts) == 3 && parts[0] == "policies" && parts[2] == "rules"
}

// typed reads the fields Go applies itself out of Raw.
func (c *Config) typed() error {
	c.Policies = map[string]PolicyConfig{}
	var err error
	if c.ExcludedNamespaces, err = c.stringList("excludedNamespaces"); err != nil {
		return err
	}
	if c.ControllerUsers, err = c.stringList("controllerUsers"); err != nil {
		return err
	}
	if c.Exceptions, err = c.exceptionConfig(); err != nil {
		return err
	}
	policies, _ := c.Raw["policies"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(policies)) {
		section, ok := policies[name].(map[string]any)
		if !ok {
			return c.errAt("policies."+name, "want a mapping")
		}
		pc, err := c.policyConfig(name, section)
		if err != nil {
			return err
		}
		c.Policies[name] = pc
	}
	return nil
}

func (c *Config) policyConfig(name string, section map[string]any) (PolicyConfig, error) {
	var pc PolicyConfig
	var err error
	key := "policies." + name
	if v, ok := section["enforcement"]; ok {
		if pc.Enforcement, err = parseEnforcement(v); err != nil {
			return pc, c.errAt(key+".enforcement", err.Error())
		}
	}
	if pc.ExcludedNamespaces, err = c.stringList(key + ".excludedNamespaces"); err != nil {
		return pc, err
	}
	if v, ok := section["rules"]; ok {
		rules, ok := v.(map[string]any)
		if !ok {
			return pc, c.errAt(key+".rules", "want a mapping of rule id to enforcement")
		}
		pc.Rules = map[string]Enforcement{}
		for _, rule := range slices.Sorted(maps.Keys(rules)) {
			if pc.Rules[rule], err = parseEnforcement(rules[rule]); err != nil {
				return pc, c.errAt(key+".rules."+rule, err.Error())
			}
		}
	}
	return pc, nil
}

// stringList reads the list of strings at the dotted key of Raw.
func (c *Config) stringList(key string) ([]string, error) {
	v, _, _ := unstructured.NestedFieldNoCopy(c.Raw, strings.Split(key, ".")...)
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, c.errAt(key, "want a list of strings")
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, c.errAt(key, fmt.Sprintf("want a list of strings, found %v", item))
		}
		out = append(out, s)
	}
	return out, nil
}

// errAt is an error about the value of key, naming the file, line and
// column of that value when the operator's file set it, else the file.
func (c *Config) errAt(key, msg string) error {
	if p, ok := c.pos[key]; ok {
		return c.nodeErr(p.value, key, msg)
	}
	return fmt.Errorf("%s: %s: %s", c.file, key, msg)
}

// keyErr is errAt pointing at the key itself rather than its value: for a
// key that should not be there.
func (c *Config) keyErr(key, msg string) error {
	if p, ok := c.pos[key]; ok {
		return c.nodeErr(p.key, key, msg)
	}
	return fmt.Errorf("%s: %s: %s", c.file, key, msg)
}

func (c *Config) nodeErr(n *yaml.Node, key, msg string) error {
	return fmt.Errorf("%s:%d:%d: %s: %s", c.file, n.Line, n.Column, key, msg)
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "mapping"
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any, path string) []string {
	keys := slices.Sorted(maps.Keys(m))
	if strings.HasPrefix(path, "policies.") {
		keys = append(keys, commonPolicyKeys...)
	}
	return slices.Compact(slices.Sorted(slices.Values(keys)))
}

func isMap(v any) bool { _, ok := v.(map[string]any); return ok }

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "mapping"
	case []any:
		return "list"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int, int64, uint64, float64:
		return "number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// normalize turns what yaml.v3 decodes into JSON values, the ones Rego
// and runtime.DeepCopyJSONValue accept: maps with string keys, whole
// numbers as int64 (a number too large for one, which yaml.v3 gives as
// uint64, as float64).
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalize(x)
		}
		return t
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[fmt.Sprint(k)] = normalize(x)
		}
		return out
	case []any:
		for i, x := range t {
			t[i] = normalize(x)
		}
		return t
	case int:
		return int64(t)
	case uint64:
		return float64(t)
	}
	return v
}

// didYouMean suggests the closest of known to a misspelt name (at most
// two edits away), as " (did you mean rollout?)", or "".
func didYouMean(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := levenshtein.ComputeDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}
