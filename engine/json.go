package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// maxJSONDepth is encoding/json's nesting limit: deeper documents are
// rejected, as ast.ValueFromReader rejects them, before the recursion can
// exhaust the stack.
const maxJSONDepth = 10000

// termSlab is how many terms are allocated at once: one allocation instead
// of one per value.
const termSlab = 128

// parseJSON decodes one JSON document straight into an ast.Value. It gives
// what ast.ValueFromReader gives (numbers kept as their literal, small
// integers and true/false/null interned, strings unescaped exactly as
// encoding/json does) without decoding into map[string]any first and
// converting that again: on an admission request's object it makes half
// the allocations and takes less than half the time. Strings without
// escapes share one copy of the document instead of a copy each. Unlike
// json.Decoder, anything but white space after the value is an error.
func parseJSON(data []byte) (ast.Value, error) {
	p := &jsonParser{data: data, src: string(data)}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.data) {
		return nil, p.errorf("invalid character %q after top-level value", p.data[p.pos])
	}
	return v, nil
}

type jsonParser struct {
	data  []byte
	src   string // data as a string: unescaped strings are slices of it
	pos   int
	terms []ast.Term
	items [][2]*ast.Term // stack of object members being parsed
	elems []*ast.Term    // stack of array elements being parsed
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

var errJSONEnd = errors.New("unexpected end of JSON input")

func (p *jsonParser) term(v ast.Value) *ast.Term {
	if len(p.terms) == 0 {
		p.terms = make([]ast.Term, termSlab)
	}
	t := &p.terms[0]
	p.terms = p.terms[1:]
	t.Value = v
	return t
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (ast.Value, error) {
	if p.pos >= len(p.data) {
		return nil, errJSONEnd
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return ast.InternedValue(s), nil
	case c == 't':
		return ast.InternedBooleanTrueValue, p.literal("true")
	case c == 'f':
		return ast.InternedBooleanFalseValue, p.literal("false")
	case c == 'n':
		return ast.InternedNullValue, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, p.errorf("invalid character %q looking for beginning of value", c)
	}
}

// valueTerm is value as a term, shared when the value is interned.
func (p *jsonParser) valueTerm(depth int) (*ast.Term, error) {
	switch c := p.peek(); {
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.pos
		v, err := p.number()
		if err != nil {
			return nil, err
		}
		if t := ast.InternedIntNumberTermFromString(p.src[start:p.pos]); t != nil {
			return t, nil
		}
		return p.term(v), nil
	case c == 't':
		return ast.InternedBooleanTrue, p.literal("true")
	case c == 'f':
		return ast.InternedBooleanFalse, p.literal("false")
	case c == 'n':
		return ast.InternedNullTerm, p.literal("null")
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		if t := interned[s]; t != nil {
			return t, nil
		}
		return p.term(ast.InternedValue(s)), nil
	}
	v, err := p.value(depth)
	if err != nil {
		return nil, err
	}
	return p.term(v), nil
}

// keyTerm is an object key as a term: the shared one of a field name of
// the workload kinds (intern.go), else a new one.
func (p *jsonParser) keyTerm(key string) *ast.Term {
	if t := interned[key]; t != nil {
		return t
	}
	return p.term(ast.InternedValue(key))
}

func (p *jsonParser) peek() byte {
	if p.pos < len(p.data) {
		return p.data[p.pos]
	}
	return 0
}

func (p *jsonParser) literal(word string) error {
	if len(p.data)-p.pos < len(word) {
		return errJSONEnd
	}
	if string(p.data[p.pos:p.pos+len(word)]) != word {
		return p.errorf("invalid literal, want %s", word)
	}
	p.pos += len(word)
	return nil
}

func (p *jsonParser) object(depth int) (ast.Value, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("exceeded max depth")
	}
	p.pos++ // {
	base := len(p.items)
	defer func() { p.items = p.items[:base] }()
	var index map[ast.String]int
	p.skipSpace()
	if p.peek() == '}' {
		p.pos++
		return ast.NewObject(), nil
	}
	for {
		p.skipSpace()
		if p.peek() != '"' {
			if p.pos >= len(p.data) {
				return nil, errJSONEnd
			}
			return nil, p.errorf("invalid character %q looking for beginning of object key string", p.data[p.pos])
		}
		key, err := p.string()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.peek() != ':' {
			if p.pos >= len(p.data) {
				return nil, errJSONEnd
			}
			return nil, p.errorf("invalid character %q after object key", p.data[p.pos])
		}
		p.pos++
		p.skipSpace()
		val, err := p.valueTerm(depth)
		if err != nil {
			return nil, err
		}
		p.items = setItem(p.items, base, &index, p.keyTerm(key), val)
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return ast.NewObject(p.items[base:]...), nil
		default:
			if p.pos >= len(p.data) {
				return nil, errJSONEnd
			}
			return nil, p.errorf("invalid character %q after object key:value pair", p.data[p.pos])
		}
	}
}

