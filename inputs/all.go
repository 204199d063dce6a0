package inputs

import (
	"fmt"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// CompileAll checks a destination's inputs schema and every value against
// it, in place: an unset value takes its schema's default, both forms of
// every value and default are filled in (SetValue), and every templated
// value is compiled (Compile). Each problem is reported with its field,
// relative to the destination ("inputs_schema[2].key", "inputs.body").
// values must not be nil.
func CompileAll(schema []*hogwirev1.InputSchema, values map[string]*hogwirev1.InputValue, report func(field, msg string)) {
	seen := map[string]bool{}
	for i, sc := range schema {
		f := fmt.Sprintf("inputs_schema[%d]", i)
		switch {
		case !validKey(sc.Key):
			report(f+".key", fmt.Sprintf("%q must be letters, digits and underscores, starting with a letter or underscore", sc.Key))
		case seen[sc.Key]:
			report(f+".key", fmt.Sprintf("%q is declared twice", sc.Key))
		}
		seen[sc.Key] = true
		if _, ok := hogwirev1.InputType_name[int32(sc.Type)]; !ok || sc.Type == hogwirev1.InputType_INPUT_TYPE_UNSPECIFIED {
			report(f+".type", "is required (string, number, boolean, choice, dictionary, json or email)")
		}
		if _, ok := hogwirev1.TemplateLanguage_name[int32(sc.TemplateLanguage)]; !ok {
			report(f+".template_language", "is not a template language")
		}
		if sc.Type == hogwirev1.InputType_INPUT_TYPE_CHOICE && len(sc.Choices) == 0 {
			report(f+".choices", "a choice input needs choices")
		}
		def, ok, err := DefaultOf(sc)
		switch {
		case err != nil:
			report(f+".default_json", err.Error())
		case ok:
			if msg := Check(sc, def); msg != "" && def.Kind != Null {
				report(f+".default", msg)
			} else if _, err := Compile(def, Language(sc, nil)); err != nil {
				report(f+".default", err.Error())
			}
			SetDefault(sc, def)
		}
	}
	for key := range values {
		if !seen[key] {
			report("inputs."+key, "is not declared in inputs_schema")
		}
	}
	for _, sc := range schema {
		f := "inputs." + sc.Key
		in := values[sc.Key]
		if _, ok := hogwirev1.TemplateLanguage_name[int32(in.GetTemplateLanguage())]; !ok {
			report(f+".template_language", "is not a template language")
			continue
		}
		val, ok, err := Of(in)
		if err != nil {
			report(f+".value_json", err.Error())
			continue
		}
		if !ok || val.Kind == Null {
			def, hasDef, _ := DefaultOf(sc)
			if !hasDef || def.Kind == Null {
				if sc.Required {
					report(f, "is required")
				}
				delete(values, sc.Key)
				continue
			}
			// The default, in the language the value chose, if any.
			in = &hogwirev1.InputValue{TemplateLanguage: in.GetTemplateLanguage()}
			values[sc.Key] = in
			val = def
		}
		in.SecretSet = sc.Secret
		SetValue(in, val)
		if msg := Check(sc, val); msg != "" {
			report(f, msg)
			continue
		}
		c, err := Compile(val, Language(sc, in))
		if err != nil {
			report(f, err.Error())
			continue
		}
		SetCompiled(in, c)
	}
}

// validKey reports whether k can be read as inputs.<k>.
func validKey(k string) bool {
	if k == "" || len(k) > 100 {
		return false
	}
	for i, c := range k {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
