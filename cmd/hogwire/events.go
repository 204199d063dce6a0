package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/rpcclient"
)

// kvFlag collects repeated key=value flags.
type kvFlag []string

func (k *kvFlag) String() string     { return strings.Join(*k, ",") }
func (k *kvFlag) Set(v string) error { *k = append(*k, v); return nil }

// runEvents is `hogwire events send`.
func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "send" {
		return usageError{"usage: hogwire events send [flags]"}
	}
	fs := flag.NewFlagSet("events send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var props kvFlag
	server := fs.String("server", "127.0.0.1:7070", "gRPC ingest address")
	httpURL := fs.String("http", "", "send over the PostHog-compatible HTTP API at this base URL instead, e.g. http://127.0.0.1:8080")
	token := fs.String("token", "", "the project's capture token (or set HOGWIRE_CAPTURE_TOKEN)")
	name := fs.String("event", "", "event name, for a single event from flags")
	distinct := fs.String("distinct-id", "", "distinct id, for a single event from flags")
	fs.Var(&props, "prop", "property key=value (value parsed as JSON when it is JSON); repeatable")
	file := fs.String("file", "", "JSON lines of events ({\"event\":…, \"distinct_id\":…, \"properties\":{…}}); - for stdin")
	batch := fs.Int("batch", 100, "events per request")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of the whole send")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *token == "" {
		*token = os.Getenv("HOGWIRE_CAPTURE_TOKEN")
	}
	if *token == "" {
		return usageError{"--token or HOGWIRE_CAPTURE_TOKEN is required (the project's phc_… capture token)"}
	}
	var events []*hogwirev1.Event
	switch {
	case *file != "":
		var r io.Reader = os.Stdin
		if *file != "-" {
			f, err := os.Open(*file)
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
	case *name != "" && *distinct != "":
		ev := &hogwirev1.Event{Event: *name, DistinctId: *distinct, Timestamp: timestamppb.Now(), Properties: &structpb.Struct{Fields: map[string]*structpb.Value{}}}
		for _, kv := range props {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usageError{fmt.Sprintf("--prop %q: want key=value", kv)}
			}
			var parsed any = v
			if err := json.Unmarshal([]byte(v), &parsed); err != nil {
				parsed = v
			}
			pv, err := structpb.NewValue(parsed)
			if err != nil {
				return usageError{fmt.Sprintf("--prop %q: %v", kv, err)}
			}
			ev.Properties.Fields[k] = pv
		}
		events = []*hogwirev1.Event{ev}
	default:
		return usageError{"give --event and --distinct-id, or --file"}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	sent := 0
	for start := 0; start < len(events); start += max(*batch, 1) {
		chunk := events[start:min(start+max(*batch, 1), len(events))]
		var err error
		if *httpURL != "" {
			err = sendHTTP(ctx, *httpURL, *token, chunk)
		} else {
			err = sendGRPC(ctx, *server, *token, chunk, stderr, start)
		}
		if err != nil {
			return fmt.Errorf("after %d events sent: %w", sent, err)
		}
		sent += len(chunk)
	}
	fmt.Fprintf(stdout, "sent %d event(s)\n", sent)
	return nil
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

func sendGRPC(ctx context.Context, server, token string, events []*hogwirev1.Event, stderr io.Writer, offset int) error {
	cc, err := rpcclient.Dial(server, rpcclient.Options{})
	if err != nil {
		return err
	}
	defer cc.Close()
	resp, err := hogwirev1.NewEventServiceClient(cc).Publish(ctx, &hogwirev1.PublishRequest{Token: token, Events: events})
	if err != nil {
		return err
	}
	for _, r := range resp.Rejected {
		fmt.Fprintf(stderr, "event %d rejected: %s: %s\n", offset+int(r.Index), r.Field, r.Reason)
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