// setItem appends key: val to the members from base on, or, as
// encoding/json does with a repeated key, replaces the earlier value. Small
// objects are searched; index (made when needed) holds the positions of a
// large one's keys.
func setItem(items [][2]*ast.Term, base int, index *map[ast.String]int, key, val *ast.Term) [][2]*ast.Term {
	k := key.Value.(ast.String)
	n := len(items) - base
	switch {
	case *index != nil:
		if i, ok := (*index)[k]; ok {
			items[i][1] = val
			return items
		}
		(*index)[k] = len(items)
	case n < smallObject:
		for i := base; i < len(items); i++ {
			if items[i][0].Value.(ast.String) == k {
				items[i][1] = val
				return items
			}
		}
	default:
		*index = make(map[ast.String]int, 2*n)
		for i := base; i < len(items); i++ {
			(*index)[items[i][0].Value.(ast.String)] = i
		}
		return setItem(items, base, index, key, val)
	}
	return append(items, [2]*ast.Term{key, val})
}

// smallObject is the size up to which an object's keys are searched for a
// repeated key rather than indexed.
const smallObject = 16

func (p *jsonParser) array(depth int) (ast.Value, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("exceeded max depth")
	}
	p.pos++ // [
	base := len(p.elems)
	defer func() { p.elems = p.elems[:base] }()
	p.skipSpace()
	if p.peek() == ']' {
		p.pos++
		return ast.NewArray(), nil
	}
	for {
		p.skipSpace()
		t, err := p.valueTerm(depth)
		if err != nil {
			return nil, err
		}
		p.elems = append(p.elems, t)
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			// NewArray keeps the slice it is given: hand it a copy.
			elems := make([]*ast.Term, len(p.elems)-base)
			copy(elems, p.elems[base:])
			return ast.NewArray(elems...), nil
		default:
			if p.pos >= len(p.data) {
				return nil, errJSONEnd
			}
			return nil, p.errorf("invalid character %q after array element", p.data[p.pos])
		}
	}
}

// string reads a string token. One without escapes, control characters
// or invalid UTF-8 is a slice of the document; any other is unescaped by
// encoding/json itself, so the result is always the one it gives.
func (p *jsonParser) string() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	plain, ascii := true, true
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			raw := p.src[start+1 : p.pos-1]
			if plain && (ascii || utf8.ValidString(raw)) {
				return raw, nil
			}
			var s string
			if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
				return "", p.errorf("string: %v", err)
			}
			return s, nil
		case c == '\\':
			plain = false
			p.pos += 2
			continue
		case c < 0x20:
			return "", p.errorf("invalid character %q in string literal", c)
		case c >= utf8.RuneSelf:
			ascii = false
		}
		p.pos++
	}
	return "", errJSONEnd
}

// number reads a number token as JSON's grammar has it and keeps its
// literal, as json.Number does.
func (p *jsonParser) number() (ast.Value, error) {
	start := p.pos
	if p.peek() == '-' {
		p.pos++
	}
	switch c := p.peek(); {
	case c == '0':
		p.pos++
	case c >= '1' && c <= '9':
		p.digits()
	case p.pos >= len(p.data):
		return nil, errJSONEnd
	default:
		return nil, p.errorf("invalid character %q in numeric literal", c)
	}
	if p.peek() == '.' {
		p.pos++
		if !isDigit(p.peek()) {
			return nil, p.errorf("invalid numeric literal after decimal point")
		}
		p.digits()
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.pos++
		if c := p.peek(); c == '+' || c == '-' {
			p.pos++
		}
		if !isDigit(p.peek()) {
			return nil, p.errorf("invalid numeric literal in exponent")
		}
		p.digits()
	}
	lit := p.src[start:p.pos]
	if t := ast.InternedIntNumberTermFromString(lit); t != nil {
		return t.Value, nil
	}
	n, err := ast.NumberChecked(lit)
	if err != nil {
		return nil, err
	}
	return n, nil
}

func (p *jsonParser) digits() {
	for isDigit(p.peek()) {
		p.pos++
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
