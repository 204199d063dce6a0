package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/enumword"
)

func fmtTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// word shows an enum value in a table: HEALTH_STATE_DISABLED_TEMPORARILY
// as "disabled temporarily", the unspecified value as "-".
func word(e protoreflect.Enum) string {
	return orDash(strings.ReplaceAll(enumword.Of(e), "_", " "))
}

func healthWord(h *hogwirev1.DestinationHealth) string {
	if h == nil {
		return "-"
	}
	return word(h.GetState())
}

// valueText renders an input value on one line: strings as they are,
// anything else as compact JSON.
func valueText(v *structpb.Value) string {
	if v == nil {
		return "-"
	}
	if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
		return s.StringValue
	}
	b, err := v.MarshalJSON()
	if err != nil {
		return "?"
	}
	return compactJSON(b)
}

// compactJSON removes the whitespace protojson may add.
func compactJSON(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return string(b)
	}
	return out.String()
}
