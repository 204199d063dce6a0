package invocations

import (
	"bytes"
	"hash/fnv"
	"math"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// protoOf is the stored form of r as the writer made it with the proto
// types, before it encoded records itself.
func protoOf(r *Record) *hogwirev1.Invocation {
	pb := &hogwirev1.Invocation{
		Destination: r.Destination, Status: r.Status, ErrorKind: r.ErrorKind, Error: r.Error,
		EventUuid: r.EventUUID, EventName: r.EventName, DistinctId: r.DistinctID, PersonId: r.PersonID,
		Retries: int32(r.Retries), LogInvocationId: r.LogInvocationID, NodeId: r.NodeID, RerunOf: r.RerunOf, Mapping: r.Mapping,
		DestinationRevision: r.Revision,
	}
	if r.Rerun != "" {
		pb.Rerun = RerunName(projectOf(r.Destination), r.Rerun)
	}
	if !r.Start.IsZero() {
		pb.StartTime = timestamppb.New(r.Start)
	}
	if r.Duration > 0 {
		pb.Duration = durationpb.New(r.Duration)
	}
	if !r.RetryTime.IsZero() {
		pb.RetryTime = timestamppb.New(r.RetryTime)
	}
	for _, f := range r.Fetches {
		pb.Fetches = append(pb.Fetches, &hogwirev1.FetchAttempt{Method: f.Method, Url: f.URL, Status: int32(f.Status),
			Duration: durationpb.New(f.Duration), Error: f.Error, Attempt: int32(f.Attempt)})
	}
	return pb
}

// The writer's own encoding of a record is proto's, byte for byte, for
// every field and the edges of their values (zero, negative, large, times
// before 1970), and it refuses what proto refuses.
func TestAppendRecordIsProtoEncoding(t *testing.T) {
	start := time.Date(2026, 12, 6, 3, 4, 5, 678901234, time.UTC)
	full := Record{Destination: "projects/shop/destinations/hook", Status: failed, ErrorKind: "http_5xx",
		Error: "Request failed with status 503 — «retry»", EventUUID: "01900000-0000-7000-8000-000000000001", EventName: "$pageview",
		DistinctID: "user-1", PersonID: "p1", Start: start, Duration: 1234567891 * time.Nanosecond, Retries: 3,
		RetryTime: start.Add(time.Hour), LogInvocationID: "abc", NodeID: "node-1", RerunOf: "r0", Rerun: "r1", Mapping: "m",
		Revision: 42, Fetches: []Fetch{
			{Method: "POST", URL: "https://api.example.com/v1/track", Status: 503, Duration: 25 * time.Millisecond, Attempt: 1},
			{Method: "POST", URL: "https://api.example.com/v1/track", Error: "timeout", Duration: 3 * time.Second, Attempt: 2},
			{Method: "GET", URL: "https://x.example/", Status: 200, Attempt: 3},
		}}
	records := []Record{
		{},
		{Destination: "projects/shop/destinations/hook", Status: succeeded, Start: start},
		full,
		{Destination: "projects/p/destinations/d", Status: failed, Start: time.Unix(-5, 300), Duration: -time.Second,
			Retries: -2, Revision: -7, RetryTime: time.Unix(0, 1), Fetches: []Fetch{{Duration: -1500 * time.Millisecond, Status: -1, Attempt: math.MaxInt32 + 5}}},
		{Destination: "projects/p/destinations/d", Start: time.Unix(1<<40, 999999999), Duration: math.MaxInt64, Retries: math.MaxInt64,
			Revision: math.MaxInt64, Fetches: []Fetch{{Duration: math.MinInt64}}},
	}
	for i, r := range records {
		var rerun string
		if r.Rerun != "" {
			rerun = RerunName(projectOf(r.Destination), r.Rerun)
		}
		got, ok := appendRecord([]byte("prefix"), &r, rerun)
		want, err := proto.Marshal(protoOf(&r))
		if !ok || err != nil {
			t.Fatalf("record %d: ok = %v, proto.Marshal: %v", i, ok, err)
		}
		if !bytes.Equal(got[len("prefix"):], want) || string(got[:len("prefix")]) != "prefix" {
			t.Errorf("record %d:\n got %x\nwant prefix+%x", i, got, want)
		}
	}
	for _, bad := range []func(r *Record){
		func(r *Record) { r.Error = "\xff" },
		func(r *Record) { r.DistinctID = "a\xc0" },
		func(r *Record) { r.Fetches[1].URL = "https://\xfe/" },
	} {
		r := full
		r.Fetches = append([]Fetch(nil), full.Fetches...)
		bad(&r)
		if _, err := proto.Marshal(protoOf(&r)); err == nil {
			t.Fatal("proto.Marshal took invalid UTF-8")
		}
		if _, ok := appendRecord(nil, &r, "r1"); ok {
			t.Errorf("appendRecord took invalid UTF-8 in %+v", r)
		}
	}
}

// Index subjects stay where earlier versions wrote them: FNV-1a of the
// key.
func TestIndexSubjectIsFNV(t *testing.T) {
	for _, key := range []string{"", "user-1", "01900000-0000-7000-8000-000000000001", "é€🙂"} {
		h := fnv.New64a()
		h.Write([]byte(key))
		want := indexPrefix + "shop." + string(rune(indexDistinct)) + "." + strconv.FormatUint(h.Sum64()>>(64-bucketBits), 16)
		if got := indexSubject("shop", indexDistinct, key); got != want {
			t.Errorf("indexSubject(%q) = %q, want %q", key, got, want)
		}
	}
}
