package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/enumword"
	"github.com/hogwire/hogwire/resourcename"
)

func (a *app) invocationsRerun() *cobra.Command {
	c := a.newAdminCmd("rerun [ID...]", "Run invocations again: by id, or failures by filter",
		"Runs invocations again on their stored events, with each destination's current code,\n"+
			"inputs and filters, through the normal path (its limits, retries and health: a disabled\n"+
			"or quarantined destination skips or parks them). Give invocation ids (from invocations\n"+
			"list), or filters: --destination, --since/--until (at most 30 days), --status (default\n"+
			"failed) and --error-kind. At most 10,000 invocations run, the oldest first; --dry-run\n"+
			"only counts them. The rerun goes on in the background at --rate a second, each run\n"+
			"recorded with a link to the invocation it ran again; follow it with invocations reruns,\n"+
			"stop it with invocations cancel-rerun, or wait for it with --wait. With --original-revision\n"+
			"each event runs with the revision of the destination (code, inputs, filters, mappings;\n"+
			"secret inputs at their current values) that the invocation ran with; an invocation\n"+
			"whose revision is no longer kept in destinations history is not rerunnable, and is\n"+
			"counted with the reason.", rangeArgs(0, 10000))
	c.cmd.Example = "  hogwire invocations rerun --project shop --destination hook --since 6h --dry-run\n" +
		"  hogwire invocations rerun --project shop --destination hook --since 6h --error-kind inputs\n" +
		"  hogwire invocations rerun --project shop 1234-0 1234-1 --wait"
	var project, dest, kind string
	var since, until time.Duration
	var statuses invocationStatuses
	var dryRun, wait, original bool
	var rate int
	c.fs.StringVar(&project, "project", "", "the invocations' project: projects/ID or ID (default: $HOGWIRE_PROJECT or the context's)")
	c.fs.StringVar(&dest, "destination", "", "only invocations of this destination (an id or a resource name)")
	c.fs.DurationVar(&since, "since", 24*time.Hour, "only invocations that started in this last `duration` (at most 720h)")
	c.fs.DurationVar(&until, "until", 0, "only invocations that started before this `duration` ago")
	c.fs.Var(&statuses, "status", "only invocations that ended so: failed (the default), succeeded, skipped, masked (repeatable, or comma-separated)")
	c.fs.StringVar(&kind, "error-kind", "", "only invocations of this error `kind` (http_5xx, fetch_timeout, hog_error, inputs, …)")
	c.fs.BoolVar(&dryRun, "dry-run", false, "only count the invocations that would run again")
	c.fs.IntVar(&rate, "rate", 0, "start at most this many a second (default 50, at most 1000)")
	c.fs.BoolVar(&wait, "wait", false, "wait for the rerun to finish, showing its progress")
	c.fs.BoolVar(&original, "original-revision", false, "run each invocation with the destination's revision it ran with, not the current one")
	return c.runE(func(ctx context.Context) error {
		req := &hogwirev1.RerunInvocationsRequest{ValidateOnly: dryRun, MaxPerSecond: int32(rate), OriginalRevision: original}
		if project == "" {
			switch {
			case dest != "" && strings.HasPrefix(dest, "projects/"):
				p, _, err := resourcename.ParseDestination(dest)
				if err != nil {
					return usagef("invocations rerun: --destination: %v", err)
				}
				project = p
			case len(c.args) > 0 && strings.HasPrefix(c.args[0], "projects/"):
				project = strings.SplitN(c.args[0], "/", 3)[1]
			default:
				return usagef("invocations rerun: --project is required")
			}
		}
		req.Parent = resourcename.ProjectArg(project)
		if dest != "" {
			if strings.HasPrefix(dest, "projects/") {
				req.Parent = dest
			} else {
				req.Parent += "/destinations/" + dest
			}
		}
		if len(c.args) > 0 {
			for _, f := range []string{"since", "until", "status", "error-kind"} {
				if c.given(f) {
					return usagef("invocations rerun: give invocation ids or --%s, not both", f)
				}
			}
			req.InvocationIds = c.args
		} else {
			if since < 0 || until < 0 || (since > 0 && until >= since) {
				return usagef("invocations rerun: --since must be positive and more than --until")
			}
			now := time.Now()
			req.Filter = &hogwirev1.InvocationFilter{Statuses: statuses, ErrorKind: kind, StartTime: timestamppb.New(now.Add(-since))}
			if until > 0 {
				req.Filter.EndTime = timestamppb.New(now.Add(-until))
			}
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		client := hogwirev1.NewInvocationServiceClient(cc)
		resp, err := client.RerunInvocations(ctx, req)
		if err != nil {
			return c.callErr("rerun invocations", err)
		}
		r := resp.GetRerun()
		if dryRun {
			return c.printMessage(resp, func(w io.Writer) error {
				fmt.Fprintf(w, "%d invocations would run again.\n", r.GetTotal())
				writeNotRerunnable(w, r)
				if r.GetTruncated() {
					fmt.Fprintf(w, "More matched: a rerun runs at most %d, the oldest first; narrow the range to run the rest after.\n", r.GetMaxInvocations())
				}
				return nil
			})
		}
		if r.GetName() == "" {
			return c.printMessage(resp, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, "No invocation matches: nothing runs again.")
				writeNotRerunnable(w, r)
				return err
			})
		}
		if wait {
			if r, err = followRerun(ctx, c, client, r); err != nil {
				return err
			}
			resp.Rerun = r
		}
		return c.printMessage(resp, func(w io.Writer) error { return writeRerun(w, r) })
	}).cmd
}

