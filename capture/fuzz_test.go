package capture_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/uuid"

	"github.com/hogwire/hogwire/capture"
	"github.com/hogwire/hogwire/eventlimits"
)

// FuzzHandler feeds arbitrary bodies, query strings and headers to the
// handler: it must answer with a known status and a JSON body, store
// nothing unless it answers 2xx, and store only valid events.
func FuzzHandler(f *testing.F) {
	f.Add([]byte(jsArray), "", "application/json", "")
	f.Add([]byte(serverBatch), "_=1795163400000", "", "")
	f.Add(gz(f, []byte(serverBatch)), "compression=gzip-js", "text/plain", "")
	f.Add(gz(f, []byte(jsArray)), "", "", "gzip")
	f.Add([]byte("data="+base64.StdEncoding.EncodeToString([]byte(jsArray))), "compression=base64", "application/x-www-form-urlencoded", "")
	f.Add([]byte(`{"api_key":"phc_testtoken","event":"e","distinct_id":{"a":[1,2]},"timestamp":1e300,"offset":-1e300}`), "", "", "")
	f.Add([]byte(`[{"token":"phc_testtoken","event":"e","distinct_id":"d","properties":{"$groups":{"a":null},"$set":{}}}]`), "beacon=1", "", "")
	f.Add([]byte(`[{"token":"phc_testtoken","event":"e","distinct_id":"d","properties":{"a":[[[[[[[[[[[[{"b":[[[1]]]}]]]]]]]]]]]]}}]`), "", "", "")
	f.Add([]byte(`{"event":"e","distinct_id":"d","properties":{"s":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}`), "token=phc_testtoken", "text/plain", "")
	pub := &memPublisher{}
	cfg := testConfig(pub)
	cfg.MaxDecompressedBytes = 1 << 20
	// Small limits, so that short inputs reach them.
	cfg.Limits = eventlimits.Limits{MaxEventBytes: 2 << 10, MaxBatchEvents: 20, MaxProperties: 30, MaxStringBytes: 40}
	h := capture.NewHandler(cfg)
	f.Fuzz(func(t *testing.T, body []byte, query, contentType, encoding string) {
		// Any text is a query once re-encoded; a raw one may not be a URL.
		q, _ := url.ParseQuery(query)
		rec := do(t, h, req{target: "/batch/?" + q.Encode(), contentType: contentType, header: map[string]string{"Content-Encoding": encoding}, body: body})
		switch rec.Code {
		case http.StatusOK, http.StatusNoContent:
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			if n := len(pub.all()); n != 0 {
				t.Fatalf("status %d, yet %d events stored", rec.Code, n)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if rec.Code != http.StatusNoContent && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("body %q is not JSON", rec.Body)
		}
		for _, ev := range pub.all() {
			if ev.Event == "" || ev.DistinctId == "" || ev.Project != testProject || ev.Timestamp == nil {
				t.Fatalf("invalid event stored: %v", ev)
			}
			if _, err := uuid.Parse(ev.Uuid); err != nil {
				t.Fatalf("event stored with uuid %q", ev.Uuid)
			}
			if err := ev.Timestamp.CheckValid(); err != nil {
				t.Fatalf("event stored with timestamp %v", ev.Timestamp)
			}
			if _, v := cfg.Limits.Check(ev); v != nil {
				t.Fatalf("event stored breaking %v", v)
			}
		}
		pub.reset()
	})
}
