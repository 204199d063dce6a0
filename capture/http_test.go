package capture_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	lzs "github.com/daku10/go-lz-string"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/hogwire/hogwire/capture"
)

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type req struct {
	method, target, contentType string
	header                      map[string]string
	body                        []byte
	// chunked hides the body's length, as a streaming client would.
	chunked bool
}

func do(t testing.TB, h http.Handler, r req) *httptest.ResponseRecorder {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	var body io.Reader = bytes.NewReader(r.body)
	if r.chunked {
		body = io.MultiReader(bytes.NewReader(r.body))
	}
	hr := httptest.NewRequest(r.method, r.target, body)
	if r.chunked {
		hr.ContentLength = -1
	}
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr)
	return rec
}

const jsArray = `[
 {"event":"$pageview","uuid":"0190e2f8-7a3b-7c3d-9e4f-0123456789ab","properties":{"token":"phc_testtoken","distinct_id":"u1","$current_url":"https://x.test/a"},"timestamp":"2026-11-26T11:59:00.000Z"},
 {"event":"clicked","properties":{"token":"phc_testtoken","distinct_id":"u2","n":3}}
]`

const serverBatch = `{"api_key":"phc_testtoken","batch":[
 {"type":"capture","event":"signed_up","distinct_id":"u1","properties":{"plan":"pro"}},
 {"type":"capture","event":"paid","distinct_id":"u2","properties":{}}
]}`

func formBody(fields map[string]string) []byte {
	v := url.Values{}
	for k, s := range fields {
		v.Set(k, s)
	}
	return []byte(v.Encode())
}

