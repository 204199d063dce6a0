// Package inputs handles the values of destination inputs, one place for
// the control plane, the templates and the data plane: reading and writing
// them in the API's two forms (JSON text that keeps the order of object
// keys, and the older protobuf Struct), checking them against their
// schema, and compiling their templates (Hog or Liquid).
//
// Object key order is kept end to end: a webhook body {"zeta": 1,
// "alpha": 2} is stored, streamed, rendered and sent in that order, since
// signatures and some APIs depend on the bytes.
package inputs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"slices"
	"strings"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/liquid"
)

// Of returns an input's value: value_json when set, else value. ok is
// false when neither is set. Setting both to different values is an error,
// so an old client that edits value next to a stale value_json is told
// rather than ignored.
func Of(in *hogwirev1.InputValue) (v Value, ok bool, err error) {
	return pair(in.GetValueJson(), in.GetValue() != nil, func() Value { return FromProto(in.GetValue()) })
}

// DefaultOf returns a schema's default: default_json when set, else
// default, with Of's rules.
func DefaultOf(s *hogwirev1.InputSchema) (v Value, ok bool, err error) {
	return pair(s.GetDefaultJson(), s.GetDefault() != nil, func() Value { return FromProto(s.GetDefault()) })
}

// CompiledOf returns an input's compiled form: bytecode_json when set,
// else bytecode (stored before bytecode_json existed).
func CompiledOf(in *hogwirev1.InputValue) (v Value, ok bool, err error) {
	if t := in.GetBytecodeJson(); t != "" {
		v, err := Parse(t)
		return v, err == nil, err
	}
	if in.GetBytecode() == nil {
		return Value{}, false, nil
	}
	return FromProto(in.GetBytecode()), true, nil
}

func pair(text string, hasProto bool, proto func() Value) (Value, bool, error) {
	if text == "" {
		if !hasProto {
			return Value{}, false, nil
		}
		return proto(), true, nil
	}
	v, err := Parse(text)
	if err != nil {
		return Value{}, false, fmt.Errorf("is not JSON: %w", err)
	}
	if hasProto && !proto().Equal(v) {
		return Value{}, false, errors.New("the JSON text and the protobuf value differ; set one of them")
	}
	return v, true, nil
}

// SetValue stores v in both of the input's forms.
func SetValue(in *hogwirev1.InputValue, v Value) {
	in.Value, in.ValueJson = v.Proto(), v.JSON()
}

// SetCompiled stores the compiled form c in both forms, or clears them
// when c is nil.
func SetCompiled(in *hogwirev1.InputValue, c *Value) {
	if c == nil {
		in.Bytecode, in.BytecodeJson = nil, ""
		return
	}
	in.Bytecode, in.BytecodeJson = c.Proto(), c.JSON()
}

// SetDefault stores v as the schema's default in both forms.
func SetDefault(s *hogwirev1.InputSchema, v Value) {
	s.Default, s.DefaultJson = v.Proto(), v.JSON()
}

// Language returns how the input's strings render: NONE when the schema
// turns templating off, else the value's language, else the schema's,
// else Hog. in may be nil (a default).
func Language(s *hogwirev1.InputSchema, in *hogwirev1.InputValue) hogwirev1.TemplateLanguage {
	if s.Templating != nil && !s.GetTemplating() {
		return hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_NONE
	}
	if l := in.GetTemplateLanguage(); l != hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_UNSPECIFIED {
		return l
	}
	if l := s.GetTemplateLanguage(); l != hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_UNSPECIFIED {
		return l
	}
	return hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_HOG
}

// Check returns what is wrong with v for the schema's type, or "".
func Check(s *hogwirev1.InputSchema, v Value) string {
	switch s.GetType() {
	case hogwirev1.InputType_INPUT_TYPE_STRING:
		if v.Kind != String {
			return "must be a string"
		}
	case hogwirev1.InputType_INPUT_TYPE_NUMBER:
		if v.Kind != Number || math.IsNaN(v.Number) || math.IsInf(v.Number, 0) {
			return "must be a number"
		}
	case hogwirev1.InputType_INPUT_TYPE_BOOLEAN:
		if v.Kind != Bool {
			return "must be true or false"
		}
	case hogwirev1.InputType_INPUT_TYPE_CHOICE:
		if v.Kind != String {
			return "must be one of the choices"
		}
		if !slices.ContainsFunc(s.GetChoices(), func(c *hogwirev1.InputChoice) bool { return c.GetValue() == v.String }) {
			var vals []string
			for _, c := range s.GetChoices() {
				vals = append(vals, c.GetValue())
			}
			return fmt.Sprintf("%q is not one of %s", v.String, strings.Join(vals, ", "))
		}
	case hogwirev1.InputType_INPUT_TYPE_DICTIONARY:
		if v.Kind != Object {
			return "must be an object of strings"
		}
		for i, k := range v.Keys {
			if v.Elems[i].Kind != String {
				return fmt.Sprintf("value of %q must be a string", k)
			}
		}
	case hogwirev1.InputType_INPUT_TYPE_EMAIL:
		return checkEmail(v)
	}
	return ""
}

