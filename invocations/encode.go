package invocations

import (
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of hogwirev1.Invocation and hogwirev1.FetchAttempt, and of
// the well-known Timestamp and Duration (seconds 1, nanos 2).
const (
	fieldDestination     = 3
	fieldStatus          = 4
	fieldErrorKind       = 5
	fieldError           = 6
	fieldEventUUID       = 7
	fieldEventName       = 8
	fieldDistinctID      = 9
	fieldPersonID        = 10
	fieldStartTime       = 11
	fieldDuration        = 12
	fieldRetries         = 13
	fieldRetryTime       = 14
	fieldFetches         = 15
	fieldLogInvocationID = 16
	fieldNodeID          = 17
	fieldRerunOf         = 18
	fieldRerun           = 19
	fieldMapping         = 20
	fieldRevision        = 21

	fieldFetchMethod   = 1
	fieldFetchURL      = 2
	fieldFetchStatus   = 3
	fieldFetchDuration = 4
	fieldFetchError    = 5
	fieldFetchAttempt  = 6
)

// appendRecord appends the stored form of r — the wire encoding of the
// hogwirev1.Invocation that proto makes, byte for byte — to b. The writer
// encodes every record: building the message, its Timestamp and Duration
// messages and then marshalling them cost more than the record's own
// work. rerun is the rerun's name (RerunName), "" for none. ok is false
// when a string is not valid UTF-8, which proto.Marshal refuses too.
func appendRecord(b []byte, r *Record, rerun string) (_ []byte, ok bool) {
	if !validUTF8(r, rerun) {
		return b, false
	}
	b = appendString(b, fieldDestination, r.Destination)
	b = appendVarint(b, fieldStatus, int64(r.Status))
	b = appendString(b, fieldErrorKind, r.ErrorKind)
	b = appendString(b, fieldError, r.Error)
	b = appendString(b, fieldEventUUID, r.EventUUID)
	b = appendString(b, fieldEventName, r.EventName)
	b = appendString(b, fieldDistinctID, r.DistinctID)
	b = appendString(b, fieldPersonID, r.PersonID)
	if !r.Start.IsZero() {
		b = appendSecondsNanos(b, fieldStartTime, r.Start.Unix(), int64(r.Start.Nanosecond()))
	}
	if r.Duration > 0 {
		b = appendDuration(b, fieldDuration, r.Duration)
	}
	b = appendVarint(b, fieldRetries, int64(int32(r.Retries)))
	if !r.RetryTime.IsZero() {
		b = appendSecondsNanos(b, fieldRetryTime, r.RetryTime.Unix(), int64(r.RetryTime.Nanosecond()))
	}
	for i := range r.Fetches {
		f := &r.Fetches[i]
		b = protowire.AppendTag(b, fieldFetches, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(fetchSize(f)))
		b = appendString(b, fieldFetchMethod, f.Method)
		b = appendString(b, fieldFetchURL, f.URL)
		b = appendVarint(b, fieldFetchStatus, int64(int32(f.Status)))
		b = appendDuration(b, fieldFetchDuration, f.Duration)
		b = appendString(b, fieldFetchError, f.Error)
		b = appendVarint(b, fieldFetchAttempt, int64(int32(f.Attempt)))
	}
	b = appendString(b, fieldLogInvocationID, r.LogInvocationID)
	b = appendString(b, fieldNodeID, r.NodeID)
	b = appendString(b, fieldRerunOf, r.RerunOf)
	b = appendString(b, fieldRerun, rerun)
	b = appendString(b, fieldMapping, r.Mapping)
	b = appendVarint(b, fieldRevision, r.Revision)
	return b, true
}

// validUTF8 reports whether every string of r is valid UTF-8, as proto3
// strings must be.
func validUTF8(r *Record, rerun string) bool {
	for _, s := range [...]string{r.Destination, r.ErrorKind, r.Error, r.EventUUID, r.EventName, r.DistinctID, r.PersonID,
		r.LogInvocationID, r.NodeID, r.RerunOf, rerun, r.Mapping} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for i := range r.Fetches {
		f := &r.Fetches[i]
		if !utf8.ValidString(f.Method) || !utf8.ValidString(f.URL) || !utf8.ValidString(f.Error) {
			return false
		}
	}
	return true
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func stringSize(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func varintSize(num protowire.Number, v int64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(uint64(v))
}

// fetchSize is the size of f's FetchAttempt message.
func fetchSize(f *Fetch) int {
	s, n := splitDuration(f.Duration)
	return stringSize(fieldFetchMethod, f.Method) + stringSize(fieldFetchURL, f.URL) +
		varintSize(fieldFetchStatus, int64(int32(f.Status))) +
		protowire.SizeTag(fieldFetchDuration) + protowire.SizeBytes(secondsNanosSize(s, n)) +
		stringSize(fieldFetchError, f.Error) + varintSize(fieldFetchAttempt, int64(int32(f.Attempt)))
}

// splitDuration is durationpb.New's seconds and nanoseconds.
func splitDuration(d time.Duration) (seconds, nanos int64) {
	return int64(d / time.Second), int64(int32(d % time.Second))
}

func appendDuration(b []byte, num protowire.Number, d time.Duration) []byte {
	s, n := splitDuration(d)
	return appendSecondsNanos(b, num, s, n)
}

// appendSecondsNanos appends a Timestamp or Duration message field.
func appendSecondsNanos(b []byte, num protowire.Number, seconds, nanos int64) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(secondsNanosSize(seconds, nanos)))
	b = appendVarint(b, 1, seconds)
	return appendVarint(b, 2, int64(int32(nanos)))
}

func secondsNanosSize(seconds, nanos int64) int {
	return varintSize(1, seconds) + varintSize(2, int64(int32(nanos)))
}
