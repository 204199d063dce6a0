// Package enumword spells the API's enum values as plain words, the way
// template.yaml files and the command line write them: "string" for
// INPUT_TYPE_STRING, "disabled_temporarily" for
// HEALTH_STATE_DISABLED_TEMPORARILY. Reading accepts the word (any case,
// dashes or spaces for underscores) and the full enum name alike.
package enumword

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// aliases are extra words for some values, by enum and word; PostHog's
// documentation and users say "integer" for a number input.
var aliases = map[protoreflect.FullName]map[string]string{
	"hogwire.v1.InputType": {"integer": "number", "int": "number", "float": "number", "bool": "boolean"},
}

// prefix is what every value name of d starts with: "INPUT_TYPE_" for
// InputType, taken from its zero value INPUT_TYPE_UNSPECIFIED.
func prefix(d protoreflect.EnumDescriptor) string {
	zero := string(d.Values().ByNumber(0).Name())
	if p, ok := strings.CutSuffix(zero, "UNSPECIFIED"); ok {
		return p
	}
	return ""
}

// Word returns the plain word of value n of d, "" for the unspecified value.
func Word(d protoreflect.EnumDescriptor, n protoreflect.EnumNumber) string {
	v := d.Values().ByNumber(n)
	if v == nil || n == 0 {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(string(v.Name()), prefix(d)))
}

// Of returns the plain word of e.
func Of(e protoreflect.Enum) string { return Word(e.Descriptor(), e.Number()) }

// Parse reads a word or a full value name of d. The unspecified value is
// never a valid word.
func Parse(d protoreflect.EnumDescriptor, s string) (protoreflect.EnumNumber, bool) {
	w := strings.ToLower(strings.NewReplacer("-", "_", " ", "_").Replace(strings.TrimSpace(s)))
	if a, ok := aliases[d.FullName()][w]; ok {
		w = a
	}
	p := prefix(d)
	for _, name := range []string{strings.ToUpper(p + w), strings.ToUpper(w)} {
		if v := d.Values().ByName(protoreflect.Name(name)); v != nil && v.Number() != 0 && strings.HasPrefix(name, p) {
			return v.Number(), true
		}
	}
	return 0, false
}

// Words lists the words of d's values, for error messages.
func Words(d protoreflect.EnumDescriptor) []string {
	var out []string
	for i := 0; i < d.Values().Len(); i++ {
		if w := Word(d, d.Values().Get(i).Number()); w != "" {
			out = append(out, w)
		}
	}
	for a := range maps.Keys(aliases[d.FullName()]) {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Normalize rewrites a message of type md decoded from JSON into m (as
// encoding/json decodes into map[string]any): every enum field written as
// a word gets its full name, which protojson reads. Fields are found by
// their JSON or proto names; unknown ones are left for protojson to
// report. Errors name the field, e.g. "inputs_schema[1].type".
func Normalize(md protoreflect.MessageDescriptor, m map[string]any) error {
	return normalize(md, m, "")
}

func normalize(md protoreflect.MessageDescriptor, m map[string]any, path string) error {
	for key, val := range m {
		fd := md.Fields().ByJSONName(key)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(key))
		}
		if fd == nil {
			continue
		}
		at := path + string(fd.Name())
		switch {
		case fd.IsMap():
			vals, _ := val.(map[string]any)
			for k, v := range vals {
				nv, err := normalizeValue(fd.MapValue(), v, at+"["+k+"]")
				if err != nil {
					return err
				}
				vals[k] = nv
			}
		case fd.IsList():
			list, _ := val.([]any)
			for i, v := range list {
				nv, err := normalizeValue(fd, v, fmt.Sprintf("%s[%d]", at, i))
				if err != nil {
					return err
				}
				list[i] = nv
			}
		default:
			nv, err := normalizeValue(fd, val, at)
			if err != nil {
				return err
			}
			m[key] = nv
		}
	}
	return nil
}

// normalizeValue normalizes one (non-repeated) value of field fd.
func normalizeValue(fd protoreflect.FieldDescriptor, v any, at string) (any, error) {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		s, ok := v.(string)
		if !ok {
			return v, nil // a number, or null: protojson decides
		}
		ed := fd.Enum()
		n, ok := Parse(ed, s)
		if !ok {
			if ed.FullName() == "google.protobuf.NullValue" {
				return v, nil
			}
			return nil, fmt.Errorf("%s: %s is not one of %s", at, s, strings.Join(Words(ed), ", "))
		}
		return string(ed.Values().ByNumber(n).Name()), nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		sub, ok := v.(map[string]any)
		// Well-known types have JSON forms of their own.
		if !ok || strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
			return v, nil
		}
		return sub, normalize(fd.Message(), sub, at+".")
	}
	return v, nil
}
