package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"go.yaml.in/yaml/v3"
)

// Sources says where a policy set comes from.
type Sources struct {
	// Builtin holds the embedded policies and data.yaml (policies.FS);
	// nil means none.
	Builtin fs.FS
	// PolicyDir is a directory of custom .rego files; "" for none.
	PolicyDir string
	// ConfigFile is the operator's YAML config; "" for the defaults.
	ConfigFile string
}

// Policy describes one loaded policy, from its package and METADATA.
type Policy struct {
	Name        string
	Title       string
	Description string
	Enforcement Enforcement
	Rules       map[string]Rule
	File        string
	// Kinds are the kinds of object the policy looks at (METADATA
	// custom.kinds); nil for every kind. MutationKinds narrows them for
	// its mutation rules (custom.mutationKinds).
	Kinds         []string
	MutationKinds []string
	// ReadsNodes says whether its rules read the Node inventory
	// (data.podgate.inventory): its decisions can change when Nodes do.
	ReadsNodes bool

	ref  string        // data.podgate.policies.<pkg>
	defs []*definition // its violation and mutation rules (splitDefinitions)
}

// Rule is one rule id a policy reports, from its METADATA.
type Rule struct {
	Enforcement Enforcement `json:"enforcement"`
	Summary     string      `json:"summary"`
	// Kinds are the kinds of object the rule looks at; nil for every kind
	// the policy looks at.
	Kinds []string `json:"kinds,omitempty"`
}

const (
	policyPrefix = "data.podgate.policies."
	libPrefix    = "data.podgate.lib."
)

// source is one file of a policy set.
type source struct {
	name string
	data []byte
}

func readSources(src Sources) (rego []source, defaults map[string]any, config []byte, err error) {
	if src.Builtin != nil {
		files, err := readTree(src.Builtin, ".", "")
		if err != nil {
			return nil, nil, nil, err
		}
		rego = files
		raw, err := fs.ReadFile(src.Builtin, "data.yaml")
		if err != nil {
			return nil, nil, nil, fmt.Errorf("built-in defaults: %w", err)
		}
		if defaults, err = configDefaults(raw); err != nil {
			return nil, nil, nil, err
		}
	}
	if defaults == nil {
		defaults = map[string]any{}
	}
	if src.PolicyDir != "" {
		files, err := readTree(os.DirFS(src.PolicyDir), ".", src.PolicyDir)
		if err != nil {
			return nil, nil, nil, err
		}
		rego = append(rego, files...)
	}
	if src.ConfigFile != "" {
		if config, err = os.ReadFile(src.ConfigFile); err != nil {
			return nil, nil, nil, fmt.Errorf("read config: %w", err)
		}
	}
	return rego, defaults, config, nil
}

// readTree collects the .rego files under dir, skipping tests and the
// dot-folders a ConfigMap volume keeps its versions in (..data and the
// timestamped folders); files reached through symlinks are read.
func readTree(fsys fs.FS, dir, prefix string) ([]source, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(prefix, dir), err)
	}
	var out []source
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		if strings.HasPrefix(name, ".") || name == "testdata" {
			continue
		}
		isRego := strings.HasSuffix(name, ".rego")
		info, err := fs.Stat(fsys, path) // follows symlinks
		if err != nil {
			if !isRego || errors.Is(err, fs.ErrNotExist) {
				// A dangling link: the kubelet removes a ConfigMap key's link
				// just after swapping ..data, and a reload may fall between.
				continue
			}
			return nil, fmt.Errorf("stat %s: %w", filepath.Join(prefix, path), err)
		}
		if info.IsDir() {
			sub, err := readTree(fsys, path, prefix)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		if !isRego || strings.HasSuffix(name, "_test.rego") {
			continue
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", filepath.Join(prefix, path), err)
		}
		// Errors name files as the operator knows them: the custom
		// policy directory's path, or policies/ for the built-in ones.
		root := prefix
		if root == "" {
			root = "policies"
		}
		out = append(out, source{name: filepath.Join(root, path), data: data})
	}
	return out, nil
}

