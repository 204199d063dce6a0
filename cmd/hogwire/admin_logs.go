package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/enumword"
	"github.com/hogwire/hogwire/resourcename"
)

// logLevel is the --level flag.
type logLevel hogwirev1.LogLevel

func (l *logLevel) String() string {
	if *l == 0 {
		return ""
	}
	return enumword.Of(hogwirev1.LogLevel(*l))
}

func (l *logLevel) Type() string { return "level" }

func (l *logLevel) Set(s string) error {
	v, ok := enumword.Parse(hogwirev1.LogLevel(0).Descriptor(), s)
	if !ok {
		return fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	*l = logLevel(v)
	return nil
}

func (a *app) logsCommand() *cobra.Command {
	c := a.newAdminCmd("logs DESTINATION", "Print or follow a destination's log entries",
		"Prints a destination's log entries, oldest first: the code's print output, errors, fetch failures\n"+
			"and health changes. DESTINATION is an id or a resource name; projects/ID shows a whole project.", exactArgs(1))
	c.cmd.Example = "  hogwire logs hook --follow --level warn"
	var (
		follow            bool
		level             logLevel
		search, invoc, ev string
		person            string
		since             time.Duration
		limit             int
	)
	c.fs.BoolVarP(&follow, "follow", "f", false, "keep printing new entries as they arrive (until interrupted; --timeout only if given)")
	c.fs.Var(&level, "level", "only entries at this `level` or above: debug, info, warn, error")
	c.fs.StringVar(&search, "search", "", "only entries whose message contains this `text` (any case)")
	c.fs.DurationVar(&since, "since", 0, "only entries of this last `duration`, e.g. 1h")
	c.fs.StringVar(&invoc, "invocation", "", "only entries of this invocation `id`")
	c.fs.StringVar(&ev, "event", "", "only entries about the event with this `uuid`")
	c.fs.StringVar(&person, "person", "", "only entries about events of the person with this `id`")
	c.fs.IntVar(&limit, "limit", 100, "print at most this many of the newest entries before following")
	c.completeArgs(completeDestinations)
	return c.runE(func(ctx context.Context) error {
		filter := &hogwirev1.LogFilter{MinLevel: hogwirev1.LogLevel(level), Search: search, InvocationId: invoc, EventUuid: ev, PersonId: person}
		return c.logs(ctx, follow, filter, since, limit)
	}).cmd
}

func (c *adminCmd) logs(ctx context.Context, follow bool, filter *hogwirev1.LogFilter, since time.Duration, limit int) error {
	if limit < 0 || since < 0 {
		return usagef("logs: --limit and --since must not be negative")
	}
	if follow && !c.given("timeout") {
		c.timeout = math.MaxInt64
	}
	ctx, cc, done, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	client := hogwirev1.NewLogServiceClient(cc)
	parent := resourcename.DestinationArg(c.args[0])
	if since > 0 {
		filter.StartTime = timestamppb.New(time.Now().Add(-since))
	}

	// The newest entries, read newest first and printed oldest first.
	listedAt := time.Now()
	var entries []*hogwirev1.LogEntry
	token := ""
	for len(entries) < limit {
		resp, err := client.ListLogEntries(ctx, &hogwirev1.ListLogEntriesRequest{
			Parent: parent, Filter: filter, PageSize: int32(min(limit-len(entries), 1000)), PageToken: token})
		if err != nil {
			return c.callErr("list log entries", err)
		}
		entries = append(entries, resp.GetEntries()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	slices.Reverse(entries)
	if !follow {
		if c.output == outputTable {
			for _, e := range entries {
				writeLogLine(c.app.stdout, e)
			}
			return nil
		}
		slices.Reverse(entries) // the API's order, newest first
		return c.printMessage(&hogwirev1.ListLogEntriesResponse{Entries: entries}, nil)
	}

	emit := func(e *hogwirev1.LogEntry) error {
		if c.output == outputTable {
			writeLogLine(c.app.stdout, e)
			return nil
		}
		// One JSON object a line, so the output can be followed by a program.
		b, err := protojson.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.app.stdout, "%s\n", compactJSON(b))
		return err
	}
	// Ids are stream sequences, so the tail can skip what was printed.
	var seen uint64
	for _, e := range entries {
		if err := emit(e); err != nil {
			return err
		}
		if n, err := strconv.ParseUint(e.GetId(), 10, 64); err == nil {
			seen = max(seen, n)
		}
	}
	// Follow from a little before the listing, so that entries a node
	// flushed late are not lost between the two calls; the ids weed out
	// what was listed already.
	if from := listedAt.Add(-time.Minute); filter.StartTime == nil || filter.StartTime.AsTime().Before(from) {
		filter.StartTime = timestamppb.New(from)
	}
	stream, err := client.TailLogEntries(ctx, &hogwirev1.TailLogEntriesRequest{Parent: parent, Filter: filter})
	if err != nil {
		return c.callErr("follow log entries", err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled || errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return c.callErr("follow log entries", err)
		}
		for _, e := range resp.GetEntries() {
			if n, err := strconv.ParseUint(e.GetId(), 10, 64); err == nil {
				if n <= seen {
					continue
				}
				seen = n
			}
			if err := emit(e); err != nil {
				return err
			}
		}
	}
}

// writeLogLine prints an entry as "time level invocation message".
func writeLogLine(w io.Writer, e *hogwirev1.LogEntry) {
	ts := "-"
	if e.GetTime() != nil {
		ts = e.GetTime().AsTime().UTC().Format("2006-01-02T15:04:05.000Z")
	}
	lvl := strings.ToUpper(orDash(enumword.Of(e.GetLevel())))
	fmt.Fprintf(w, "%s  %-5s  %-12s  %s\n", ts, lvl, orDash(e.GetInvocationId()), strings.ReplaceAll(e.GetMessage(), "\n", "\n    "))
}
