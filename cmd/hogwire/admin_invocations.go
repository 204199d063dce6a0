package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/enumword"
	"github.com/hogwire/hogwire/resourcename"
)

func (a *app) invocationsCommand() *cobra.Command {
	return groupCommand("invocations", "Search the record of every invocation and run them again: list, get, rerun", "",
		a.invocationsList(), a.invocationsGet(), a.invocationsRerun(), a.invocationsReruns(), a.invocationsCancelRerun())
}

// invocationStatuses is the repeatable --status flag.
type invocationStatuses []hogwirev1.InvocationStatus

func (s *invocationStatuses) String() string {
	var words []string
	for _, v := range *s {
		words = append(words, enumword.Of(v))
	}
	return strings.Join(words, ",")
}

func (s *invocationStatuses) Type() string { return "status" }

func (s *invocationStatuses) Set(v string) error {
	for _, w := range strings.Split(v, ",") {
		n, ok := enumword.Parse(hogwirev1.InvocationStatus(0).Descriptor(), strings.TrimSpace(w))
		if !ok {
			return fmt.Errorf("%q is not succeeded, failed, skipped, masked or parked", w)
		}
		*s = append(*s, hogwirev1.InvocationStatus(n))
	}
	return nil
}

// invocationQuery is the filter flags list and persons trace share.
type invocationQuery struct {
	since, until time.Duration
	statuses     invocationStatuses
	kind         string
	limit        int
}

func (q *invocationQuery) register(c *adminCmd) {
	c.fs.DurationVar(&q.since, "since", 24*time.Hour, "only invocations that started in this last `duration` (0: all kept)")
	c.fs.DurationVar(&q.until, "until", 0, "only invocations that started before this `duration` ago")
	c.fs.Var(&q.statuses, "status", "only invocations that ended so: succeeded, failed, skipped, masked, parked (repeatable, or comma-separated)")
	c.fs.StringVar(&q.kind, "kind", "", "only invocations of this error `kind` (http_5xx, fetch_timeout, hog_error, inputs, …) or skip reason")
	c.fs.IntVar(&q.limit, "limit", 100, "list at most this many (0: all)")
}

func (q *invocationQuery) filter(cmd string) (*hogwirev1.InvocationFilter, error) {
	if q.since < 0 || q.until < 0 || q.limit < 0 {
		return nil, usagef("%s: --since, --until and --limit must not be negative", cmd)
	}
	if q.since > 0 && q.until >= q.since {
		return nil, usagef("%s: --until must be less than --since", cmd)
	}
	f := &hogwirev1.InvocationFilter{Statuses: q.statuses, ErrorKind: q.kind}
	now := time.Now()
	if q.since > 0 {
		f.StartTime = timestamppb.New(now.Add(-q.since))
	}
	if q.until > 0 {
		f.EndTime = timestamppb.New(now.Add(-q.until))
	}
	return f, nil
}

// list pages through ListInvocations up to the limit.
func (q *invocationQuery) list(ctx context.Context, client hogwirev1.InvocationServiceClient, parent string, f *hogwirev1.InvocationFilter) (*hogwirev1.ListInvocationsResponse, error) {
	all := &hogwirev1.ListInvocationsResponse{}
	for {
		size := 1000
		if q.limit > 0 {
			size = min(size, q.limit-len(all.Invocations))
		}
		resp, err := client.ListInvocations(ctx, &hogwirev1.ListInvocationsRequest{Parent: parent, Filter: f, PageSize: int32(size), PageToken: all.NextPageToken})
		if err != nil {
			return nil, err
		}
		all.Invocations = append(all.Invocations, resp.GetInvocations()...)
		all.NextPageToken = resp.GetNextPageToken()
		if all.NextPageToken == "" || (q.limit > 0 && len(all.Invocations) >= q.limit) {
			return all, nil
		}
	}
}