func TestBodyVariants(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	b64 := base64.StdEncoding.EncodeToString
	// A payload whose base64 holds '+' and '/', which form encoding mangles
	// unless the server restores them.
	tricky := `[{"event":"e>>>?","properties":{"token":"phc_testtoken","distinct_id":"ü~~~?"}}]`
	if enc := b64([]byte(tricky)); !strings.ContainsAny(enc, "+/") {
		t.Fatalf("fixture %q encodes without + or /", enc)
	}
	cases := []struct {
		name  string
		req   req
		names []string
		ids   []string
	}{
		{"json single event, api_key", req{target: "/capture/", contentType: "application/json",
			body: []byte(`{"api_key":"phc_testtoken","event":"one","distinct_id":"d1"}`)}, []string{"one"}, []string{"d1"}},
		{"json single event, $token", req{target: "/capture",
			body: []byte(`{"$token":"phc_testtoken","event":"one","$distinct_id":"d1"}`)}, []string{"one"}, []string{"d1"}},
		{"json batch object", req{target: "/batch/", contentType: "application/json", body: []byte(serverBatch)},
			[]string{"signed_up", "paid"}, []string{"u1", "u2"}},
		{"json array, token in properties", req{target: "/e/", contentType: "application/json", body: []byte(jsArray)},
			[]string{"$pageview", "clicked"}, []string{"u1", "u2"}},
		{"Content-Encoding gzip", req{target: "/batch", contentType: "application/json",
			header: map[string]string{"Content-Encoding": "gzip"}, body: gz(t, []byte(serverBatch))},
			[]string{"signed_up", "paid"}, []string{"u1", "u2"}},
		{"gzip-js query parameter", req{target: "/i/v0/e/?compression=gzip-js&ver=1.200.0", contentType: "text/plain",
			body: gz(t, []byte(jsArray))}, []string{"$pageview", "clicked"}, []string{"u1", "u2"}},
		{"Content-Encoding gzip and gzip-js", req{target: "/batch/?compression=gzip-js",
			header: map[string]string{"Content-Encoding": "gzip"}, body: gz(t, []byte(serverBatch))},
			[]string{"signed_up", "paid"}, []string{"u1", "u2"}},
		{"gzip sniffed without hint", req{target: "/e", body: gz(t, []byte(jsArray))},
			[]string{"$pageview", "clicked"}, []string{"u1", "u2"}},
		{"form data base64 (posthog-js compression=base64)", req{target: "/e/?compression=base64", contentType: form,
			body: []byte("data=" + url.QueryEscape(b64([]byte(tricky))))}, []string{"e>>>?"}, []string{"ü~~~?"}},
		{"form data base64, + left unescaped", req{target: "/e/", contentType: form,
			body: []byte("data=" + b64([]byte(tricky)))}, []string{"e>>>?"}, []string{"ü~~~?"}},
		{"form data plain JSON", req{target: "/track/", contentType: form,
			body: formBody(map[string]string{"data": jsArray})}, []string{"$pageview", "clicked"}, []string{"u1", "u2"}},
		{"form data base64 of gzip, compression field", req{target: "/e/", contentType: form,
			body: formBody(map[string]string{"data": b64(gz(t, []byte(jsArray))), "compression": "gzip-js"})},
			[]string{"$pageview", "clicked"}, []string{"u1", "u2"}},
		{"form without content type", req{target: "/e/",
			body: formBody(map[string]string{"data": b64([]byte(jsArray))})}, []string{"$pageview", "clicked"}, []string{"u1", "u2"}},
		{"form data lz64 (older posthog-js)", req{target: "/e/?compression=lz64", contentType: form,
			body: []byte("data=" + url.QueryEscape(lz64(t, tricky)))}, []string{"e>>>?"}, []string{"ü~~~?"}},
		{"form data lz64, compression field, + left unescaped", req{target: "/e/", contentType: form,
			body: []byte("compression=lz64&data=" + lz64(t, jsArray))}, []string{"$pageview", "clicked"}, []string{"u1", "u2"}},
		{"form api_key field", req{target: "/capture/", contentType: form,
			body: formBody(map[string]string{"data": `{"event":"x","distinct_id":"d"}`, "api_key": testToken})}, []string{"x"}, []string{"d"}},
		{"JSON labelled as a form", req{target: "/batch/", contentType: form, body: []byte(serverBatch)},
			[]string{"signed_up", "paid"}, []string{"u1", "u2"}},
		{"raw base64 body", req{target: "/batch/", contentType: "text/plain", body: []byte(b64([]byte(serverBatch)))},
			[]string{"signed_up", "paid"}, []string{"u1", "u2"}},
		{"GET data query, base64", req{method: http.MethodGet, target: "/e/?data=" + url.QueryEscape(b64([]byte(tricky)))},
			[]string{"e>>>?"}, []string{"ü~~~?"}},
		{"GET data query, JSON", req{method: http.MethodGet, target: "/capture/?data=" + url.QueryEscape(`{"token":"phc_testtoken","event":"g","distinct_id":"d"}`)},
			[]string{"g"}, []string{"d"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPublisher{}
			rec := do(t, capture.NewHandler(testConfig(pub)), tc.req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, body %s", rec.Code, rec.Body)
			}
			var resp map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp["status"] != float64(1) || len(resp) != 1 {
				t.Fatalf("body %s, want {\"status\": 1}", rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			calls := pub.calls()
			if len(calls) != 1 || calls[0].project != testProject {
				t.Fatalf("publish calls %+v, want one for %s", calls, testProject)
			}
			evs := calls[0].events
			if len(evs) != len(tc.names) {
				t.Fatalf("%d events, want %d", len(evs), len(tc.names))
			}
			for i, ev := range evs {
				if ev.Event != tc.names[i] || ev.DistinctId != tc.ids[i] || ev.Project != testProject {
					t.Errorf("event %d = %q/%q/%q, want %q/%q/%q", i, ev.Event, ev.DistinctId, ev.Project, tc.names[i], tc.ids[i], testProject)
				}
			}
		})
	}
}

func TestEveryPath(t *testing.T) {
	pub := &memPublisher{}
	h := capture.NewHandler(testConfig(pub))
	n := 0
	for _, p := range capture.Paths() {
		for _, path := range []string{p, p + "/"} {
			rec := do(t, h, req{target: path, body: []byte(`{"api_key":"phc_testtoken","event":"e","distinct_id":"d"}`)})
			if rec.Code != http.StatusOK {
				t.Errorf("POST %s: %d %s", path, rec.Code, rec.Body)
			}
			n++
		}
	}
	if got := len(pub.all()); got != n {
		t.Errorf("%d events stored, want %d", got, n)
	}
	if rec := do(t, h, req{target: "/batch/extra", body: []byte(serverBatch)}); rec.Code != http.StatusNotFound {
		t.Errorf("POST /batch/extra: %d, want 404", rec.Code)
	}
}

// errBody is PostHog's error shape.
type errBody struct {
	Type     string              `json:"type"`
	Code     string              `json:"code"`
	Detail   string              `json:"detail"`
	Attr     *string             `json:"attr"`
	Rejected []capture.Rejection `json:"rejected"`
}

func decodeErr(t *testing.T, rec *httptest.ResponseRecorder) errBody {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body, err)
	}
	for _, k := range []string{"type", "code", "detail", "attr"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("error body %s lacks %q", rec.Body, k)
		}
	}
	var e errBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestErrors(t *testing.T) {
	bomb := gz(t, make([]byte, 8<<20)) // 8 MiB of zeros in about 8 KB
	many := `{"api_key":"phc_testtoken","batch":[` + strings.TrimSuffix(strings.Repeat(`{"event":"e","distinct_id":"d"},`, 11), ",") + `]}`
	cases := []struct {
		name     string
		cfg      func(*capture.Config)
		req      req
		status   int
		typ      string
		code     string
		rejected []int
	}{
		{"empty body", nil, req{target: "/batch/"}, 400, "validation_error", "no_data", nil},
		{"malformed JSON", nil, req{target: "/batch/", body: []byte(`{"api_key":`)}, 400, "validation_error", "invalid_payload", nil},
		{"not an object", nil, req{target: "/batch/", body: []byte(`"hello"`)}, 400, "validation_error", "invalid_payload", nil},
		{"batch not an array", nil, req{target: "/batch/", body: []byte(`{"api_key":"phc_testtoken","batch":{"event":"e"}}`)}, 400, "validation_error", "invalid_payload", nil},
		{"empty batch", nil, req{target: "/batch/", body: []byte(`{"api_key":"phc_testtoken","batch":[]}`)}, 400, "validation_error", "invalid_payload", nil},
		{"missing token", nil, req{target: "/batch/", body: []byte(`{"batch":[{"event":"e","distinct_id":"d"}]}`)}, 401, "authentication_error", "missing_api_key", nil},
		{"unknown token", nil, req{target: "/batch/", body: []byte(`{"api_key":"phc_nope","batch":[{"event":"e","distinct_id":"d"}]}`)}, 401, "authentication_error", "invalid_api_key", nil},
		{"inconsistent tokens", nil, req{target: "/e/", body: []byte(`[{"event":"e","distinct_id":"d","token":"phc_testtoken"},{"event":"e","distinct_id":"d","token":"phc_other"}]`)}, 401, "authentication_error", "invalid_api_key", nil},
		{"body over limit by Content-Length", func(c *capture.Config) { c.MaxBodyBytes = 100 },
			req{target: "/batch/", body: []byte(serverBatch)}, 413, "validation_error", "payload_too_large", nil},
		{"body over limit while reading", func(c *capture.Config) { c.MaxBodyBytes = 100 },
			req{target: "/batch/", body: []byte(serverBatch), chunked: true}, 413, "validation_error", "payload_too_large", nil},
		{"gzip bomb", func(c *capture.Config) { c.MaxDecompressedBytes = 1 << 20 },
			req{target: "/batch/", header: map[string]string{"Content-Encoding": "gzip"}, body: bomb}, 413, "validation_error", "payload_too_large", nil},
		{"gzip-js bomb", func(c *capture.Config) { c.MaxDecompressedBytes = 1 << 20 },
			req{target: "/e/?compression=gzip-js", body: bomb}, 413, "validation_error", "payload_too_large", nil},
		{"invalid gzip", nil, req{target: "/batch/", header: map[string]string{"Content-Encoding": "gzip"}, body: []byte("not gzip")}, 400, "validation_error", "invalid_payload", nil},
		{"truncated gzip", nil, req{target: "/e/?compression=gzip-js", body: gz(t, []byte(jsArray))[:20]}, 400, "validation_error", "invalid_payload", nil},
		{"gzip-js but not gzip", nil, req{target: "/e/?compression=gzip-js", body: []byte(jsArray)}, 400, "validation_error", "invalid_payload", nil},
		{"lz64 garbage", nil, req{target: "/e/", contentType: "application/x-www-form-urlencoded",
			body: formBody(map[string]string{"data": "N4IgDghgTg", "compression": "lz64"})}, 400, "validation_error", "invalid_payload", nil},
		{"lz64 bomb", func(c *capture.Config) { c.MaxDecompressedBytes = 8 << 10 }, req{target: "/e/?compression=lz64", contentType: "application/x-www-form-urlencoded",
			body: formBody(map[string]string{"data": lz64(t, strings.Repeat("a", 32<<10))})}, 413, "validation_error", "payload_too_large", nil},
		{"brotli", nil, req{target: "/batch/", header: map[string]string{"Content-Encoding": "br"}, body: []byte("x")}, 400, "validation_error", "unsupported_compression", nil},
		{"form without data", nil, req{target: "/e/", contentType: "application/x-www-form-urlencoded", body: []byte("ver=1.0")}, 400, "validation_error", "no_data", nil},
		{"too many events", func(c *capture.Config) { c.Limits.MaxBatchEvents = 10 }, req{target: "/batch/", body: []byte(many)}, 413, "validation_error", "payload_too_large", []int{10}},
		{"every event invalid", nil, req{target: "/batch/", body: []byte(`{"api_key":"phc_testtoken","batch":[{"event":"e"},{"distinct_id":"d"}]}`)},
			400, "validation_error", "invalid_payload", []int{0, 1}},
		{"distinct id nested too deep", nil, req{target: "/batch/", body: []byte(`{"api_key":"phc_testtoken","batch":[{"event":"e","distinct_id":` +
			strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}]}`)}, 400, "validation_error", "invalid_payload", []int{0}},
		{"publisher down", nil, req{target: "/batch/", body: []byte(serverBatch)}, 503, "server_error", "unavailable", nil},
		{"wrong method", nil, req{method: http.MethodPut, target: "/batch/", body: []byte(serverBatch)}, 405, "invalid_request", "method_not_allowed", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPublisher{fail: tc.name == "publisher down"}
			cfg := testConfig(pub)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			rec := do(t, capture.NewHandler(cfg), tc.req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			e := decodeErr(t, rec)
			if e.Type != tc.typ || e.Code != tc.code || e.Detail == "" {
				t.Errorf("error %+v, want type %q code %q and a detail", e, tc.typ, tc.code)
			}
			var idx []int
			for _, r := range e.Rejected {
				idx = append(idx, r.Index)
			}
			if fmt.Sprint(idx) != fmt.Sprint(tc.rejected) {
				t.Errorf("rejected %v, want %v", idx, tc.rejected)
			}
			if n := len(pub.all()); n != 0 {
				t.Errorf("%d events stored by a failed request", n)
			}
		})
	}
}

func TestMethodNotAllowedSaysAllow(t *testing.T) {
	rec := do(t, capture.NewHandler(testConfig(&memPublisher{})), req{method: http.MethodDelete, target: "/e/"})
	if rec.Code != 405 || !strings.Contains(rec.Header().Get("Allow"), "POST") {
		t.Errorf("status %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

// One invalid event refuses the whole request, naming every offending
// event, its field and the rule; nothing is stored.
func TestInvalidEventRefusesRequest(t *testing.T) {
	pub := &memPublisher{}
	body := `{"api_key":"phc_testtoken","batch":[
	  {"event":"ok0","distinct_id":"d"},
	  {"event":"bad1"},
	  {"event":"ok2","distinct_id":"d"},
	  {"distinct_id":"d"},
	  {"event":"bad4","distinct_id":"d","uuid":"not-a-uuid"},
	  {"event":"bad5","distinct_id":"d","properties":[1]},
	  "not an event",
	  {"event":"ok7","distinct_id":"d","$set":"x"},
	  {"event":null,"distinct_id":"d"},
	  {"event":7,"distinct_id":"d"},
	  {"event":"bad10","distinct_id":"d","properties":{"$groups":{"company":["a"]}}}
	]}`
	rec := do(t, capture.NewHandler(testConfig(pub)), req{target: "/batch/", body: []byte(body)})
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	e := decodeErr(t, rec)
	want := []capture.Rejection{
		{Index: 1, Field: "distinct_id", Rule: "required"}, {Index: 3, Field: "event", Rule: "required"}, {Index: 4, Field: "uuid", Rule: "invalid"},
		{Index: 5, Field: "properties", Rule: "invalid"}, {Index: 6, Field: "", Rule: "invalid"},
		{Index: 8, Field: "event", Rule: "required"}, {Index: 9, Field: "event", Rule: "invalid"}, {Index: 10, Field: "properties.$groups", Rule: "invalid"},
	}
	if len(e.Rejected) != len(want) || !strings.Contains(e.Detail, "nothing was stored") {
		t.Fatalf("response %s", rec.Body)
	}
	for i, r := range e.Rejected {
		if r.Index != want[i].Index || r.Field != want[i].Field || r.Rule != want[i].Rule || r.Reason == "" {
			t.Errorf("rejected[%d] = %+v, want %+v and a reason", i, r, want[i])
		}
	}
	if evs := pub.all(); len(evs) != 0 {
		t.Errorf("stored %v", evs)
	}
}

// A $set or $set_once that is not an object is accepted, as PostHog
// accepts it: it is not a set field, and stays in the properties, where
// the person store reports and ignores it.
func TestMalformedSetIsAccepted(t *testing.T) {
	pub := &memPublisher{}
	body := `{"api_key":"phc_testtoken","batch":[
	  {"event":"a","distinct_id":"d","$set":"x","properties":{"$set_once":[1]}},
	  {"event":"b","distinct_id":"d","$set":{"ok":true},"properties":{"$set":7}}
	]}`
	rec := do(t, capture.NewHandler(testConfig(pub)), req{target: "/batch/", body: []byte(body)})
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	evs := pub.all()
	if len(evs) != 2 {
		t.Fatalf("stored %d events", len(evs))
	}
	p := evs[0].GetProperties().GetFields()
	if evs[0].GetSet() != nil || evs[0].GetSetOnce() != nil || p["$set"].GetStringValue() != "x" || len(p["$set_once"].GetListValue().GetValues()) != 1 {
		t.Errorf("event a: %v", evs[0])
	}
	if !evs[1].GetSet().GetFields()["ok"].GetBoolValue() || evs[1].GetProperties().GetFields()["$set"].GetNumberValue() != 7 {
		t.Errorf("event b: %v", evs[1])
	}
}

func TestBeaconAnswers204(t *testing.T) {
	pub := &memPublisher{}
	rec := do(t, capture.NewHandler(testConfig(pub)), req{target: "/e/?beacon=1&compression=gzip-js", body: gz(t, []byte(jsArray))})
	if rec.Code != http.StatusNoContent || rec.Body.Len() != 0 {
		t.Errorf("status %d body %q", rec.Code, rec.Body)
	}
	if len(pub.all()) != 2 {
		t.Errorf("events not stored")
	}
}

func TestCORS(t *testing.T) {
	h := capture.NewHandler(testConfig(&memPublisher{}))
	rec := do(t, h, req{method: http.MethodOptions, target: "/e/", header: map[string]string{
		"Origin": "https://app.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,traceparent"}})
	if rec.Code != http.StatusOK {
		t.Fatalf("preflight status %d", rec.Code)
	}
	hd := rec.Header()
	if hd.Get("Access-Control-Allow-Origin") != "https://app.example" || hd.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(hd.Get("Access-Control-Allow-Methods"), "POST") || hd.Get("Access-Control-Allow-Headers") != "content-type,traceparent" {
		t.Errorf("preflight headers %v", hd)
	}
	rec = do(t, h, req{target: "/e/", header: map[string]string{"Origin": "https://app.example"}, body: []byte(jsArray)})
	if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("POST status %d headers %v", rec.Code, rec.Header())
	}
}

func TestEventFields(t *testing.T) {
	pub := &memPublisher{}
	long := strings.Repeat("é", 250)
	body := `[
	 {"event":"a","uuid":"0190E2F8-7A3B-7C3D-9E4F-0123456789AB","distinct_id":"top","properties":{"token":"phc_testtoken","distinct_id":"inner",
	   "$set":{"plan":"free","seen":1},"$set_once":{"first":"x"},"$groups":{"company":"acme","team":42},"nested":{"l":[1,"two",true,null]},
	   "$elements_chain":"a:nth-child=\"1\""},
	  "$set":{"plan":"pro"}},
	 {"event":"b","properties":{"token":"phc_testtoken","distinct_id":23}},
	 {"event":"c","distinct_id":{"k":"v"},"token":"phc_testtoken"},
	 {"event":"d","distinct_id":"` + long + `","token":"phc_testtoken"},
	 {"event":"e","distinct_id":"x","token":"phc_testtoken","$set_once":{"first":"y"}}
	]`
	rec := do(t, capture.NewHandler(testConfig(pub)), req{target: "/e/", body: []byte(body)})
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	evs := pub.all()
	if len(evs) != 5 {
		t.Fatalf("%d events", len(evs))
	}
	a := evs[0]
	if a.Uuid != "0190e2f8-7a3b-7c3d-9e4f-0123456789ab" {
		t.Errorf("uuid %q not kept (normalised)", a.Uuid)
	}
	if a.DistinctId != "top" {
		t.Errorf("top-level distinct_id should win: %q", a.DistinctId)
	}
	set := a.GetSet().AsMap()
	if set["plan"] != "pro" || set["seen"] != float64(1) {
		t.Errorf("$set = %v, want top level merged over properties.$set", set)
	}
	if a.GetSetOnce().AsMap()["first"] != "x" {
		t.Errorf("$set_once = %v", a.GetSetOnce())
	}
	if a.Groups["company"] != "acme" || a.Groups["team"] != "42" {
		t.Errorf("groups %v", a.Groups)
	}
	props := a.GetProperties().AsMap()
	if l, _ := props["nested"].(map[string]any)["l"].([]any); len(l) != 4 || l[1] != "two" || l[2] != true || l[3] != nil {
		t.Errorf("nested properties %v", props["nested"])
	}
	if a.ElementsChain != `a:nth-child="1"` {
		t.Errorf("elements_chain %q", a.ElementsChain)
	}
	if a.Person != nil {
		t.Errorf("person %v, want empty", a.Person)
	}
	if evs[1].DistinctId != "23" {
		t.Errorf("numeric distinct_id %q", evs[1].DistinctId)
	}
	if evs[2].DistinctId != `{"k":"v"}` {
		t.Errorf("object distinct_id %q", evs[2].DistinctId)
	}
	if evs[3].DistinctId != strings.Repeat("é", 200) {
		t.Errorf("long distinct_id not cut to 200 characters: %d", len([]rune(evs[3].DistinctId)))
	}
	if evs[1].Set != nil || evs[4].GetSetOnce().AsMap()["first"] != "y" {
		t.Errorf("set %v set_once %v", evs[1].Set, evs[4].SetOnce)
	}
	for i, ev := range evs[1:] {
		id, err := uuid.Parse(ev.Uuid)
		if err != nil || id.Version() != 7 {
			t.Errorf("event %d: generated uuid %q is not a UUIDv7", i+1, ev.Uuid)
		}
	}
}

func TestSkewCorrection(t *testing.T) {
	now := fixedNow
	ms := func(tm time.Time) string { return fmt.Sprint(tm.UnixMilli()) }
	iso := func(tm time.Time) string { return tm.Format(time.RFC3339Nano) }
	// The client's clock is 10 minutes fast: it says the event happened at
	// 12:05 and was sent at 12:08, so it happened 3 minutes before now.
	ts, sent := now.Add(5*time.Minute), now.Add(8*time.Minute)
	want := now.Add(-3 * time.Minute)
	cases := []struct {
		name, target, body string
		want               time.Time
	}{
		{"batch sent_at", "/batch/", `{"api_key":"phc_testtoken","sent_at":"` + iso(sent) + `","batch":[{"event":"e","distinct_id":"d","timestamp":"` + iso(ts) + `"}]}`, want},
		{"posthog-js _ query", "/e/?_=" + ms(sent), `[{"event":"e","distinct_id":"d","token":"phc_testtoken","timestamp":"` + iso(ts) + `"}]`, want},
		{"event sent_at", "/capture/", `{"api_key":"phc_testtoken","event":"e","distinct_id":"d","timestamp":"` + iso(ts) + `","sent_at":"` + iso(sent) + `"}`, want},
		{"event sent_at wins over query", "/e/?_=" + ms(now), `[{"event":"e","distinct_id":"d","token":"phc_testtoken","timestamp":"` + iso(ts) + `","sent_at":"` + iso(sent) + `"}]`, want},
		{"offset", "/batch/", `{"api_key":"phc_testtoken","batch":[{"event":"e","distinct_id":"d","offset":1500}]}`, now.Add(-1500 * time.Millisecond)},
		{"offset wins over timestamp", "/batch/", `{"api_key":"phc_testtoken","batch":[{"event":"e","distinct_id":"d","offset":2000,"timestamp":"2020-01-01T00:00:00Z"}]}`, now.Add(-2 * time.Second)},
		{"no sent_at keeps timestamp", "/batch/", `{"api_key":"phc_testtoken","batch":[{"event":"e","distinct_id":"d","timestamp":"2026-11-20T08:30:00.25+02:00"}]}`, time.Date(2026, 11, 20, 6, 30, 0, 250e6, time.UTC)},
		{"$ignore_sent_at", "/e/?_=" + ms(sent), `[{"event":"e","distinct_id":"d","token":"phc_testtoken","timestamp":"` + iso(ts) + `","properties":{"$ignore_sent_at":true}}]`, ts},
		{"seconds in _ are ignored", "/e/?_=" + fmt.Sprint(sent.Unix()), `[{"event":"e","distinct_id":"d","token":"phc_testtoken","timestamp":"` + iso(ts) + `"}]`, ts},
		{"more than 23h ahead is now", "/batch/", `{"api_key":"phc_testtoken","batch":[{"event":"e","distinct_id":"d","timestamp":"` + iso(now.Add(24*time.Hour)) + `"}]}`, now},
		{"22h ahead is kept", "/batch/", `{"api_key":"phc_testtoken","batch":[{"event":"e","distinct_id":"d","timestamp":"` + iso(now.Add(22*time.Hour)) + `"}]}`, now.Add(22 * time.Hour)},
		{"missing timestamp is now", "/batch/", `{"api_key":"phc_testtoken","batch":[{"event":"e","distinct_id":"d"}]}`, now},
		{"unparsable timestamp is now", "/batch/", `{"api_key":"phc_testtoken","batch":[{"event":"e","distinct_id":"d","timestamp":"yesterday"}]}`, now},
		{"zone without minutes", "/batch/", `{"api_key":"phc_testtoken","batch":[{"event":"e","distinct_id":"d","timestamp":"2026-11-20T08:30:00.000+03"}]}`, time.Date(2026, 11, 20, 5, 30, 0, 0, time.UTC)},
		{"zoneless is UTC", "/batch/", `{"api_key":"phc_testtoken","batch":[{"event":"e","distinct_id":"d","timestamp":"2026-11-20 08:30:00"}]}`, time.Date(2026, 11, 20, 8, 30, 0, 0, time.UTC)},
		{"epoch milliseconds", "/batch/", `{"api_key":"phc_testtoken","batch":[{"event":"e","distinct_id":"d","timestamp":` + ms(now.Add(-time.Hour)) + `}]}`, now.Add(-time.Hour)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPublisher{}
			rec := do(t, capture.NewHandler(testConfig(pub)), req{target: tc.target, body: []byte(tc.body)})
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			evs := pub.all()
			if len(evs) != 1 {
				t.Fatalf("%d events", len(evs))
			}
			if got := evs[0].Timestamp.AsTime(); !got.Equal(tc.want) {
				t.Errorf("timestamp %v, want %v", got, tc.want)
			}
		})
	}
}

// A gzip bomb is refused after inflating no more than the cap: the
// handler's allocations stay near the cap however far the bomb would go.
func TestGzipBombBoundedMemory(t *testing.T) {
	const capBytes = 1 << 20
	bomb := gz(t, make([]byte, 16<<20)) // 16 MiB of zeros in about 16 KB
	pub := &memPublisher{}
	cfg := testConfig(pub)
	cfg.MaxDecompressedBytes = capBytes
	h := capture.NewHandler(cfg)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rec := do(t, h, req{target: "/e/?compression=gzip-js", body: bomb})
	runtime.ReadMemStats(&after)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*capBytes {
		t.Errorf("handling the bomb allocated %d bytes, want under %d", alloc, 8*capBytes)
	}
}

// Bad requests running alongside good ones cost the good ones nothing.
func TestBadRequestsDoNotDisturbGoodOnes(t *testing.T) {
	pub := &memPublisher{}
	cfg := testConfig(pub)
	cfg.MaxDecompressedBytes = 1 << 20
	srv := httptest.NewServer(capture.NewHandler(cfg))
	defer srv.Close()
	bomb := gz(t, make([]byte, 4<<20))
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			resp, err := http.Post(srv.URL+"/e/?compression=gzip-js", "text/plain", bytes.NewReader(bomb))
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 413 {
				errs <- fmt.Errorf("bomb: %d", resp.StatusCode)
			}
		}()
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"api_key":"phc_testtoken","batch":[{"event":"good","distinct_id":"d%d"}]}`, i)
			resp, err := http.Post(srv.URL+"/batch/", "application/json", strings.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("good request: %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(pub.all()); n != 20 {
		t.Errorf("%d good events stored, want 20", n)
	}
}

func TestTraceparentContinued(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	pub := &memPublisher{}
	cfg := testConfig(pub)
	cfg.TracerProvider = tp
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp := do(t, capture.NewHandler(cfg), req{target: "/batch/", body: []byte(serverBatch),
		header: map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"}})
	if resp.Code != 200 {
		t.Fatalf("status %d", resp.Code)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.SpanContext().TraceID().String() != traceID || s.Parent().SpanID().String() != "00f067aa0ba902b7" || !s.Parent().IsRemote() {
		t.Errorf("span %s trace %s parent %s: traceparent not continued", s.Name(), s.SpanContext().TraceID(), s.Parent().SpanID())
	}
	calls := pub.calls()
	if len(calls) != 1 || calls[0].span.SpanID() != s.SpanContext().SpanID() {
		t.Errorf("Publish did not run in the request span")
	}
	// A server span with the HTTP semantic conventions, named by route.
	attrs := map[string]string{}
	for _, a := range s.Attributes() {
		attrs[string(a.Key)] = a.Value.String()
	}
	if s.Name() != "POST /batch/{$}" || s.SpanKind() != oteltrace.SpanKindServer || attrs["http.route"] != "/batch/{$}" ||
		attrs["http.request.method"] != "POST" || attrs["http.response.status_code"] != "200" || attrs["url.path"] != "/batch/" {
		t.Errorf("span %q kind %v attributes %v", s.Name(), s.SpanKind(), attrs)
	}
}

// HTTP capture records the sender's address in $ip as PostHog does (the
// first X-Forwarded-For address, else the peer), keeps an $ip the sender
// set, and records none when IPs are anonymized.
func TestIPProperty(t *testing.T) {
	body := []byte(`{"api_key":"phc_testtoken","batch":[
	 {"event":"a","distinct_id":"u1"},
	 {"event":"b","distinct_id":"u1","properties":{"$ip":"198.51.100.7"}}]}`)
	for _, tc := range []struct {
		name      string
		header    map[string]string
		anonymize bool
		want      string
	}{
		{"peer", nil, false, "192.0.2.1"}, // httptest's RemoteAddr
		{"forwarded", map[string]string{"X-Forwarded-For": " 203.0.113.9 , 10.0.0.1"}, false, "203.0.113.9"},
		{"forwarded junk", map[string]string{"X-Forwarded-For": "unknown"}, false, "192.0.2.1"},
		{"anonymized", map[string]string{"X-Forwarded-For": "203.0.113.9"}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPublisher{}
			cfg := testConfig(pub)
			cfg.AnonymizeIPs = tc.anonymize
			rec := do(t, capture.NewHandler(cfg), req{target: "/batch/", body: body, header: tc.header})
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			evs := pub.all()
			if len(evs) != 2 {
				t.Fatalf("%d events", len(evs))
			}
			got, has := evs[0].Properties.Fields["$ip"]
			if tc.want == "" && has || tc.want != "" && got.GetStringValue() != tc.want {
				t.Errorf("$ip = %v, want %q", got, tc.want)
			}
			if ip := evs[1].Properties.Fields["$ip"].GetStringValue(); ip != "198.51.100.7" {
				t.Errorf("the sender's $ip became %q", ip)
			}
		})
	}
}

// A timestamp in year 0, which Go parses but protobuf cannot hold, is
// replaced like any out-of-range time (found by FuzzEventTime).
func TestYearZeroTimestamp(t *testing.T) {
	pub := &memPublisher{}
	rec := do(t, capture.NewHandler(testConfig(pub)), req{target: "/batch/",
		body: []byte(`{"api_key":"phc_testtoken","batch":[{"event":"e","distinct_id":"d","timestamp":"0000-01-10"}]}`)})
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if evs := pub.all(); len(evs) != 1 || evs[0].Timestamp.CheckValid() != nil {
		t.Fatalf("stored %v", evs)
	}
}

// lz64 compresses text as older posthog-js does (lz-string's
// compressToBase64), with an implementation independent of ours.
func lz64(t *testing.T, text string) string {
	t.Helper()
	enc, err := lzs.CompressToBase64(text)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}
