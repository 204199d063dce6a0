package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/resourcename"
)

func (a *app) eventsCommand() *cobra.Command {
	c := &adminCmd{app: a, cmd: &cobra.Command{
		Use:   "send",
		Short: "Send events to a project, over gRPC or the PostHog-compatible HTTP API",
		Long: "Sends one event from flags, or many from a file of JSON lines, to a project: --project looks its capture token\n" +
			"up with the admin token; --capture-token gives it, as SDKs do.\n" +
			"It goes to the gRPC ingest API at --server (or HOGWIRE_SERVER, or the context's server), or with --http to the\n" +
			"PostHog-compatible capture API that SDKs use.",
		Example: `  hogwire events send --project shop --event signed_up --distinct-id ada --prop plan=pro
  hogwire events send --capture-token phc_… --http http://127.0.0.1:8080 --file events.jsonl`,
		Args: noArgs,
	}}
	c.fs = c.cmd.Flags()
	c.addConnFlags(c.fs, true)
	var props []string
	var project, httpURL, name, distinct, file string
	var batch int
	c.fs.StringVar(&httpURL, "http", "", "send over the PostHog-compatible HTTP API at this base URL instead, e.g. http://127.0.0.1:8080")
	c.fs.StringVar(&c.captureToken, "capture-token", "", "the project's capture token, phc_… (default: $HOGWIRE_CAPTURE_TOKEN)")
	c.fs.StringVar(&project, "project", "", "send to this project, looking up its capture token with the admin token (instead of --capture-token)")
	c.fs.StringVar(&name, "event", "", "event name, for a single event from flags")
	c.fs.StringVar(&distinct, "distinct-id", "", "distinct id, for a single event from flags")
	c.fs.StringArrayVar(&props, "prop", nil, "property key=value (value parsed as JSON when it is JSON); repeatable")
	c.fs.StringVar(&file, "file", "", "JSON lines of events ({\"event\":…, \"distinct_id\":…, \"properties\":{…}}); - for stdin")
	c.fs.IntVar(&batch, "batch", 100, "events per request")
	c.fs.Lookup("timeout").DefValue = "30s"
	c.timeout = 30 * time.Second
	c.runE(func(ctx context.Context) error {
		return c.sendEvents(ctx, project, httpURL, name, distinct, file, props, batch)
	})
	return groupCommand("events", "Send events: events send", "", c.cmd)
}

func (c *adminCmd) sendEvents(ctx context.Context, project, httpURL, name, distinct, file string, props []string, batch int) error {
	token, err := c.resolveCaptureToken(ctx, project)
	if err != nil {
		return err
	}
	var events []*hogwirev1.Event
	switch {
	case file != "":
		r := c.app.stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		var err error
		if events, err = readEventLines(r); err != nil {
			return err
		}
	case name != "" && distinct != "":
		ev := &hogwirev1.Event{Event: name, DistinctId: distinct, Timestamp: timestamppb.Now(), Properties: &structpb.Struct{Fields: map[string]*structpb.Value{}}}
		for _, kv := range props {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usagef("--prop %q: want key=value", kv)
			}
			var parsed any = v
			if err := json.Unmarshal([]byte(v), &parsed); err != nil {
				parsed = v
			}
			pv, err := structpb.NewValue(parsed)
			if err != nil {
				return usagef("--prop %q: %v", kv, err)
			}
			ev.Properties.Fields[k] = pv
		}
		events = []*hogwirev1.Event{ev}
	default:
		return usagef("give --event and --distinct-id, or --file")
	}
	var client hogwirev1.EventServiceClient
	if httpURL == "" {
		cctx, cc, done, err := c.connect(ctx, "")
		if err != nil {
			return err
		}
		defer done()
		ctx, client = cctx, hogwirev1.NewEventServiceClient(cc)
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	sent := 0
	for start := 0; start < len(events); start += max(batch, 1) {
		chunk := events[start:min(start+max(batch, 1), len(events))]
		var err error
		if client == nil {
			err = sendHTTP(ctx, httpURL, token, chunk)
		} else {
			err = c.sendGRPC(ctx, client, token, chunk, start)
		}
		if err != nil {
			return fmt.Errorf("after %d events sent: %w", sent, err)
		}
		sent += len(chunk)
	}
	fmt.Fprintf(c.app.stdout, "sent %d event(s)\n", sent)
	return nil
}

// resolveCaptureToken is --capture-token, else HOGWIRE_CAPTURE_TOKEN, else
// the capture token of --project (or HOGWIRE_PROJECT, or the context's
// project), read with the admin token.
func (c *adminCmd) resolveCaptureToken(ctx context.Context, project string) (string, error) {
	if c.captureToken != "" {
		return c.captureToken, nil
	}
	if strings.HasPrefix(c.token, "phc_") {
		// --token phc_… was how a capture token was given before
		// --capture-token; a capture token is never an admin token.
		return c.token, nil
	}
	if t := c.app.getenv("HOGWIRE_CAPTURE_TOKEN"); t != "" && !c.given("project") {
		return t, nil
	}
	if project == "" {
		return "", usagef("give --project (its capture token is looked up) or --capture-token (HOGWIRE_CAPTURE_TOKEN)")
	}
	ctx, cc, done, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer done()
	resp, err := hogwirev1.NewProjectServiceClient(cc).GetProject(ctx, &hogwirev1.GetProjectRequest{Name: resourcename.ProjectArg(project)})
	if err != nil {
		return "", c.callErr("get project", err)
	}
	return resp.GetProject().GetCaptureToken(), nil
}

// readEventLines parses one JSON event per line, in the PostHog shape.
func readEventLines(r io.Reader) ([]*hogwirev1.Event, error) {
	var out []*hogwirev1.Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		ev := &hogwirev1.Event{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, ev); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if ev.Event == "" || ev.DistinctId == "" {
			return nil, fmt.Errorf("line %d: event and distinct_id are required", line)
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

func (c *adminCmd) sendGRPC(ctx context.Context, client hogwirev1.EventServiceClient, token string, events []*hogwirev1.Event, offset int) error {
	resp, err := client.Publish(ctx, &hogwirev1.PublishRequest{Token: token, Events: events})
	if err != nil {
		return c.callErr("publish", err)
	}
	for _, r := range resp.Rejected {
		fmt.Fprintf(c.app.stderr, "event %d rejected: %s: %s\n", offset+int(r.Index), r.Field, r.Reason)
	}
	if len(resp.Rejected) > 0 {
		return fmt.Errorf("%d event(s) rejected", len(resp.Rejected))
	}
	return nil
}

func sendHTTP(ctx context.Context, base, token string, events []*hogwirev1.Event) error {
	batch := make([]json.RawMessage, 0, len(events))
	for _, ev := range events {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
		if err != nil {
			return err
		}
		batch = append(batch, b)
	}
	body, err := json.Marshal(map[string]any{"api_key": token, "batch": batch})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/batch/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}
