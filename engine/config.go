package engine

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is the operator's configuration merged over the shipped defaults.
// Rego sees Raw as data.podgate.config; Go reads the typed fields.
type Config struct {
	// ExcludedNamespaces are namespaces no policy looks at.
	ExcludedNamespaces []string
	// Policies holds what Go needs of each policy's section.
	Policies map[string]PolicyConfig
	// Exceptions is what PolicyExceptions may do.
	Exceptions ExceptionConfig
	// Raw is the whole merged document.
	Raw map[string]any
}

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
	merged := deepCopy(defaults)
	if len(bytes.TrimSpace(src)) > 0 {
		var doc yaml.Node
		if err := yaml.Unmarshal(src, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if len(doc.Content) > 0 {
			if err := mergeNode(merged, doc.Content[0], file, ""); err != nil {
				return nil, err
			}
		}
	}
	return typedConfig(merged)
}

// mergeNode merges a YAML mapping into dst, checking each key against the
// defaults. Policy sections accept keys their defaults do not have only
// when the policy is not a built-in one (a custom policy's parameters).
func mergeNode(dst map[string]any, node *yaml.Node, file, path string) error {
	if node.Kind != yaml.MappingNode {
		return nodeErr(file, node, path, "want a mapping, got a "+yamlKind(node))
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		key := joinKey(path, k.Value)
		def, known := dst[k.Value]
		switch {
		case known && isMap(def) && !isPolicyRules(key):
			if err := mergeNode(def.(map[string]any), v, file, key); err != nil {
				return err
			}
			continue
		case !known && !openKey(path, k.Value):
			return nodeErr(file, k, key, fmt.Sprintf("unknown key; known keys here: %s", strings.Join(sortedKeys(dst, path), ", ")))
		}
		var val any
		if err := v.Decode(&val); err != nil {
			return nodeErr(file, v, key, err.Error())
		}
		val = normalize(val)
		if known && def != nil && kindOf(def) != kindOf(val) {
			return nodeErr(file, v, key, fmt.Sprintf("want a %s, got a %s", kindOf(def), kindOf(val)))
		}
		dst[k.Value] = val
	}
	return nil
}

// openKey says whether key may be new under path: any policy name under
// "policies" (a custom policy's section is taken whole), and the keys every
// policy section may carry. A built-in policy's own parameters are all in
// the defaults, so any other key there is a typo.
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

func typedConfig(raw map[string]any) (*Config, error) {
	cfg := &Config{Raw: raw, Policies: map[string]PolicyConfig{}}
	ns, err := stringList(raw["excludedNamespaces"], "excludedNamespaces")
	if err != nil {
		return nil, err
	}
	cfg.ExcludedNamespaces = ns
	if cfg.Exceptions, err = exceptionConfig(raw["exceptions"]); err != nil {
		return nil, err
	}
	policies, _ := raw["policies"].(map[string]any)
	for name, v := range policies {
		section, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("policies.%s: want a mapping", name)
		}
		pc, err := policyConfig(name, section)
		if err != nil {
			return nil, err
		}
		cfg.Policies[name] = pc
	}
	return cfg, nil
}

func policyConfig(name string, section map[string]any) (PolicyConfig, error) {
	var pc PolicyConfig
	var err error
	if v, ok := section["enforcement"]; ok {
		if pc.Enforcement, err = parseEnforcement(v); err != nil {
			return pc, fmt.Errorf("policies.%s.enforcement: %w", name, err)
		}
	}
	if pc.ExcludedNamespaces, err = stringList(section["excludedNamespaces"], "policies."+name+".excludedNamespaces"); err != nil {
		return pc, err
	}
	if v, ok := section["rules"]; ok {
		rules, ok := v.(map[string]any)
		if !ok {
			return pc, fmt.Errorf("policies.%s.rules: want a mapping of rule id to enforcement", name)
		}
		pc.Rules = map[string]Enforcement{}
		for rule, e := range rules {
			if pc.Rules[rule], err = parseEnforcement(e); err != nil {
				return pc, fmt.Errorf("policies.%s.rules.%s: %w", name, rule, err)
			}
		}
	}
	return pc, nil
}

func stringList(v any, key string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a list of strings", key)
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("%s: want a list of strings, found %v", key, item)
		}
		out = append(out, s)
	}
	return out, nil
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

func nodeErr(file string, n *yaml.Node, key, msg string) error {
	return fmt.Errorf("%s:%d:%d: %s: %s", file, n.Line, n.Column, key, msg)
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

// normalize turns what yaml.v3 decodes into the JSON-like values Rego
// accepts (map[string]any with string keys).
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
	}
	return v
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch t := v.(type) {
		case map[string]any:
			out[k] = deepCopy(t)
		case []any:
			out[k] = slices.Clone(t)
		default:
			out[k] = v
		}
	}
	return out
}
