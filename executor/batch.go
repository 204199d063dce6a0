package executor

import (
	"context"
	"fmt"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/hogvm/vm"
)

// BatchItem is how one event of a batch invocation ended.
type BatchItem struct {
	UUID string
	// Status is Succeeded, Failed, Filtered, FilterFailed, Masked, or the
	// batch's own status (InputsFailed, Skipped, Parked, …) for every event
	// that took part in it.
	Status Status
	// Error says why it failed: the batch's error, or the reason the
	// program gave for this event (see InvokeBatch).
	Error string
}

// InvokeBatch runs a destination whose code delivers in batches on events:
// filters (unless Options.SkipFilters) and masking per event, then the
// inputs per event and the program once, with these globals:
//
//	events   a list with one dict per event: {event, person, groups,
//	         inputs}, inputs being rendered with that event
//	inputs   the first event's inputs: for the settings that are the same
//	         for every event (URL, API key)
//	project, source
//
// The program may report events the vendor refused by returning
// {failed: [{index, error}, …]}, index being the event's position in
// events (from 0): those events fail, the others succeed. A throw, a
// limit or a failed fetch fails the whole batch; with Options.Park, a
// fetch worth retrying later parks the whole batch (Result.Parked), to be
// resumed with the same events in the same order.
//
// Result.Items has one entry per event, in order; Result.Status is the
// batch's (Filtered when no event was left to run, Masked when every one
// left was masked).
func (d *Destination) InvokeBatch(ctx context.Context, events []*Globals, opts Options) *Result {
	if len(events) == 0 {
		return &Result{Status: Filtered, dest: d, secrets: d.secrets}
	}
	return d.invoke(ctx, events[0], events, opts)
}

// runBatch is run for a batch invocation.
func (inv *invocation) runBatch() {
	res := inv.res
	res.Items = make([]BatchItem, len(inv.batch))
	for i, g := range inv.batch {
		res.Items[i].UUID = g.uuid
	}
	defer inv.settleItems()
	// A resumed batch holds the events it was parked with: they passed.
	if !inv.opts.SkipFilters && inv.opts.Resume == nil {
		for i, g := range inv.batch {
			match, err := inv.d.Match(g)
			switch {
			case err != nil:
				res.Items[i].Status, res.Items[i].Error = FilterFailed, err.Error()
				inv.log(hogwirev1.LogLevel_LOG_LEVEL_ERROR, "Error filtering event "+g.uuid+": "+err.Error())
			case !match:
				res.Items[i].Status = Filtered
			}
		}
	}
	if err := inv.acquire(); err != nil {
		inv.stopped(err)
		return
	}
	if inv.opts.Resume != nil {
		inv.resume(inv.opts.Resume)
		return
	}
	masked := false
	if inv.opts.Mask != nil && inv.d.masking != nil {
		for i, g := range inv.batch {
			if res.Items[i].Status != 0 {
				continue
			}
			if inv.mask(g) {
				res.Items[i].Status, masked = Masked, true
			}
			if inv.state != StateRunning {
				return // stopped while waiting for the masking store
			}
		}
	}
	var live []int
	for i := range inv.batch {
		if res.Items[i].Status == 0 {
			live = append(live, i)
		}
	}
	if len(live) == 0 {
		res.Status = Filtered
		if masked {
			res.Status = Masked
		}
		inv.end(StateSkipped)
		return
	}
	inv.programBatch(live)
}

// programBatch renders each live event's inputs and runs the program on
// the list.
func (inv *invocation) programBatch(live []int) {
	d := inv.d
	events := make([]vm.Value, len(live))
	var first *vm.Dict
	for k, i := range live {
		g := inv.batch[i]
		inputs, ok := inv.inputs(d.globals(g, 1))
		if !ok {
			return
		}
		if first == nil {
			first = inputs
			inv.inputVals = append([]vm.Value(nil), inputs.Values()...)
		}
		el := vm.NewDict(4)
		el.SetString("event", g.event)
		el.SetString("person", g.person)
		el.SetString("groups", g.groups)
		el.SetString("inputs", vm.DictValue(inputs))
		events[k] = vm.DictValue(el)
	}
	globals := vm.NewDict(4)
	globals.SetString("events", vm.NewArray(events))
	globals.SetString("inputs", vm.DictValue(first))
	globals.SetString("project", inv.g.project)
	globals.SetString("source", d.sourceGlobal(inv.g.projectURL))
	out, err := d.machine.RunHost(inv.ctx, inv, d.program, vm.DictValue(globals))
	inv.loop(out, err)
}

// settleItems gives every event that took part in the batch its outcome:
// the batch's, or for a batch that succeeded, Failed where the program
// named the event in its return value's failed list.
func (inv *invocation) settleItems() {
	res := inv.res
	var live []int
	for i := range res.Items {
		if res.Items[i].Status == 0 {
			live = append(live, i)
		}
	}
	if res.Status == Succeeded {
		for _, f := range failedItems(res.Value) {
			if f.index < 0 || f.index >= len(live) {
				inv.log(hogwirev1.LogLevel_LOG_LEVEL_WARN, fmt.Sprintf("The program's failed list names index %d, which is not in the batch of %d events", f.index, len(live)))
				continue
			}
			it := &res.Items[live[f.index]]
			if it.Status == Failed {
				continue
			}
			it.Status, it.Error = Failed, f.err
			inv.log(hogwirev1.LogLevel_LOG_LEVEL_ERROR, "Event "+it.UUID+" failed: "+f.err)
		}
	}
	for _, i := range live {
		if res.Items[i].Status == 0 {
			res.Items[i].Status, res.Items[i].Error = res.Status, res.Error
		}
	}
}

type failedItem struct {
	index int
	err   string
}

// failedItems reads {failed: [{index, error}, …]} from a batch program's
// return value.
func failedItems(v vm.Value) []failedItem {
	d := v.AsDict()
	if d == nil {
		return nil
	}
	list, ok := d.GetString("failed")
	if !ok || (list.Kind() != vm.KindArray && list.Kind() != vm.KindTuple) {
		return nil
	}
	var out []failedItem
	for _, e := range list.AsArray().Elems {
		ed := e.AsDict()
		if ed == nil {
			continue
		}
		idx, _ := ed.GetString("index")
		if idx.Kind() != vm.KindNumber {
			continue
		}
		msg := "the vendor refused the event"
		if m, ok := ed.GetString("error"); ok && m.Kind() != vm.KindNull {
			msg = vm.FormatOutput(m)
		}
		out = append(out, failedItem{int(idx.AsNumber()), msg})
	}
	return out
}