func (a *app) invocationsList() *cobra.Command {
	c := a.newAdminCmd("list DESTINATION", "List invocations",
		"Lists a destination's invocations, oldest first: how each ended (succeeded, failed, skipped,\n"+
			"masked, parked), why, and on which event. DESTINATION is an id or a resource name;\n"+
			"projects/ID lists a whole project. Events a destination's filters left out are not\n"+
			"recorded one by one (see hogwire metrics).", exactArgs(1))
	c.cmd.Example = "  hogwire invocations list hook --status failed --since 1h\n" +
		"  hogwire invocations list projects/shop --event 0190a1b2-…\n" +
		"  hogwire invocations list projects/shop --distinct-id ada@example.com"
	var q invocationQuery
	var event, distinct, rerun string
	q.register(c)
	c.fs.StringVar(&event, "event", "", "only invocations on the event with this `uuid`, on every destination of the project")
	c.fs.StringVar(&rerun, "rerun", "", "only the invocations of this rerun (its id, or projects/ID/reruns/ID)")
	c.fs.StringVar(&distinct, "distinct-id", "", "only invocations on events of this distinct `id`")
	c.completeArgs(completeDestinations)
	return c.runE(func(ctx context.Context) error {
		f, err := q.filter("invocations list")
		if err != nil {
			return err
		}
		f.EventUuid, f.DistinctId = event, distinct
		if rerun != "" {
			parent := resourcename.DestinationArg(c.args[0])
			project, _, _ := strings.Cut(strings.TrimPrefix(parent, "projects/"), "/")
			if f.Rerun, err = rerunName(project, rerun); err != nil {
				return err
			}
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		all, err := q.list(ctx, hogwirev1.NewInvocationServiceClient(cc), resourcename.DestinationArg(c.args[0]), f)
		if err != nil {
			return c.callErr("list invocations", err)
		}
		return c.printMessage(all, func(w io.Writer) error {
			tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTARTED\tDESTINATION\tSTATUS\tKIND\tEVENT\tDISTINCT ID\tDURATION\tFETCHES")
			for _, r := range all.Invocations {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.GetId(), fmtTime(r.GetStartTime()), shortDestination(r.GetDestination()),
					enumword.Of(r.GetStatus()), orDash(r.GetErrorKind()), r.GetEventUuid(), orDash(r.GetDistinctId()),
					shortDuration(r.GetDuration().AsDuration()), len(r.GetFetches()))
			}
			if all.NextPageToken != "" {
				fmt.Fprintln(tw, "(more: raise --limit)")
			}
			return tw.Flush()
		})
	}).cmd
}

