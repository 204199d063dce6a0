package executor

import (
	"context"
	"math"
	"time"

	"github.com/hogwire/hogwire/hogvm/vm"
	"github.com/hogwire/hogwire/liquid"
)

// liquidRenderTime bounds one Liquid string's render, as PostHog's
// renderer does (500 ms).
const liquidRenderTime = 500 * time.Millisecond

// renderLiquid renders a Liquid input string against the globals built so
// far (inputs included).
func renderLiquid(ctx context.Context, t *liquid.Template, globals vm.Value) (vm.Value, error) {
	// The time counts toward the invocation's turn, as the VM's does.
	deadline := time.Now().Add(liquidRenderTime)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	bindings := map[string]any{}
	if g := globals.AsDict(); g != nil {
		vals := g.Values()
		for i, k := range g.Keys() {
			bindings[k.AsString()] = liquidValue(vals[i], 0)
		}
	}
	out, err := t.Render(bindings, liquid.Limits{Deadline: deadline})
	if err != nil {
		return vm.Null, err
	}
	return vm.String(out), nil
}

// liquidValue converts a Hog value for Liquid: objects keep their key
// order, dates become times.
func liquidValue(v vm.Value, depth int) any {
	if depth > 64 {
		return nil
	}
	switch v.Kind() {
	case vm.KindBool:
		return v.AsBool()
	case vm.KindNumber:
		return v.AsNumber()
	case vm.KindString:
		return v.AsString()
	case vm.KindArray, vm.KindTuple:
		elems := v.AsArray().Elems
		out := make([]any, len(elems))
		for i, e := range elems {
			out[i] = liquidValue(e, depth+1)
		}
		return out
	case vm.KindDict:
		d := v.AsDict()
		out := make(liquid.Map, d.Len())
		vals := d.Values()
		for i, k := range d.Keys() {
			out[i] = liquid.MapItem{Key: vm.FormatOutput(k), Value: liquidValue(vals[i], depth+1)}
		}
		return out
	case vm.KindDateTime:
		dt := v.AsDateTime()
		sec, frac := math.Modf(dt.Seconds)
		t := time.Unix(int64(sec), int64(frac*1e9)).UTC()
		if loc, err := time.LoadLocation(dt.Zone); err == nil {
			t = t.In(loc)
		}
		return t
	case vm.KindDate:
		d := v.AsDate()
		return time.Date(d.Year, time.Month(d.Month), d.Day, 0, 0, 0, 0, time.UTC)
	}
	return nil
}
