package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/enumword"
	"github.com/hogwire/hogwire/resourcename"
)

func (a *app) destinationsTest() *cobra.Command {
	c := a.newAdminCmd("test DESTINATION", "Run a destination once on an event and show its logs and requests",
		"Runs a destination once on an event and shows what it did: status, result, logs and every request with its response, secrets redacted.\n"+
			"By default fetch is mocked (each request is answered 200 {} and shown, nothing is sent); --real sends the requests.\n"+
			"Without --event it runs on a sample event built to pass the destination's filters (the event name of its first\n"+
			"event filter, properties that satisfy its property filters). When the filters exclude the event, the output says\n"+
			"which filter did. Nothing is counted in the destination's metrics or health.", exactArgs(1))
	var eventFile string
	var real, skipFilters bool
	var mapping string
	c.fs.StringVar(&eventFile, "event", "", "run on the Event in this YAML or JSON `file` (protojson; - for stdin) instead of a sample event")
	c.fs.BoolVar(&real, "real", false, "really send the requests (through the egress guard) instead of mocking them")
	c.fs.BoolVar(&skipFilters, "skip-filters", false, "run even when the destination's filters do not match the event")
	c.fs.StringVar(&mapping, "mapping", "", "for a destination with mappings, run only the mapping of this `name` (default: every mapping whose filters match)")
	c.completeArgs(completeDestinations)
	return c.runE(func(ctx context.Context) error {
		req := &hogwirev1.TestRequest{
			Mapping:     mapping,
			Target:      &hogwirev1.TestRequest_Destination{Destination: resourcename.DestinationArg(c.args[0])},
			FetchMode:   hogwirev1.FetchMode_FETCH_MODE_MOCK,
			SkipFilters: skipFilters,
		}
		if real {
			req.FetchMode = hogwirev1.FetchMode_FETCH_MODE_REAL
		}
		if eventFile != "" {
			b, err := c.readInput(eventFile)
			if err != nil {
				return fmt.Errorf("--event: %w", err)
			}
			if req.Event, err = readEventFile(b); err != nil {
				return usagef("--event %s: %v", eventFile, err)
			}
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		resp, err := hogwirev1.NewTestServiceClient(cc).Test(ctx, req)
		if err != nil {
			return c.callErr("test destination", err)
		}
		return c.printMessage(resp, func(w io.Writer) error { return writeTestResult(w, resp, real) })
	}).cmd
}

// readEventFile reads an Event in protojson form, bare or wrapped as
// {"event": …} (what "destinations test -o json" prints).
func readEventFile(b []byte) (*hogwirev1.Event, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(j, &top); err != nil {
		return nil, fmt.Errorf("want an Event object: %w", err)
	}
	if inner, ok := top["event"]; ok && len(inner) > 0 && inner[0] == '{' {
		j = inner
	}
	ev := &hogwirev1.Event{}
	if err := protojson.Unmarshal(j, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// writeTestResult renders a test for a person: the outcome first, then the
// logs, then each request and its response in HTTP's own layout.
func writeTestResult(w io.Writer, resp *hogwirev1.TestResponse, real bool) error {
	if len(resp.GetMappingRuns()) == 0 {
		return writeTestRun(w, resp, real)
	}
	for i, run := range resp.GetMappingRuns() {
		sep := "\n"
		if i == 0 {
			sep = ""
		}
		if _, err := fmt.Fprintf(w, "%s== Mapping %d of %d: %s\n", sep, i+1, len(resp.GetMappingRuns()), run.GetMapping()); err != nil {
			return err
		}
		if err := writeTestRun(w, run, real); err != nil {
			return err
		}
	}
	return nil
}

// writeTestRun renders one run of a test.
func writeTestRun(w io.Writer, resp *hogwirev1.TestResponse, real bool) error {
	var b strings.Builder
	ev := resp.GetEvent()
	fmt.Fprintf(&b, "Status:   %s\n", orDash(enumword.Of(resp.GetStatus())))
	if x := resp.GetFilterExplanation(); x != "" {
		fmt.Fprintf(&b, "Filtered: %s\n", x)
	}
	if resp.GetError() != "" {
		fmt.Fprintf(&b, "Error:    %s\n", resp.GetError())
	}
	if r := resp.GetResult(); r != nil {
		fmt.Fprintf(&b, "Result:   %s\n", valueText(r))
	}
	fmt.Fprintf(&b, "Event:    %s %s (distinct id %s)\n", ev.GetEvent(), ev.GetUuid(), ev.GetDistinctId())
	fmt.Fprintf(&b, "Duration: %s\n", resp.GetDuration().AsDuration())
	if len(resp.GetLogs()) > 0 {
		b.WriteString("\nLogs:\n")
		for _, l := range resp.GetLogs() {
			fmt.Fprintf(&b, "  %s %-5s %s\n", l.GetTime().AsTime().UTC().Format("15:04:05.000"),
				orDash(enumword.Of(l.GetLevel())), l.GetMessage())
		}
	}
	mode := "mocked: nothing was sent"
	if real {
		mode = "sent"
	}
	if len(resp.GetRequests()) == 0 {
		b.WriteString("\nNo requests.\n")
	}
	for i, x := range resp.GetRequests() {
		fmt.Fprintf(&b, "\nRequest %d of %d (%s):\n", i+1, len(resp.GetRequests()), mode)
		fmt.Fprintf(&b, "  %s %s\n", x.GetMethod(), x.GetUrl())
		writeHeaders(&b, x.GetHeaders())
		if x.GetBody() != "" {
			fmt.Fprintf(&b, "\n%s\n", indentBody(x.GetBody()))
		}
		switch {
		case x.GetError() != "":
			fmt.Fprintf(&b, "Error after %s (attempt %d): %s\n", x.GetDuration().AsDuration(), x.GetAttempt(), x.GetError())
		default:
			fmt.Fprintf(&b, "Response after %s (attempt %d):\n  HTTP %d\n", x.GetDuration().AsDuration(), x.GetAttempt(), x.GetStatus())
			writeHeaders(&b, x.GetResponseHeaders())
			if x.GetResponseBody() != "" {
				fmt.Fprintf(&b, "\n%s\n", indentBody(x.GetResponseBody()))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeHeaders(b *strings.Builder, h map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(h)) {
		fmt.Fprintf(b, "  %s: %s\n", k, h[k])
	}
}

// indentBody pretty-prints a JSON body and indents any body under its
// request.
func indentBody(body string) string {
	var v any
	if err := json.Unmarshal([]byte(body), &v); err == nil {
		if pretty, err := json.MarshalIndent(v, "", "  "); err == nil {
			body = string(pretty)
		}
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(body, "\n"), "\n", "\n  ")
}
