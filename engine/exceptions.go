package engine

import (
	"cmp"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// Exception lets the objects it matches, in its namespace, break the rules
// it names until it expires: what a PolicyException (podgate.dev/v1alpha1)
// says, as plain data.
type Exception struct {
	Namespace string
	Name      string
	// Rules are "policy/rule" or "policy/*".
	Rules []string
	// Kinds, Names (with * globs) and Selector select objects; an empty
	// one matches every object.
	Kinds    []string
	Names    []string
	Selector labels.Selector
	// Expires is when it stops counting; zero for never.
	Expires time.Time
	Reason  string
}

// ExceptionRef names the exception that covers a violation.
type ExceptionRef struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Expires   time.Time `json:"expires,omitzero"`
	Reason    string    `json:"reason"`
	// Enforcement is the violation's own, before the exception.
	Enforcement Enforcement `json:"enforcement"`
}

// String is how a message names the exception:
// "PolicyException monitoring/node-exporter-cp until 2027-01-31".
func (r ExceptionRef) String() string {
	s := "PolicyException " + r.Namespace + "/" + r.Name
	if !r.Expires.IsZero() {
		s += " until " + r.Expires.UTC().Format(time.DateOnly)
	}
	return s
}

// ExceptionConfig is config's exceptions section.
type ExceptionConfig struct {
	// Enabled: whether exceptions count at all.
	Enabled bool
	// RequireExpiry: whether an exception must have an expiry.
	RequireExpiry bool
	// MaxDuration: the furthest ahead an expiry may be.
	MaxDuration time.Duration
	// NeverExcept are rules ("policy/rule" or "policy/*") no exception covers.
	NeverExcept []string
}

// covers says whether rule ref ("policy/rule" or "policy/*") names
// policy's rule.
func covers(ref, policy, rule string) bool {
	p, r, ok := strings.Cut(ref, "/")
	return ok && p == policy && (r == "*" || r == rule)
}

