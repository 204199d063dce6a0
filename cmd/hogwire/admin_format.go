package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
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

// enumWord turns HEALTH_STATE_DISABLED_TEMPORARILY into
// "disabled temporarily" for tables.
func enumWord(name, prefix string) string {
	w := strings.TrimPrefix(name, prefix)
	if w == "UNSPECIFIED" {
		return "-"
	}
	return strings.ToLower(strings.ReplaceAll(w, "_", " "))
}

func healthWord(h *hogwirev1.DestinationHealth) string {
	if h == nil {
		return "-"
	}
	return enumWord(h.GetState().String(), "HEALTH_STATE_")
}

func inputTypeWord(t hogwirev1.InputType) string {
	return enumWord(t.String(), "INPUT_TYPE_")
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
