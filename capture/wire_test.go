package capture_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/capture"
	"github.com/hogwire/hogwire/eventlimits"
)

// encPublisher takes the handler's encodings, as the data plane does,
// and stores what they decode to.
type encPublisher struct {
	*memPublisher
	t testing.TB
}

func (p encPublisher) PublishEncoded(ctx context.Context, project string, uuids []string, events [][]byte) error {
	evs := make([]*hogwirev1.Event, len(events))
	for i, b := range events {
		evs[i] = &hogwirev1.Event{}
		if err := proto.Unmarshal(b, evs[i]); err != nil {
			p.t.Errorf("event %d does not decode: %v", i, err)
			return err
		}
		if uuids[i] != evs[i].Uuid {
			p.t.Errorf("event %d: uuid %q handed with an event of uuid %q", i, uuids[i], evs[i].Uuid)
		}
		if n := proto.Size(evs[i]); n != len(b) {
			p.t.Errorf("event %d: %d bytes encoded; proto.Marshal makes %d", i, len(b), n)
		}
	}
	return p.memPublisher.Publish(ctx, project, evs)
}

// twoHandlers are the same handler twice: one hands its Publisher
// Events, the other encodings.
type twoHandlers struct {
	plain, enc       http.Handler
	plainPub, encPub *memPublisher
}

func newTwoHandlers(t testing.TB, limits eventlimits.Limits) *twoHandlers {
	th := &twoHandlers{plainPub: &memPublisher{}, encPub: &memPublisher{}}
	cfg := testConfig(th.plainPub)
	cfg.Limits = limits
	th.plain = capture.NewHandler(cfg)
	cfg.Publisher = encPublisher{th.encPub, t}
	th.enc = capture.NewHandler(cfg)
	return th
}

// compare sends r to both handlers and fails unless they answer alike
// and store events that are equal, bar the uuids generated for events
// that came without one. Unless exact, only the answers' statuses are
// compared: of several values breaking a limit, eventlimits reports the
// first its walk of a map meets, which is any of them.
func (th *twoHandlers) compare(t testing.TB, r req, exact bool) {
	t.Helper()
	defer th.plainPub.reset()
	defer th.encPub.reset()
	a, b := do(t, th.plain, r), do(t, th.enc, r)
	if a.Code != b.Code || (exact && a.Body.String() != b.Body.String()) {
		t.Fatalf("answers differ:\nEvents:    %d %s\nencodings: %d %s", a.Code, a.Body, b.Code, b.Body)
	}
	want, got := th.plainPub.all(), th.encPub.all()
	if len(want) != len(got) {
		t.Fatalf("%d events stored as encodings; %d as Events", len(got), len(want))
	}
	for i := range want {
		w, g := proto.Clone(want[i]).(*hogwirev1.Event), proto.Clone(got[i]).(*hogwirev1.Event)
		if w.Uuid != g.Uuid {
			for _, id := range []string{w.Uuid, g.Uuid} {
				if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
					t.Fatalf("event %d: uuids %q and %q differ, and %q is not a generated one", i, w.Uuid, g.Uuid, id)
				}
			}
			w.Uuid, g.Uuid = "", ""
		}
		if !proto.Equal(w, g) {
			t.Fatalf("event %d differs:\nEvent:    %v\nencoding: %v", i, prototext.Format(w), prototext.Format(g))
		}
	}
}