// SetExceptions replaces the exceptions the engine applies. Every change,
// and every expiry (the caller sets the same list again when one passes),
// counts in ExceptionsGeneration.
func (e *Engine) SetExceptions(list []Exception) {
	sorted := slices.Clone(list)
	slices.SortFunc(sorted, func(a, b Exception) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	e.exceptions.Store(&sorted)
	e.exceptionsGen.Add(1)
	e.notify()
}

// ExceptionsGeneration counts the exception lists set so far.
func (e *Engine) ExceptionsGeneration() int64 { return e.exceptionsGen.Load() }

// except marks each violation of vs that an unexpired exception covers:
// it names the exception, and a deny becomes a warning; the config may
// turn exceptions off or put rules out of their reach.
func (e *Engine) except(s *set, req *Request, vs []Violation) {
	list := e.exceptions.Load()
	if list == nil || !s.config.Exceptions.Enabled || len(vs) == 0 {
		return
	}
	now := time.Now()
	var obj *objectMeta
	for _, ex := range *list {
		if ex.Namespace != req.Namespace || !ex.Expires.IsZero() && !now.Before(ex.Expires) {
			continue
		}
		if obj == nil {
			obj = metaOf(req)
		}
		if !ex.matches(req.Kind.Kind, obj) {
			continue
		}
		for i, v := range vs {
			if v.Exception != nil || !ex.coversRule(v.Policy, v.Rule) || s.config.Exceptions.never(v.Policy, v.Rule) {
				continue
			}
			ref := ExceptionRef{Namespace: ex.Namespace, Name: ex.Name, Expires: ex.Expires, Reason: ex.Reason, Enforcement: v.Enforcement}
			vs[i].Exception = &ref
			if v.Enforcement == Deny {
				vs[i].Enforcement = Warn
			}
			vs[i].Message += fmt.Sprintf(" (excepted by %s: %s)", ref, ex.Reason)
		}
	}
}

func (ex *Exception) coversRule(policy, rule string) bool {
	return slices.ContainsFunc(ex.Rules, func(r string) bool { return covers(r, policy, rule) })
}

func (c ExceptionConfig) never(policy, rule string) bool {
	return slices.ContainsFunc(c.NeverExcept, func(r string) bool { return covers(r, policy, rule) })
}

func (ex *Exception) matches(kind string, obj *objectMeta) bool {
	if len(ex.Kinds) > 0 && !slices.Contains(ex.Kinds, kind) {
		return false
	}
	if len(ex.Names) > 0 && !slices.ContainsFunc(ex.Names, func(p string) bool { ok, _ := path.Match(p, obj.name); return ok }) {
		return false
	}
	return ex.Selector == nil || ex.Selector.Matches(labels.Set(obj.labels))
}

// objectMeta is what exceptions match an object by.
type objectMeta struct {
	name   string
	labels map[string]string
}

func metaOf(req *Request) *objectMeta {
	var obj struct {
		Metadata struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(req.Object, &obj) // a malformed object matches by nothing but its kind
	name := req.Name
	if name == "" {
		name = obj.Metadata.Name
	}
	return &objectMeta{name: name, labels: obj.Metadata.Labels}
}

// CheckException says what is wrong with ex under the current policy set
// and config, one problem a line, or "" when nothing is: a rule no loaded
// policy has, a rule config puts out of exceptions' reach, a missing,
// past or too distant expiry. The validating webhook denies a
// PolicyException with problems.
func (e *Engine) CheckException(ex Exception, now time.Time) (string, error) {
	s := e.current.Load()
	if s == nil {
		return "", ErrNotLoaded
	}
	cfg := s.config.Exceptions
	var problems []string
	if !cfg.Enabled {
		problems = append(problems, "exceptions are turned off in podgate's config (exceptions.enabled: false): it would change nothing")
	}
	for _, ref := range ex.Rules {
		if msg := s.checkRuleRef(ref); msg != "" {
			problems = append(problems, msg)
		} else if p, r, _ := strings.Cut(ref, "/"); r != "*" && cfg.never(p, r) || r == "*" && slices.ContainsFunc(cfg.NeverExcept, func(n string) bool { return strings.HasPrefix(n, p+"/") }) {
			problems = append(problems, fmt.Sprintf("rule %s: podgate's config says no exception may cover it (exceptions.neverExcept: %s)", ref, strings.Join(cfg.NeverExcept, ", ")))
		}
	}
	switch {
	case ex.Expires.IsZero() && cfg.RequireExpiry:
		problems = append(problems, fmt.Sprintf("expires is required (exceptions.requireExpiry): set it, at most %s from now", days(cfg.MaxDuration)))
	case !ex.Expires.IsZero() && !now.Before(ex.Expires):
		problems = append(problems, fmt.Sprintf("expires %s is already past", ex.Expires.UTC().Format(time.RFC3339)))
	case !ex.Expires.IsZero() && cfg.MaxDuration > 0 && ex.Expires.Sub(now) > cfg.MaxDuration:
		problems = append(problems, fmt.Sprintf("expires %s is more than %s from now (exceptions.maxDuration); set it before %s",
			ex.Expires.UTC().Format(time.RFC3339), days(cfg.MaxDuration), now.Add(cfg.MaxDuration).UTC().Format(time.RFC3339)))
	}
	return strings.Join(problems, "\n"), nil
}

// checkRuleRef says what is wrong with a rule reference, or "".
func (s *set) checkRuleRef(ref string) string {
	policy, rule, ok := strings.Cut(ref, "/")
	if !ok {
		return fmt.Sprintf("rule %q: want policy/rule or policy/*", ref)
	}
	i := slices.IndexFunc(s.policies, func(p *Policy) bool { return p.Name == policy })
	if i < 0 {
		names := make([]string, len(s.policies))
		for j, p := range s.policies {
			names[j] = p.Name
		}
		return fmt.Sprintf("rule %s: no policy %s is loaded; the policies: %s", ref, policy, strings.Join(names, ", "))
	}
	if _, known := s.policies[i].Rules[rule]; rule != "*" && !known {
		return fmt.Sprintf("rule %s: policy %s has no rule %s; its rules: %s", ref, policy, rule,
			strings.Join(slices.Sorted(mapKeys(s.policies[i].Rules)), ", "))
	}
	return ""
}

// days writes a duration as days when it is a whole number of them.
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// exceptionConfig reads config's exceptions section (defaults in
// policies/data.yaml; the merge has checked the keys and their types).
func (c *Config) exceptionConfig() (ExceptionConfig, error) {
	var ec ExceptionConfig
	m, _ := c.Raw["exceptions"].(map[string]any)
	ec.Enabled, _ = m["enabled"].(bool)
	ec.RequireExpiry, _ = m["requireExpiry"].(bool)
	if raw, _ := m["maxDuration"].(string); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < 0 {
			return ec, c.errAt("exceptions.maxDuration", fmt.Sprintf("%q: want a Go duration such as 2160h (90 days)", raw))
		}
		ec.MaxDuration = d
	}
	never, err := c.stringList("exceptions.neverExcept")
	if err != nil {
		return ec, err
	}
	for _, ref := range never {
		if p, r, ok := strings.Cut(ref, "/"); !ok || p == "" || r == "" {
			return ec, c.errAt("exceptions.neverExcept", fmt.Sprintf("%q: want policy/rule or policy/*", ref))
		}
	}
	ec.NeverExcept = never
	return ec, nil
}

// checkNeverExcept rejects a neverExcept rule no loaded policy has: a
// misspelt one would protect nothing.
func checkNeverExcept(cfg *Config, policies []*Policy) error {
	s := &set{policies: policies}
	for _, ref := range cfg.Exceptions.NeverExcept {
		if msg := s.checkRuleRef(ref); msg != "" {
			return cfg.errAt("exceptions.neverExcept", msg)
		}
	}
	return nil
}
