package capture

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
)

// Fuzz targets for every decoder of a request body, each against what
// must hold whatever the input: limits respected, memory reservations
// returned, and the standard library's reading where there is one.

type fuzzTokens struct{}

func (fuzzTokens) Project(token string) (string, bool) { return "p", token == "phc_t" }

// storing records what a Publish stores.
type storing struct{ events []*hogwirev1.Event }

func (s *storing) Publish(_ context.Context, _ string, events []*hogwirev1.Event) error {
	s.events = append(s.events, events...)
	return nil
}

func fuzzConfig(pub Publisher) Config {
	return Config{
		Tokens: fuzzTokens{}, Publisher: pub, Logger: slog.New(slog.DiscardHandler),
		MaxBodyBytes: 64 << 10, MaxDecompressedBytes: 256 << 10, MaxDecompressionRatio: 20, MemoryBytes: 16 << 20,
		Limits: eventlimits.Limits{MaxEventBytes: 4 << 10, MaxBatchEvents: 50, MaxProperties: 64, MaxStringBytes: 1 << 10},
		Now:    func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) },
	}
}

func gzipped(tb testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzReadPayload decodes bodies as requests carry them (gzip, forms,
// base64, query data): the payload never exceeds the decompressed limit,
// and every reservation is returned.
func FuzzReadPayload(f *testing.F) {
	js := []byte(`[{"event":"e","distinct_id":"d","properties":{"token":"phc_t"}}]`)
	f.Add(js, "", "application/json", "")
	f.Add(gzipped(f, js), "compression=gzip-js", "text/plain", "")
	f.Add(gzipped(f, js), "", "", "gzip")
	f.Add([]byte("data="+url.QueryEscape(base64.StdEncoding.EncodeToString(js))+"&compression=base64"), "", "application/x-www-form-urlencoded", "")
	f.Add([]byte("data="+url.QueryEscape(base64.StdEncoding.EncodeToString(gzipped(f, js)))), "", "application/x-www-form-urlencoded", "")
	f.Add([]byte(nil), "data="+base64.URLEncoding.EncodeToString(js), "", "")
	f.Add(bytes.Repeat(gzipped(f, make([]byte, 64<<10)), 8), "", "", "gzip")
	h := newHandler(fuzzConfig(&storing{}))
	f.Fuzz(func(t *testing.T, body []byte, query, contentType, encoding string) {
		q, _ := url.ParseQuery(query)
		r := httptest.NewRequest(http.MethodPost, "/e/?"+q.Encode(), bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("Content-Encoding", encoding)
		mem := h.mem.lease()
		env, aerr := h.readPayload(httptest.NewRecorder(), r, mem)
		if aerr == nil && int64(len(env.payload)) > h.cfg.MaxDecompressedBytes {
			t.Fatalf("payload of %d bytes", len(env.payload))
		}
		if aerr != nil && (aerr.status < 400 || aerr.Detail == "") {
			t.Fatalf("error %+v", aerr)
		}
		mem.release()
		if used := h.mem.used.Load(); used != 0 {
			t.Fatalf("%d bytes still reserved", used)
		}
	})
}

// FuzzGunzip inflates within the size and ratio limits, and otherwise
// reads exactly what compress/gzip reads.
func FuzzGunzip(f *testing.F) {
	f.Add(gzipped(f, []byte(`{"a":1}`)))
	f.Add(append(gzipped(f, []byte(`[1,`)), gzipped(f, []byte(`2]`))...))
	f.Add(gzipped(f, make([]byte, 1<<20)))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	h := newHandler(fuzzConfig(&storing{}))
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := h.mem.lease()
		defer mem.release()
		got, aerr := h.gunzip(data, mem)
		limit, _ := h.inflateLimit(len(data))
		zr, err := gzip.NewReader(bytes.NewReader(data))
		var want []byte
		if err == nil {
			want, err = io.ReadAll(io.LimitReader(zr, limit+1))
		}
		switch {
		case aerr == nil && (err != nil || !bytes.Equal(got, want)):
			t.Fatalf("inflated %d bytes; compress/gzip: %d bytes, %v", len(got), len(want), err)
		case aerr == nil && int64(len(got)) > limit:
			t.Fatalf("inflated %d bytes past the limit of %d", len(got), limit)
		case aerr != nil && aerr.status == http.StatusRequestEntityTooLarge && int64(len(want)) <= limit:
			t.Fatalf("413 for %d bytes within the limit of %d", len(want), limit)
		case aerr != nil && aerr.status == http.StatusBadRequest && err == nil && int64(len(want)) <= limit:
			t.Fatalf("400 for gzip data compress/gzip reads: %v", aerr)
		}
	})
}

// FuzzDecodeBase64 decodes what looksBase64 lets through as the standard
// decoder reads its normalized form.
func FuzzDecodeBase64(f *testing.F) {
	for _, s := range []string{"eyJhIjoxfQ==", "eyJh Ijox+/_-", "eyJhIjox\nfQ", "-_-_", "====", "a"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !looksBase64(in) {
			return
		}
		in = bytes.ReplaceAll(in, []byte{' '}, []byte{'+'})
		got, err := decodeBase64(in)
		norm := strings.NewReplacer("\n", "", "\r", "", "-", "+", "_", "/").Replace(string(in))
		want, werr := base64.RawStdEncoding.DecodeString(strings.TrimRight(norm, "="))
		if (err == nil) != (werr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("decodeBase64(%q) = %q, %v; standard: %q, %v", in, got, err, want, werr)
		}
	})
}

