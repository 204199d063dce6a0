package capture_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/capture"
)

type discardPublisher struct{}

func (discardPublisher) Publish(context.Context, string, []*hogwirev1.Event) error { return nil }

// batch100 is a posthog-js-like batch: 100 events of about 20 properties.
func batch100() []byte {
	var b strings.Builder
	b.WriteString("[")
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"uuid":"0190e2f8-7a3b-7c3d-9e4f-%012d","event":"$pageview","timestamp":"2026-11-26T11:59:%02d.123Z",`+
			`"properties":{"token":"phc_testtoken","distinct_id":"user-%d","$current_url":"https://example.com/p/%d","$host":"example.com",`+
			`"$pathname":"/p/%d","$browser":"Chrome","$browser_version":131,"$os":"Mac OS X","$device_type":"Desktop",`+
			`"$screen_height":1080,"$screen_width":1920,"$lib":"web","$lib_version":"1.200.0","$session_id":"0190e2f8-0000-7000-8000-%012d",`+
			`"$window_id":"0190e2f8-0000-7000-8000-000000000001","$referrer":"$direct","$is_identified":true,"plan":"pro",`+
			`"$feature_flags":["a","b"],"cart":{"items":3,"total":59.9}},"$set":{"email":"u%d@example.com"}}`,
			i, i%60, i, i, i, i, i)
	}
	b.WriteString("]")
	return []byte(b.String())
}

func benchDecode(b *testing.B, body []byte, target string, header map[string]string) {
	h := capture.NewHandler(capture.Config{
		Tokens:    tokens{testToken: testProject},
		Publisher: discardPublisher{},
		Now:       func() time.Time { return fixedNow },
		Logger:    slog.New(slog.DiscardHandler),
	})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		for k, v := range header {
			r.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
	// On a shared machine wall time says more about the neighbours than
	// about this code; CPU time per event says less.
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N*100), "cpu-ns/event")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecode100 measures the handler end to end, bar the publisher,
// on a 100-event batch.
func BenchmarkDecode100(b *testing.B) {
	body := batch100()
	b.Run("plain", func(b *testing.B) {
		benchDecode(b, body, "/e/", map[string]string{"Content-Type": "application/json"})
	})
	b.Run("gzip", func(b *testing.B) {
		benchDecode(b, gz(b, body), "/e/?compression=gzip-js", map[string]string{"Content-Type": "text/plain"})
	})
}

// logPackPublisher does to the events what the data plane's event log
// does before handing them to NATS: Events are sized and marshalled, as
// eventlog.Publish does, and encodings are framed into a message body,
// as eventlog.PublishEncoded does.
type logPackPublisher struct{}

func (logPackPublisher) Publish(_ context.Context, _ string, events []*hogwirev1.Event) error {
	total := 0
	for _, ev := range events {
		n := proto.Size(ev)
		total += protowire.SizeTag(1) + protowire.SizeVarint(uint64(n)) + n
	}
	cached := proto.MarshalOptions{UseCachedSize: true}
	data := make([]byte, 0, total)
	for _, ev := range events {
		data = protowire.AppendTag(data, 1, protowire.BytesType)
		data = protowire.AppendVarint(data, uint64(cached.Size(ev)))
		var err error
		if data, err = cached.MarshalAppend(data, ev); err != nil {
			return err
		}
	}
	return nil
}

func (logPackPublisher) PublishEncoded(_ context.Context, _ string, _ []string, events [][]byte) error {
	total := 0
	for _, ev := range events {
		total += protowire.SizeTag(1) + protowire.SizeVarint(uint64(len(ev))) + len(ev)
	}
	data := make([]byte, 0, total)
	for _, ev := range events {
		data = protowire.AppendTag(data, 1, protowire.BytesType)
		data = protowire.AppendBytes(data, ev)
	}
	return nil
}

// BenchmarkBatch100ToLog measures the /batch/ handler end to end on a
// 100-event batch, up to the bytes the event log stores: what ingest
// costs per event before NATS.
func BenchmarkBatch100ToLog(b *testing.B) { benchBatchToLog(b, batch100()) }

// benchBatchToLog posts body, a 100-event batch, to the /batch/ handler.
func benchBatchToLog(b *testing.B, body []byte) {
	h := capture.NewHandler(capture.Config{
		Tokens:    tokens{testToken: testProject},
		Publisher: logPackPublisher{},
		Now:       func() time.Time { return fixedNow },
		Logger:    slog.New(slog.DiscardHandler),
	})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/batch/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N*100), "cpu-ns/event")
}

// batch100Small is what bench/pipeline sends: 100 small events without
// uuids, which capture must generate.
func batch100Small() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"api_key":%q,"batch":[`, testToken)
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"event":"e","distinct_id":"u%d","properties":{"sent":"%d"}}`, i, 1796000000000000000+i)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// BenchmarkSmallBatch100ToLog is BenchmarkBatch100ToLog on the pipeline
// benchmark's events.
func BenchmarkSmallBatch100ToLog(b *testing.B) { benchBatchToLog(b, batch100Small()) }
