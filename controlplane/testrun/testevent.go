package testrun

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/enumword"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/stl"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// sampleEventFor is SampleEvent made to pass f, as PostHog's test panel
// builds its example: the event name of the first event filter that names
// one, and properties that satisfy the property filters (the top-level
// ones and that entry's). A free expression is not solved for; when it
// (or a regular expression) still excludes the sample, the test says so.
func sampleEventFor(f *hogwirev1.Filters, now time.Time) *hogwirev1.Event {
	ev := SampleEvent(now)
	props := f.GetProperties()
	for i, e := range f.GetEvents() {
		if e.GetEvent() != "" || i == len(f.GetEvents())-1 {
			if e.GetEvent() != "" {
				ev.Event = e.GetEvent()
			}
			props = append(props[:len(props):len(props)], e.GetProperties()...)
			break
		}
	}
	for _, p := range props {
		satisfy(ev, p, now)
	}
	return ev
}

// satisfy sets the property p reads so that p holds.
func satisfy(ev *hogwirev1.Event, p *hogwirev1.PropertyFilter, now time.Time) {
	fields := ev.GetProperties().GetFields()
	if p.GetScope() == hogwirev1.PropertyScope_PROPERTY_SCOPE_PERSON {
		if p.GetKey() == "distinct_id" {
			if s, ok := firstValue(p.GetValue()).(string); ok && p.GetOperator() == hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT {
				ev.DistinctId = s
			}
			return
		}
		fields = ev.GetPerson().GetProperties().GetFields()
	}
	if fields == nil {
		return
	}
	key, want := p.GetKey(), firstValue(p.GetValue())
	cur, has := fields[key]
	set := func(v any) {
		if pv, err := structpb.NewValue(v); err == nil {
			fields[key] = pv
		}
	}
	text := fmt.Sprint(want)
	curText := ""
	if has {
		curText = fmt.Sprint(cur.AsInterface())
	}
	num, isNum := number(want)
	switch p.GetOperator() {
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_EXACT:
		if want != nil {
			set(want)
		}
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_NOT:
		if !has || curText == text {
			set("not " + text)
		}
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_ICONTAINS:
		if !strings.Contains(strings.ToLower(curText), strings.ToLower(text)) {
			set(strings.NewReplacer("%", "", "_", "").Replace(text))
		}
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_NOT_ICONTAINS:
		if strings.Contains(strings.ToLower(curText), strings.ToLower(text)) {
			set("sample")
		}
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_REGEX:
		if re, err := regexp.Compile(text); err == nil && !(has && re.MatchString(curText)) {
			if prefix, complete := re.LiteralPrefix(); complete || re.MatchString(prefix) {
				set(prefix)
			}
		}
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_NOT_REGEX:
		if re, err := regexp.Compile(text); err == nil && (!has || re.MatchString(curText)) {
			set("")
		}
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_GT, hogwirev1.PropertyOperator_PROPERTY_OPERATOR_GTE:
		if isNum {
			set(num + 1)
		}
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_LT, hogwirev1.PropertyOperator_PROPERTY_OPERATOR_LTE:
		if isNum {
			set(num - 1)
		}
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_SET:
		if !has {
			set("sample")
		}
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_NOT_SET:
		delete(fields, key)
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_DATE_BEFORE:
		set(dateNear(text, now, -1))
	case hogwirev1.PropertyOperator_PROPERTY_OPERATOR_IS_DATE_AFTER:
		set(dateNear(text, now, +1))
	}
}

// firstValue is a filter's value as Go, the first one of a list.
func firstValue(v *structpb.Value) any {
	if l := v.GetListValue(); l != nil {
		if len(l.GetValues()) == 0 {
			return nil
		}
		return l.GetValues()[0].AsInterface()
	}
	if v == nil {
		return nil
	}
	return v.AsInterface()
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		return f, err == nil
	}
	return 0, false
}