// followRerun polls a rerun until it ends, writing its progress to stderr.
func followRerun(ctx context.Context, c *adminCmd, client hogwirev1.InvocationServiceClient, r *hogwirev1.Rerun) (*hogwirev1.Rerun, error) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	last := ""
	for r.GetState() == hogwirev1.RerunState_RERUN_STATE_RUNNING {
		if p := rerunProgress(r); p != last {
			fmt.Fprintf(c.app.stderr, "%s: %s\n", r.GetName(), p)
			last = p
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		resp, err := client.GetRerun(ctx, &hogwirev1.GetRerunRequest{Name: r.GetName()})
		if err != nil {
			return nil, c.callErr("get rerun", err)
		}
		r = resp.GetRerun()
	}
	return r, nil
}

func rerunProgress(r *hogwirev1.Rerun) string {
	s := fmt.Sprintf("%d of %d started, %d succeeded, %d failed, %d skipped", r.GetStarted(), r.GetTotal(),
		r.GetSucceeded(), r.GetFailed(), r.GetSkipped())
	if r.GetMissing() > 0 {
		s += fmt.Sprintf(", %d with their event expired", r.GetMissing())
	}
	return s
}

func writeRerun(w io.Writer, r *hogwirev1.Rerun) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", r.GetName())
	fmt.Fprintf(tw, "State:\t%s\n", enumword.Of(r.GetState()))
	fmt.Fprintf(tw, "Parent:\t%s\n", r.GetParent())
	fmt.Fprintf(tw, "Invocations:\t%d\n", r.GetTotal())
	if r.GetTruncated() {
		fmt.Fprintf(tw, "Truncated:\tmore matched; at most %d run, the oldest first\n", r.GetMaxInvocations())
	}
	if r.GetOriginalRevision() {
		fmt.Fprintf(tw, "Revision:\teach invocation's original\n")
	}
	if n := r.GetNotRerunnable(); n > 0 {
		fmt.Fprintf(tw, "Not rerunnable:\t%d\n", n)
	}
	fmt.Fprintf(tw, "Progress:\t%s\n", rerunProgress(r))
	fmt.Fprintf(tw, "Rate:\t%d a second\n", r.GetMaxPerSecond())
	fmt.Fprintf(tw, "Created:\t%s\n", fmtTime(r.GetCreateTime()))
	if r.GetEndTime() != nil {
		fmt.Fprintf(tw, "Ended:\t%s\n", fmtTime(r.GetEndTime()))
	}
	return tw.Flush()
}

// writeNotRerunnable says which selected invocations cannot run again, and
// why.
func writeNotRerunnable(w io.Writer, r *hogwirev1.Rerun) {
	if r.GetNotRerunnable() == 0 {
		return
	}
	fmt.Fprintf(w, "%d invocations are not rerunnable:\n", r.GetNotRerunnable())
	for _, why := range r.GetNotRerunnableReasons() {
		fmt.Fprintf(w, "  %s\n", why)
	}
}

// rerunName reads a rerun argument: a name, or an id with --project.
func rerunName(project, arg string) (string, error) {
	if strings.HasPrefix(arg, "projects/") {
		return arg, nil
	}
	if project == "" {
		return "", usagef("give --project, or the rerun's full name projects/ID/reruns/ID")
	}
	return resourcename.ProjectArg(project) + "/reruns/" + arg, nil
}