// wireCases are payloads for the encoder, good and bad: every shape of
// value, the fields convertEvent derives, and the field errors.
var wireCases = []string{
	jsArray,
	serverBatch,
	string(batch100()),
	// posthog-js's own shapes: $set and $set_once in properties and at the
	// top level, $groups, the elements chain, sent_at and offsets.
	`{"api_key":"phc_testtoken","sent_at":"2026-11-26T12:00:05.000Z","batch":[
	 {"event":"$autocapture","uuid":"0190e2f8-7a3b-7c3d-9e4f-0123456789ab","timestamp":"2026-11-26T12:00:04.500Z","properties":{"distinct_id":"u1","$elements_chain":"button.buy:text=\"Buy\"nth-child=\"1\"","$event_type":"click","$set":{"a":1,"shared":"props"},"$set_once":{"first":"x"},"$groups":{"company":"acme","n":42,"gone":null}},"$set":{"shared":"top","b":[1,2]}},
	 {"event":"$identify","distinct_id":"u2","offset":1500,"$set_once":{"o":{"deep":[{"x":null}]}},"properties":{"$anon_distinct_id":"anon"}},
	 {"event":"e","distinct_id":"u3","timestamp":1795163400123,"elements_chain":"a:href=\"/x\""},
	 {"event":"e","distinct_id":"u4","timestamp":"1795163400","properties":{"$ignore_sent_at":true}}
	]}`,
	// Numbers: integers, floats, exponents, negative zero, the edges of
	// float64.
	`[{"token":"phc_testtoken","event":"n","distinct_id":1e21,"properties":{"i":0,"neg":-0,"f":0.1,"e":1e-7,"big":1.7976931348623157e308,"tiny":5e-324,"minus":-12345678901234567890,"arr":[0,-1,1.5e3]}}]`,
	// Nesting, empties and long values, whose lengths need several bytes.
	`[{"token":"phc_testtoken","event":"nest","distinct_id":{"b":[1,{"c":true}],"a":null},"properties":{"a":[[[[{"b":[[[1]]]}]]]],"o":{},"l":[],"s":"","t":true,"f":false,"z":null,"long":"` + strings.Repeat("x", 200) + `","longer":"` + strings.Repeat("y", 20000) + `","wide":{` + wideObject(300) + `}}}]`,
	// Unicode, escapes, invalid UTF-8 and lone surrogates, duplicate keys.
	`[{"token":"phc_testtoken","event":"ünï\u00e7ødé 🎉","distinct_id":"\ud83d\ude00","properties":{"k\u0000ey":"v\n\"\\","é":"\ud800","dup":1,"dup":2,"emoji🎉":["日本語","\u2028"]}}]`,
	"[{\"token\":\"phc_testtoken\",\"event\":\"bad\xffutf8\",\"distinct_id\":\"d\",\"properties\":{\"k\xfe\":\"v\xc3\"}}]",
	// Field errors: each refuses the request.
	`[{"token":"phc_testtoken","distinct_id":"d"}]`,
	`[{"token":"phc_testtoken","event":7,"distinct_id":"d"}]`,
	`[{"token":"phc_testtoken","event":"e"}]`,
	`[{"token":"phc_testtoken","event":"e","distinct_id":"d","uuid":"nope"}]`,
	`[{"token":"phc_testtoken","event":"e","distinct_id":"d","uuid":5}]`,
	`[{"token":"phc_testtoken","event":"e","distinct_id":"d","properties":[1]}]`,
	`[{"token":"phc_testtoken","event":"e","distinct_id":"d","properties":{"$groups":{"a":[1]}}}]`,
	`[{"token":"phc_testtoken","event":"e","distinct_id":"d","properties":{"$set":"not an object"},"$set_once":5}]`,
	`[1,"x",null]`,
	// UUIDs in every form uuid.Parse takes.
	`[{"token":"phc_testtoken","event":"e","distinct_id":"d","uuid":"0190E2F8-7A3B-7C3D-9E4F-0123456789AB"},{"token":"phc_testtoken","event":"e","distinct_id":"d","uuid":"{0190e2f8-7a3b-7c3d-9e4f-0123456789ab}"},{"token":"phc_testtoken","event":"e","distinct_id":"d","uuid":"urn:uuid:0190e2f8-7a3b-7c3d-9e4f-0123456789ab"},{"token":"phc_testtoken","event":"e","distinct_id":"d","uuid":"0190e2f87a3b7c3d9e4f0123456789ab"},{"token":"phc_testtoken","event":"e","distinct_id":"d","uuid":""}]`,
	`{"token":"phc_testtoken","event":"single","distinct_id":"d","timestamp":"2999-01-01T00:00:00Z"}`,
}

func wideObject(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":{"v":%d,"s":"%d"}`, i, i, i)
	}
	return b.String()
}

// TestEncodingsMatchEvents shows that the encodings the handler hands an
// EncodedPublisher decode to the Events it hands a Publisher, at
// proto.Marshal's size, for payloads of every kind, and that bad ones
// are refused alike.
func TestEncodingsMatchEvents(t *testing.T) {
	th := newTwoHandlers(t, eventlimits.Limits{})
	for i, body := range wireCases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			th.compare(t, req{target: "/batch/", body: []byte(body)}, true)
			th.compare(t, req{target: "/e/?_=1795163400000&compression=gzip-js", body: gz(t, []byte(body))}, true)
			th.compare(t, req{target: "/e/?compression=base64", contentType: "application/x-www-form-urlencoded",
				body: []byte("data=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(body))))}, true)
		})
	}
}

// TestEncodingsMatchEventsAtLimits is TestEncodingsMatchEvents with limits
// small enough that the payloads break them.
func TestEncodingsMatchEventsAtLimits(t *testing.T) {
	th := newTwoHandlers(t, eventlimits.Limits{MaxEventBytes: 2 << 10, MaxBatchEvents: 20, MaxProperties: 30, MaxStringBytes: 40})
	for i, body := range wireCases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			th.compare(t, req{target: "/batch/", body: []byte(body)}, false)
		})
	}
}

// FuzzEncodings is TestEncodingsMatchEvents on arbitrary bodies.
func FuzzEncodings(f *testing.F) {
	for _, body := range wireCases {
		f.Add([]byte(body), "")
	}
	f.Add([]byte(`{"api_key":"phc_testtoken","event":"e","distinct_id":{"a":[1,2]},"timestamp":1e300,"offset":-1e300}`), "")
	f.Add([]byte(`[{"token":"phc_testtoken","event":"e","distinct_id":"d","properties":{"$groups":{"a":null},"$set":{}}}]`), "beacon=1")
	th := newTwoHandlers(f, eventlimits.Limits{})
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		q, _ := url.ParseQuery(query)
		th.compare(t, req{target: "/batch/?" + q.Encode(), body: body}, false)
	})
}
