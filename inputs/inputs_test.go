package inputs_test

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/inputs"
)

func TestParseKeepsOrder(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{`{"zeta":1,"alpha":2}`, `{"zeta":1,"alpha":2}`},
		{` { "b" : [1, 2.5, -0.001, 1e21, 1e-7, true, null, "x<&>\u2028"], "a": {} } `, "{\"b\":[1,2.5,-0.001,1e+21,1e-7,true,null,\"x<&>\u2028\"],\"a\":{}}"}, // U+2028 raw, as JSON.stringify writes it
		// A repeated key keeps its first place and its last value, as JSON.parse.
		{`{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
		{`"tab\there\u0001"`, `"tab\there\u0001"`},
	} {
		v, err := inputs.Parse(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got := v.JSON(); got != c.out {
			t.Errorf("%s: got %s, want %s", c.in, got, c.out)
		}
	}
	for _, bad := range []string{``, `{`, `{"a":1} x`, `[1,]`, `1e999`} {
		if _, err := inputs.Parse(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestOfReadsEitherForm(t *testing.T) {
	st, _ := structpb.NewValue(map[string]any{"zeta": 1, "alpha": 2})
	v, ok, err := inputs.Of(&hogwirev1.InputValue{Value: st})
	if err != nil || !ok || v.JSON() != `{"alpha":2,"zeta":1}` {
		t.Errorf("proto only: %s %v %v", v.JSON(), ok, err)
	}
	v, _, err = inputs.Of(&hogwirev1.InputValue{Value: st, ValueJson: `{"zeta":1,"alpha":2}`})
	if err != nil || v.JSON() != `{"zeta":1,"alpha":2}` {
		t.Errorf("both, equal: %s %v", v.JSON(), err)
	}
	if _, _, err := inputs.Of(&hogwirev1.InputValue{Value: st, ValueJson: `{"zeta":1}`}); err == nil {
		t.Error("value and value_json that differ were accepted")
	}
	if _, ok, _ := inputs.Of(nil); ok {
		t.Error("nil input has a value")
	}
}

func TestCompile(t *testing.T) {
	v, _ := inputs.Parse(`{"b":"{event.event}","a":[1,"x {person.name}"],"c":"plain"}`)
	c, err := inputs.Compile(v, hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_HOG)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.JSON(); !strings.HasPrefix(got, `{"b":["_H",1,32,"event",32,"event",1,2,38],"a":[1,["_H",`) {
		t.Errorf("compiled = %s", got)
	}
	bad, _ := inputs.Parse(`{"h":{"x":[0,"{event."]}}`)
	_, err = inputs.Compile(bad, hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_HOG)
	var ie *inputs.Error
	if !errors.As(err, &ie) || ie.Path != "h.x[1]" || ie.Line != 1 || ie.Column != 8 {
		t.Errorf("got %v, want an error at h.x[1], line 1, column 8", err)
	}
	liq, _ := inputs.Parse(`{"subject":"Hi {{ name }}","html":"{% if x %}"}`)
	_, err = inputs.Compile(liq, hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_LIQUID)
	if !errors.As(err, &ie) || ie.Path != "html" {
		t.Errorf("liquid: got %v, want an error at html", err)
	}
	if c, err := inputs.Compile(bad, hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_NONE); c != nil || err != nil {
		t.Errorf("none: %v %v", c, err)
	}
}

func TestLanguage(t *testing.T) {
	off, on := false, true
	liquid := hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_LIQUID
	for _, c := range []struct {
		s    *hogwirev1.InputSchema
		in   *hogwirev1.InputValue
		want hogwirev1.TemplateLanguage
	}{
		{&hogwirev1.InputSchema{}, nil, hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_HOG},
		{&hogwirev1.InputSchema{Templating: &on, TemplateLanguage: liquid}, nil, liquid},
		{&hogwirev1.InputSchema{}, &hogwirev1.InputValue{TemplateLanguage: liquid}, liquid},
		{&hogwirev1.InputSchema{Templating: &off}, &hogwirev1.InputValue{TemplateLanguage: liquid}, hogwirev1.TemplateLanguage_TEMPLATE_LANGUAGE_NONE},
	} {
		if got := inputs.Language(c.s, c.in); got != c.want {
			t.Errorf("%v %v: got %v, want %v", c.s, c.in, got, c.want)
		}
	}
}