// configDefaults reads the config section of the built-in data.yaml with
// the parser of the operator's config (config.go), so that both give the
// same values: whole numbers as int64, as in admitted objects.
func configDefaults(raw []byte) (map[string]any, error) {
	var doc struct {
		Podgate struct {
			Config map[string]any `yaml:"config"`
		} `yaml:"podgate"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("policies/data.yaml: %w", err)
	}
	defaults, _ := normalize(doc.Podgate.Config).(map[string]any)
	return defaults, nil
}

// compile parses and compiles a policy set with the strict checks, and
// prepares its queries. Errors name the file, line and column. When the
// sources hash to unchanged, it returns a nil set without compiling.
func compile(ctx context.Context, src Sources, inventory ast.Value, unchanged string) (*set, error) {
	files, defaults, cfgSrc, err := readSources(src)
	if err != nil {
		return nil, err
	}
	hash := hashSources(files, defaults, cfgSrc)
	if hash == unchanged {
		return nil, nil
	}
	cfg, err := parseConfig(defaults, src.ConfigFile, cfgSrc)
	if err != nil {
		return nil, err
	}
	modules := make(map[string]*ast.Module, len(files))
	var errs []error
	for _, f := range files {
		m, err := ast.ParseModuleWithOpts(f.name, string(f.data), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			errs = append(errs, regoErrors(err))
			continue
		}
		if err := checkPackage(m, f.name); err != nil {
			errs = append(errs, err)
			continue
		}
		modules[f.name] = m
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	split, defs, err := splitDefinitions(modules)
	if err != nil {
		return nil, err
	}
	compiler := ast.NewCompiler().WithStrict(true)
	if compiler.Compile(split); compiler.Failed() {
		// Report the errors of the modules as written: the split ones
		// would name rules the author never wrote.
		original := ast.NewCompiler().WithStrict(true)
		if original.Compile(modules); original.Failed() {
			return nil, regoErrors(original.Errors)
		}
		return nil, regoErrors(compiler.Errors)
	}
	policies, err := describePolicies(compiler, modules, defs)
	if err != nil {
		return nil, err
	}
	if err := checkConfigPolicies(cfg, policies); err != nil {
		return nil, err
	}
	if err := checkNeverExcept(cfg, policies); err != nil {
		return nil, err
	}
	markNodeReaders(compiler, policies)
	s, err := prepare(ctx, compiler, policies, cfg, inventory, hash)
	if err != nil {
		return nil, err
	}
	s.sources = make(map[string][]byte, len(files))
	for _, f := range files {
		s.sources[f.name] = f.data
	}
	return s, nil
}

func checkPackage(m *ast.Module, file string) error {
	p := m.Package.Path.String()
	if strings.HasPrefix(p, policyPrefix) || strings.HasPrefix(p, libPrefix) {
		return nil
	}
	return fmt.Errorf("%s:%d: package %s: podgate loads packages under podgate.policies (policies) and podgate.lib (helpers) only",
		file, m.Package.Location.Row, strings.TrimPrefix(p, "data."))
}

// checkConfigPolicies rejects a section for a policy that is not loaded
// and rule overrides for rules a policy does not declare: a misspelt name
// would otherwise be ignored, and the default it meant to change would
// stay in force unnoticed.
func checkConfigPolicies(cfg *Config, policies []*Policy) error {
	loaded := make([]string, len(policies))
	for i, p := range policies {
		loaded[i] = p.Name
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Policies)) {
		i := slices.Index(loaded, name)
		if i < 0 {
			return cfg.keyErr("policies."+name, fmt.Sprintf("no such policy%s; the loaded policies are %s",
				didYouMean(name, loaded), strings.Join(loaded, ", ")))
		}
		declared := slices.Sorted(mapKeys(policies[i].Rules))
		for _, rule := range slices.Sorted(maps.Keys(cfg.Policies[name].Rules)) {
			if _, ok := policies[i].Rules[rule]; !ok {
				return cfg.keyErr("policies."+name+".rules."+rule, fmt.Sprintf("the policy has no such rule%s; its rules are %s",
					didYouMean(rule, declared), strings.Join(declared, ", ")))
			}
		}
	}
	return nil
}

func hashSources(files []source, defaults map[string]any, cfg []byte) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.data))
		h.Write(f.data)
	}
	fmt.Fprintf(h, "%v\x00", defaults)
	h.Write(cfg)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func prepare(ctx context.Context, c *ast.Compiler, policies []*Policy, cfg *Config, inventory ast.Value, hash string) (*set, error) {
	// The store holds AST values: the inventory goes in as it is, shared
	// with the engine and the previous set (nothing writes below it).
	store := inmem.NewFromObjectWithOpts(map[string]any{
		"podgate": map[string]any{
			"config":    cfg.Raw,
			"inventory": inventory,
		},
	}, inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	s := &set{policies: policies, config: cfg, store: store, compiler: c, hash: hash}
	if err := s.readData(ctx); err != nil {
		return nil, err
	}
	var defs []*definition
	for _, p := range policies {
		defs = append(defs, p.defs...)
	}
	var err error
	if s.plans, err = plans(ctx, c, store, defs, cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// regoErrors writes OPA's parse and compile errors as editors and CI logs
// link them, file:line:col: code: message, one per line (OPA's own text
// gives no column and prefixes a count).
func regoErrors(err error) error {
	var list ast.Errors
	if !errors.As(err, &list) {
		return err
	}
	out := make([]error, len(list))
	for i, e := range list {
		if e.Location == nil {
			out[i] = fmt.Errorf("%s: %s", e.Code, e.Message)
			continue
		}
		out[i] = fmt.Errorf("%s:%d:%d: %s: %s", e.Location.File, e.Location.Row, e.Location.Col, e.Code, e.Message)
	}
	return errors.Join(out...)
}

// DefaultConfig is the configuration the shipped defaults of builtin
// (its data.yaml) make alone, as a webhook without --config runs: what
// the chart and the test clusters mirror in their webhook configurations.
func DefaultConfig(builtin fs.FS) (*Config, error) {
	raw, err := fs.ReadFile(builtin, "data.yaml")
	if err != nil {
		return nil, fmt.Errorf("built-in defaults: %w", err)
	}
	defaults, err := configDefaults(raw)
	if err != nil {
		return nil, err
	}
	return parseConfig(defaults, "", nil)
}