// checkEmail accepts an address (a string) or PostHog's email object:
// from, to and subject, and text or html.
func checkEmail(v Value) string {
	switch v.Kind {
	case String:
		// A template such as "{person.properties.email}" is checked at run time.
		if !strings.Contains(v.String, "{") {
			if _, err := mail.ParseAddress(v.String); err != nil {
				return fmt.Sprintf("%q is not an email address", v.String)
			}
		}
		return ""
	case Object:
		for _, k := range []string{"from", "to", "subject"} {
			if _, ok := v.Get(k); !ok {
				return fmt.Sprintf("an email needs %s", k)
			}
		}
		_, text := v.Get("text")
		_, html := v.Get("html")
		if !text && !html {
			return "an email needs text or html"
		}
		return ""
	}
	return "must be an email address or an object with from, to, subject and text or html"
}

// Error is a template that does not compile, at Path inside the value
// ("" for the value itself, "headers.Authorization", "items[2]").
type Error struct {
	Path string
	// Line and Column are 1-based, within the template string.
	Line, Column int
	Msg          string
	Err          error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	switch {
	case e.Line > 0 && e.Column > 0:
		fmt.Fprintf(&b, "line %d, column %d: ", e.Line, e.Column)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Compile compiles the strings of v as templates in lang. For Hog it
// returns the compiled form: v's shape with each string replaced by its
// bytecode array (["_H", 1, …]), keys in v's order, which the data plane
// runs; nil when nothing is templated. Liquid strings are only parsed, to
// report syntax errors, and the data plane parses them again; NONE
// compiles nothing. Errors are *Error.
func Compile(v Value, lang hogwirev1.TemplateLanguage) (*Value, error) {
	switch lang {
	case hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_NONE:
		return nil, nil
	case hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_LIQUID:
		return nil, walkStrings(v, "", func(s, path string) error {
			if _, err := liquid.Parse(s); err != nil {
				e := &Error{Path: path, Msg: err.Error(), Err: err}
				var le *liquid.Error
				if errors.As(err, &le) {
					e.Line, e.Msg = le.Line, le.Msg
				}
				return e
			}
			return nil
		})
	}
	c, err := compileHog(v, "")
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func compileHog(v Value, path string) (Value, error) {
	switch v.Kind {
	case String:
		prog, err := compiler.CompileTemplate(v.String, compiler.Options{})
		if err != nil {
			e := &Error{Path: path, Msg: err.Error(), Err: err}
			var ce *compiler.Error
			if errors.As(err, &ce) {
				e.Line, e.Column, e.Msg = ce.Line, ce.Column, ce.Msg
			}
			return Value{}, e
		}
		b, err := json.Marshal(prog)
		if err != nil {
			return Value{}, &Error{Path: path, Msg: err.Error(), Err: err}
		}
		return Parse(string(b))
	case Array:
		out := Value{Kind: Array, Elems: make([]Value, len(v.Elems))}
		for i, e := range v.Elems {
			c, err := compileHog(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return Value{}, err
			}
			out.Elems[i] = c
		}
		return out, nil
	case Object:
		out := Value{Kind: Object, Keys: slices.Clone(v.Keys), Elems: make([]Value, len(v.Elems))}
		for i, e := range v.Elems {
			c, err := compileHog(e, join(path, v.Keys[i]))
			if err != nil {
				return Value{}, err
			}
			out.Elems[i] = c
		}
		return out, nil
	}
	return v, nil
}

// walkStrings calls f for every string in v with its path.
func walkStrings(v Value, path string, f func(s, path string) error) error {
	switch v.Kind {
	case String:
		return f(v.String, path)
	case Array:
		for i, e := range v.Elems {
			if err := walkStrings(e, fmt.Sprintf("%s[%d]", path, i), f); err != nil {
				return err
			}
		}
	case Object:
		for i, e := range v.Elems {
			if err := walkStrings(e, join(path, v.Keys[i]), f); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// IsProgram reports whether v is a compiled template: an array starting
// with "_H" or "_h", as PostHog marks bytecode inside a value.
func IsProgram(v Value) bool {
	return v.Kind == Array && len(v.Elems) > 0 && v.Elems[0].Kind == String &&
		(v.Elems[0].String == "_H" || v.Elems[0].String == "_h")
}