func (a *app) invocationsGet() *cobra.Command {
	c := a.newAdminCmd("get ID", "Show an invocation with its fetches and logs",
		"Shows one invocation: its status and error, the event and person, every fetch attempt\n"+
			"(method, URL without query or secrets, status, duration), and its log entries.\n"+
			"ID is an id from invocations list with --project, or a name projects/ID/invocations/ID.", exactArgs(1))
	c.cmd.Example = "  hogwire invocations get --project shop 1234-0"
	var project string
	c.fs.StringVar(&project, "project", "", "the invocation's project: projects/ID or ID (default: $HOGWIRE_PROJECT or the context's)")
	return c.runE(func(ctx context.Context) error {
		name := c.args[0]
		if !strings.HasPrefix(name, "projects/") {
			if project == "" {
				return usagef("invocations get: give --project, or the invocation's full name")
			}
			name = resourcename.ProjectArg(project) + "/invocations/" + name
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		resp, err := hogwirev1.NewInvocationServiceClient(cc).GetInvocation(ctx, &hogwirev1.GetInvocationRequest{Name: name})
		if err != nil {
			return c.callErr("get invocation", err)
		}
		return c.printMessage(resp, func(w io.Writer) error { return writeInvocation(w, resp) })
	}).cmd
}

func writeInvocation(w io.Writer, resp *hogwirev1.GetInvocationResponse) error {
	r := resp.GetInvocation()
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", r.GetName())
	fmt.Fprintf(tw, "Destination:\t%s\n", r.GetDestination())
	fmt.Fprintf(tw, "Status:\t%s\n", enumword.Of(r.GetStatus()))
	if r.GetErrorKind() != "" {
		fmt.Fprintf(tw, "Kind:\t%s\n", r.GetErrorKind())
	}
	if r.GetError() != "" {
		fmt.Fprintf(tw, "Error:\t%s\n", r.GetError())
	}
	fmt.Fprintf(tw, "Event:\t%s (%s)\n", r.GetEventUuid(), orDash(r.GetEventName()))
	fmt.Fprintf(tw, "Distinct id:\t%s\n", orDash(r.GetDistinctId()))
	fmt.Fprintf(tw, "Person:\t%s\n", orDash(r.GetPersonId()))
	fmt.Fprintf(tw, "Started:\t%s\n", fmtTime(r.GetStartTime()))
	fmt.Fprintf(tw, "Duration:\t%s\n", shortDuration(r.GetDuration().AsDuration()))
	if r.GetRetries() > 0 {
		fmt.Fprintf(tw, "Retries:\t%d\n", r.GetRetries())
	}
	if r.GetRetryTime() != nil {
		fmt.Fprintf(tw, "Runs again:\t%s\n", fmtTime(r.GetRetryTime()))
	}
	fmt.Fprintf(tw, "Node:\t%s\n", orDash(r.GetNodeId()))
	if r.GetDestinationRevision() > 0 {
		fmt.Fprintf(tw, "Revision:\t%d\n", r.GetDestinationRevision())
	}
	if r.GetRerunOf() != "" {
		fmt.Fprintf(tw, "Rerun of:\t%s\n", r.GetRerunOf())
		fmt.Fprintf(tw, "Rerun:\t%s\n", r.GetRerun())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.GetFetches()) > 0 {
		fmt.Fprintln(w, "Fetches:")
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  ATTEMPT\tMETHOD\tURL\tSTATUS\tDURATION\tERROR")
		for _, f := range r.GetFetches() {
			st := "-"
			if f.GetStatus() > 0 {
				st = fmt.Sprint(f.GetStatus())
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", f.GetAttempt(), f.GetMethod(), f.GetUrl(), st, shortDuration(f.GetDuration().AsDuration()), orDash(f.GetError()))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(resp.GetLogs()) > 0 {
		fmt.Fprintln(w, "Logs:")
		for _, e := range resp.GetLogs() {
			writeLogLine(w, e)
		}
	}
	return nil
}

// shortDuration keeps three significant digits or so: 1.37s, 348.5ms, 12µs.
func shortDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// shortDestination is a destination's id, for tables.
func shortDestination(name string) string {
	if _, id, err := resourcename.ParseDestination(name); err == nil {
		return id
	}
	return name
}

func (a *app) personsTrace() *cobra.Command {
	c := a.newAdminCmd("trace DISTINCT_ID", "Show every event of a person and what each destination did",
		"Shows, for the person a distinct id belongs to (all of its distinct ids, when person profiles\n"+
			"are kept), every recorded event and what each destination did with it: succeeded, failed and\n"+
			"why, skipped, parked. Events a destination's filters left out are not listed for it.", exactArgs(1))
	c.cmd.Example = "  hogwire persons trace --project shop ada@example.com --since 168h"
	var project string
	var q invocationQuery
	c.fs.StringVar(&project, "project", "", "the person's project: projects/ID or ID (default: $HOGWIRE_PROJECT or the context's)")
	q.register(c)
	return c.runE(func(ctx context.Context) error {
		if project == "" {
			return usagef("persons trace: --project is required")
		}
		f, err := q.filter("persons trace")
		if err != nil {
			return err
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		parent := resourcename.ProjectArg(project)
		// Every distinct id of the person: its anonymous id before it
		// signed in is the same person.
		ids := []string{c.args[0]}
		pr, err := hogwirev1.NewPersonServiceClient(cc).GetPerson(ctx, &hogwirev1.GetPersonRequest{Parent: parent, DistinctId: c.args[0]})
		switch {
		case err == nil && len(pr.GetPerson().GetDistinctIds()) > 0:
			ids = pr.GetPerson().GetDistinctIds()
		case err != nil && status.Code(err) != codes.NotFound && status.Code(err) != codes.Unimplemented:
			return c.callErr("get person", err)
		}
		client := hogwirev1.NewInvocationServiceClient(cc)
		all := &hogwirev1.ListInvocationsResponse{}
		for _, id := range ids {
			pf := proto.CloneOf(f)
			pf.DistinctId = id
			resp, err := q.list(ctx, client, parent, pf)
			if err != nil {
				return c.callErr("list invocations", err)
			}
			all.Invocations = append(all.Invocations, resp.GetInvocations()...)
			if resp.GetNextPageToken() != "" {
				all.NextPageToken = resp.GetNextPageToken()
			}
		}
		return c.printMessage(all, func(w io.Writer) error { return writeTrace(w, ids, all) })
	}).cmd
}

// writeTrace prints a person's invocations grouped by event, in the order
// the events were first seen.
func writeTrace(w io.Writer, ids []string, all *hogwirev1.ListInvocationsResponse) error {
	type event struct {
		first *hogwirev1.Invocation
		runs  []*hogwirev1.Invocation
	}
	var order []string
	events := map[string]*event{}
	for _, r := range all.GetInvocations() {
		e := events[r.GetEventUuid()]
		if e == nil {
			e = &event{first: r}
			events[r.GetEventUuid()] = e
			order = append(order, r.GetEventUuid())
		}
		if r.GetStartTime().AsTime().Before(e.first.GetStartTime().AsTime()) {
			e.first = r
		}
		e.runs = append(e.runs, r)
	}
	fmt.Fprintf(w, "Distinct ids: %s\n", strings.Join(ids, ", "))
	if len(order) == 0 {
		_, err := fmt.Fprintln(w, "No recorded invocations.")
		return err
	}
	for _, uuid := range order {
		e := events[uuid]
		fmt.Fprintf(w, "\n%s  %s  %s  (%s)\n", fmtTime(e.first.GetStartTime()), orDash(e.first.GetEventName()), uuid, orDash(e.first.GetDistinctId()))
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		for _, r := range e.runs {
			detail := r.GetErrorKind()
			if r.GetError() != "" {
				detail += ": " + firstLine(r.GetError())
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", shortDestination(r.GetDestination()), enumword.Of(r.GetStatus()), orDash(detail), r.GetId())
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if all.GetNextPageToken() != "" {
		fmt.Fprintln(w, "\n(more: raise --limit)")
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:117] + "…"
	}
	return s
}