// dateNear returns a date a day before (dir -1) or after (+1) the filter's
// date; relative dates ("-7d") are in the past, so a day before that is
// years ago and a day after it is now.
func dateNear(s string, now time.Time, dir int) string {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.AddDate(0, 0, dir).UTC().Format(time.RFC3339)
		}
	}
	if dir < 0 {
		return now.AddDate(-30, 0, 0).UTC().Format(time.RFC3339)
	}
	return now.UTC().Format(time.RFC3339)
}

// explainFiltered says which part of f excludes the event: the event
// names, the first property filter that is false (with the value it
// read), or the expression. Each part is run on its own with the event's
// filter globals, exactly as the whole filter runs.
func explainFiltered(ctx context.Context, f *hogwirev1.Filters, ev *hogwirev1.Event, g *executor.Globals) string {
	if evs := f.GetEvents(); len(evs) > 0 {
		var names []string
		var matching []int
		for i, e := range evs {
			if e.GetEvent() == "" || e.GetEvent() == ev.GetEvent() {
				matching = append(matching, i)
			}
			names = append(names, strconv.Quote(e.GetEvent()))
		}
		if len(matching) == 0 {
			return fmt.Sprintf("filters.events: the event is %q, not one of %s", ev.GetEvent(), strings.Join(names, ", "))
		}
		for _, i := range matching {
			for j, p := range evs[i].GetProperties() {
				if why := explainProperty(ctx, p, ev, g); why != "" {
					return fmt.Sprintf("filters.events[%d].properties[%d]: %s", i, j, why)
				}
			}
		}
	}
	for i, p := range f.GetProperties() {
		if why := explainProperty(ctx, p, ev, g); why != "" {
			return fmt.Sprintf("filters.properties[%d]: %s", i, why)
		}
	}
	if expr := f.GetExpression(); strings.TrimSpace(expr) != "" {
		if ok, err := holds(ctx, &hogwirev1.Filters{Expression: expr}, g); err != nil {
			return "filters.expression: " + err.Error()
		} else if !ok {
			return "filters.expression: is not true for this event"
		}
	}
	return "the filters do not match this event"
}

// explainProperty says why p is false for the event, or "" if it holds.
func explainProperty(ctx context.Context, p *hogwirev1.PropertyFilter, ev *hogwirev1.Event, g *executor.Globals) string {
	ok, err := holds(ctx, &hogwirev1.Filters{Properties: []*hogwirev1.PropertyFilter{proto.CloneOf(p)}}, g)
	if err != nil {
		return err.Error()
	}
	if ok {
		return ""
	}
	fields, where := ev.GetProperties().GetFields(), "event"
	if p.GetScope() == hogwirev1.PropertyScope_PROPERTY_SCOPE_PERSON {
		fields, where = ev.GetPerson().GetProperties().GetFields(), "person"
	}
	cond := fmt.Sprintf("%s property %q %s", where, p.GetKey(), strings.ReplaceAll(enumword.Of(p.GetOperator()), "_", " "))
	if p.GetValue() != nil {
		b, _ := p.GetValue().MarshalJSON()
		cond += " " + compactJSONText(b)
	}
	v, has := fields[p.GetKey()]
	if !has {
		return cond + " is false: the property is not set"
	}
	b, _ := v.MarshalJSON()
	return cond + " is false: it is " + compactJSONText(b)
}

// holds runs the filters f on the globals.
func holds(ctx context.Context, f *hogwirev1.Filters, g *executor.Globals) (bool, error) {
	src, err := filters.Source(f)
	if err != nil {
		return false, err
	}
	p, err := compiler.CompileExpr(src, compiler.Options{})
	if err != nil {
		return false, err
	}
	prog, err := vm.Link(p, stl.Library())
	if err != nil {
		return false, err
	}
	out, err := vm.New(vm.Options{Timeout: time.Second}).Run(ctx, prog, g.FilterValue())
	if err != nil {
		return false, err
	}
	return out.Finished && out.Value.Kind() == vm.KindBool && out.Value.AsBool(), nil
}

func compactJSONText(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return string(b)
	}
	return out.String()
}