// FuzzEventTime turns any timestamp, sent_at and offset into a valid
// stored timestamp.
func FuzzEventTime(f *testing.F) {
	f.Add("2026-11-20T08:30:00.5-05:00", "2026-11-20T08:30:01Z", 0.0, false)
	f.Add("1795163400000", "", 1500.0, true)
	f.Add("0001-01-01", "9999-12-31", -1e300, true)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, ts, sentAt string, offset float64, hasOffset bool) {
		parsed, ok := parseTime(structpb.NewStringValue(ts))
		sent, _ := parseTime(structpb.NewStringValue(sentAt))
		var off *float64
		if hasOffset {
			off = &offset
		}
		got := eventTime(parsed, ok, off, sent, now)
		if y := got.Year(); y < 1 || y > 9999 || got.Sub(now) > futureCutoff {
			t.Fatalf("eventTime(%q, %q, %v) = %v", ts, sentAt, offset, got)
		}
	})
}

// FuzzPublish feeds any PublishRequest encoding to the gRPC service: it
// stores all of a request or none, only events within the limits, and
// answers with the documented codes.
func FuzzPublish(f *testing.F) {
	props, _ := structpb.NewStruct(map[string]any{"a": []any{1, map[string]any{"b": "c"}}})
	for _, req := range []*hogwirev1.PublishRequest{
		{Token: "phc_t", Events: []*hogwirev1.Event{{Event: "e", DistinctId: "d", Properties: props}}},
		{Token: "phc_t", Events: []*hogwirev1.Event{{Event: "e"}, {Event: "e", DistinctId: "d", Uuid: "x"}}},
		{Token: "phc_t", Events: []*hogwirev1.Event{{Event: "e", DistinctId: "d", Set: props, Person: &hogwirev1.Person{Properties: props}}}},
		{Token: "nope"},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	pub := &storing{}
	cfg := fuzzConfig(pub)
	s := NewService(cfg).(*service)
	f.Fuzz(func(t *testing.T, data []byte) {
		req := &hogwirev1.PublishRequest{}
		if proto.Unmarshal(data, req) != nil {
			return
		}
		pub.events = nil
		resp, err := s.Publish(context.Background(), req)
		switch code := status.Code(err); code {
		case codes.OK:
			if int(resp.Accepted) != len(req.Events) || len(pub.events) != len(req.Events) {
				t.Fatalf("accepted %d, stored %d of %d", resp.Accepted, len(pub.events), len(req.Events))
			}
			for _, ev := range pub.events {
				if _, v := cfg.Limits.Check(ev); v != nil {
					t.Fatalf("stored an event breaking %v", v)
				}
			}
		case codes.InvalidArgument, codes.ResourceExhausted, codes.Unauthenticated:
			if len(pub.events) != 0 {
				t.Fatalf("%v, yet %d events stored", err, len(pub.events))
			}
		default:
			t.Fatalf("code %v: %v", code, err)
		}
		if used := s.mem.used.Load(); used != 0 {
			t.Fatalf("%d bytes still reserved", used)
		}
	})
}