func (a *app) invocationsReruns() *cobra.Command {
	c := a.newAdminCmd("reruns [RERUN]", "List reruns, or show one's progress",
		"Lists a project's reruns, newest first, with their progress; with RERUN (an id with\n"+
			"--project, or a name projects/ID/reruns/ID) shows that one. Each rerun's own\n"+
			"invocations are listed by invocations list PROJECT --rerun RERUN.", rangeArgs(0, 1))
	c.cmd.Example = "  hogwire invocations reruns --project shop"
	var project string
	var wait bool
	c.fs.StringVar(&project, "project", "", "the reruns' project: projects/ID or ID (default: $HOGWIRE_PROJECT or the context's)")
	c.fs.BoolVar(&wait, "wait", false, "with RERUN: wait for it to finish, showing its progress")
	return c.runE(func(ctx context.Context) error {
		var name string
		if len(c.args) == 1 {
			var err error
			if name, err = rerunName(project, c.args[0]); err != nil {
				return err
			}
		} else if project == "" {
			return usagef("invocations reruns: --project is required")
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		client := hogwirev1.NewInvocationServiceClient(cc)
		if name != "" {
			resp, err := client.GetRerun(ctx, &hogwirev1.GetRerunRequest{Name: name})
			if err != nil {
				return c.callErr("get rerun", err)
			}
			if wait {
				if resp.Rerun, err = followRerun(ctx, c, client, resp.GetRerun()); err != nil {
					return err
				}
			}
			return c.printMessage(resp, func(w io.Writer) error { return writeRerun(w, resp.GetRerun()) })
		}
		resp, err := client.ListReruns(ctx, &hogwirev1.ListRerunsRequest{Parent: resourcename.ProjectArg(project)})
		if err != nil {
			return c.callErr("list reruns", err)
		}
		return c.printMessage(resp, func(w io.Writer) error {
			tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCREATED\tSTATE\tPARENT\tPROGRESS")
			for _, r := range resp.GetReruns() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.GetName()[strings.LastIndex(r.GetName(), "/")+1:], fmtTime(r.GetCreateTime()),
					enumword.Of(r.GetState()), r.GetParent(), rerunProgress(r))
			}
			return tw.Flush()
		})
	}).cmd
}

func (a *app) invocationsCancelRerun() *cobra.Command {
	c := a.newAdminCmd("cancel-rerun [RERUN]", "Stop a rerun, or every running one",
		"Stops a rerun (an id with --project, or a name projects/ID/reruns/ID), or with --all every\n"+
			"rerun of the project still running: none of their invocations starts any more (those\n"+
			"already handed to a node still run), and their invocations may be rerun again.", rangeArgs(0, 1))
	c.cmd.Example = "  hogwire invocations cancel-rerun --project shop r1a2b3c-0d1e2f3a\n" +
		"  hogwire invocations cancel-rerun --project shop --all"
	var project string
	var all bool
	c.fs.StringVar(&project, "project", "", "the rerun's project: projects/ID or ID (default: $HOGWIRE_PROJECT or the context's)")
	c.fs.BoolVar(&all, "all", false, "stop every rerun of the project still running")
	return c.runE(func(ctx context.Context) error {
		var names []string
		switch {
		case len(c.args) == 1 && all:
			return usagef("invocations cancel-rerun: give RERUN or --all, not both")
		case len(c.args) == 1:
			name, err := rerunName(project, c.args[0])
			if err != nil {
				return err
			}
			names = append(names, name)
		case !all:
			return usagef("invocations cancel-rerun: give RERUN, or --all")
		case project == "":
			return usagef("invocations cancel-rerun: --all needs --project")
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		client := hogwirev1.NewInvocationServiceClient(cc)
		if all {
			l, err := client.ListReruns(ctx, &hogwirev1.ListRerunsRequest{Parent: resourcename.ProjectArg(project)})
			if err != nil {
				return c.callErr("list reruns", err)
			}
			for _, r := range l.GetReruns() {
				if r.GetState() == hogwirev1.RerunState_RERUN_STATE_RUNNING {
					names = append(names, r.GetName())
				}
			}
		}
		out := &hogwirev1.ListRerunsResponse{}
		for _, name := range names {
			resp, err := client.CancelRerun(ctx, &hogwirev1.CancelRerunRequest{Name: name})
			if err != nil {
				return c.callErr("cancel rerun", err)
			}
			out.Reruns = append(out.Reruns, resp.GetRerun())
		}
		if len(c.args) == 1 {
			return c.printMessage(out.Reruns[0], func(w io.Writer) error { return writeRerun(w, out.Reruns[0]) })
		}
		return c.printMessage(out, func(w io.Writer) error {
			if len(out.Reruns) == 0 {
				_, err := fmt.Fprintln(w, "No rerun is running.")
				return err
			}
			for _, r := range out.Reruns {
				fmt.Fprintf(w, "Cancelled %s: %s\n", r.GetName(), rerunProgress(r))
			}
			return nil
		})
	}).cmd
}
