package enumword_test

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/enumword"
)

func TestWordsBothWays(t *testing.T) {
	ed := hogwirev1.HealthState(0).Descriptor()
	if w := enumword.Of(hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY); w != "disabled_temporarily" {
		t.Errorf("word %q", w)
	}
	if enumword.Of(hogwirev1.HealthState_HEALTH_STATE_UNSPECIFIED) != "" {
		t.Error("the unspecified value has a word")
	}
	for _, in := range []string{"disabled_temporarily", "Disabled-Temporarily", "disabled temporarily", "HEALTH_STATE_DISABLED_TEMPORARILY"} {
		if n, ok := enumword.Parse(ed, in); !ok || hogwirev1.HealthState(n) != hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY {
			t.Errorf("Parse(%q) = %v, %v", in, n, ok)
		}
	}
	for _, in := range []string{"", "unspecified", "HEALTH_STATE_UNSPECIFIED", "sick", "INPUT_TYPE_STRING"} {
		if _, ok := enumword.Parse(ed, in); ok {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
	if n, ok := enumword.Parse(hogwirev1.InputType(0).Descriptor(), "integer"); !ok || hogwirev1.InputType(n) != hogwirev1.InputType_INPUT_TYPE_NUMBER {
		t.Errorf("integer = %v, %v; want number", n, ok)
	}
}

func TestNormalizeDestination(t *testing.T) {
	src := `{"displayName": "D", "inputs_schema": [{"key": "a", "type": "string"}, {"key": "b", "type": "INPUT_TYPE_JSON"}, {"key": "c", "type": 3}],
	  "filters": {"properties": [{"key": "p", "operator": "icontains", "scope": "person", "value": "x"}],
	    "events": [{"event": "e", "properties": [{"key": "q", "operator": "is_not_set"}]}]},
	  "inputs": {"a": {"value": "kept as it is: string"}}}`
	var m map[string]any
	if err := json.Unmarshal([]byte(src), &m); err != nil {
		t.Fatal(err)
	}
	if err := enumword.Normalize((&hogwirev1.Destination{}).ProtoReflect().Descriptor(), m); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	d := &hogwirev1.Destination{}
	if err := protojson.Unmarshal(b, d); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if d.InputsSchema[0].Type != hogwirev1.InputType_INPUT_TYPE_STRING || d.InputsSchema[1].Type != hogwirev1.InputType_INPUT_TYPE_JSON ||
		d.InputsSchema[2].Type != hogwirev1.InputType_INPUT_TYPE_BOOLEAN {
		t.Errorf("types %v", d.InputsSchema)
	}
	p := d.Filters.Properties[0]
	if p.Operator != hogwirev1.PropertyOperator_PROPERTY_OPERATOR_ICONTAINS || p.Scope != hogwirev1.PropertyScope_PROPERTY_SCOPE_PERSON ||
		d.Filters.Events[0].Properties[0].Operator != hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_NOT_SET {
		t.Errorf("filters %v", d.Filters)
	}
	if d.Inputs["a"].GetValue().GetStringValue() != "kept as it is: string" {
		t.Error("a value inside google.protobuf.Value was rewritten")
	}

	bad := map[string]any{"inputs_schema": []any{map[string]any{"key": "a"}, map[string]any{"key": "b", "type": "text"}}}
	err := enumword.Normalize((&hogwirev1.Destination{}).ProtoReflect().Descriptor(), bad)
	if err == nil || !strings.HasPrefix(err.Error(), "inputs_schema[1].type: text is not one of ") || !strings.Contains(err.Error(), "dictionary") {
		t.Errorf("bad type: %v", err)
	}
}
