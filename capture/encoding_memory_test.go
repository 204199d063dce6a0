package capture_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/capture"
	"github.com/hogwire/hogwire/eventlimits"
)

// TestEncodingsUnderMemoryPressure sends the same requests to a handler
// with an EncodedPublisher and one with a Publisher at every memory
// budget from too little to enough: they answer alike. The encodings
// take memory the Events do not until they are stored, and may run out
// of it before every event is checked; an event that breaks a limit is
// still named, rather than memory blamed.
func TestEncodingsUnderMemoryPressure(t *testing.T) {
	// Numbers take 2 bytes of text and 11 encoded: the encodings outgrow
	// the buffer the text's size starts them in.
	var nums strings.Builder
	for i := range 4000 {
		if i > 0 {
			nums.WriteString(",")
		}
		nums.WriteString("1")
	}
	event := func(i int, s string) string {
		return fmt.Sprintf(`{"event":"e","distinct_id":"d%d","properties":{"a":[%s],"s":%q}}`, i, nums.String(), s)
	}
	var good, bad []string
	for i := range 5 {
		good = append(good, event(i, "short"))
		bad = append(bad, event(i, "short"))
	}
	bad[4] = event(4, strings.Repeat("x", 200))
	bodies := []string{
		`{"api_key":"phc_testtoken","batch":[` + strings.Join(good, ",") + `]}`,
		`{"api_key":"phc_testtoken","batch":[` + strings.Join(bad, ",") + `]}`,
	}
	// The least budget that stores the good request, within 4 KiB.
	stores := func(budget int) bool {
		th := newTwoHandlersMemory(t, eventlimits.Limits{MaxStringBytes: 100}, int64(budget))
		return do(t, th.plain, req{target: "/batch/", body: []byte(bodies[0])}).Code == 200
	}
	lo, hi := 64<<10, 64<<20
	for hi-lo > 4<<10 {
		if mid := (lo + hi) / 2; stores(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	// Around it, some budgets are too small to parse the requests, some
	// too small for their encodings, and the rest are enough: the bad
	// request names the long string whenever it is parsed.
	var memory, named, stored bool
	for budget := hi - 128<<10; budget <= hi+512<<10; budget += 8 << 10 {
		th := newTwoHandlersMemory(t, eventlimits.Limits{MaxStringBytes: 100}, int64(budget))
		for _, body := range bodies {
			r := req{target: "/batch/", body: []byte(body)}
			a := do(t, th.enc, r)
			th.encPub.reset()
			memory = memory || strings.Contains(a.Body.String(), "memory")
			named = named || strings.Contains(a.Body.String(), `"field":"properties.s","rule":"max_string_bytes"`)
			stored = stored || a.Code == 200
			th.compare(t, r, true)
		}
	}
	if !memory || !named || !stored {
		t.Errorf("the budgets do not span the answers: memory refused %v, string named %v, stored %v", memory, named, stored)
	}
}

// newTwoHandlersMemory is newTwoHandlers with a memory budget.
func newTwoHandlersMemory(t testing.TB, limits eventlimits.Limits, budget int64) *twoHandlers {
	th := &twoHandlers{plainPub: &memPublisher{}, encPub: &memPublisher{}}
	cfg := testConfig(th.plainPub)
	cfg.Limits, cfg.MemoryBytes = limits, budget
	th.plain = capture.NewHandler(cfg)
	cfg.Publisher = encPublisher{th.encPub, t}
	th.enc = capture.NewHandler(cfg)
	return th
}

// TestEncodingsNameViolationsAlike is TestEncodingsMatchEventsAtLimits
// with the answers compared whole: the encoder only tells that an event
// breaks a limit, and eventlimits names which, as for a Publisher.
func TestEncodingsNameViolationsAlike(t *testing.T) {
	for _, limits := range []eventlimits.Limits{
		{MaxEventBytes: 2 << 10, MaxBatchEvents: 20, MaxProperties: 30, MaxStringBytes: 40},
		{MaxEventBytes: 300},
		{MaxProperties: 5},
		{MaxStringBytes: 10},
	} {
		th := newTwoHandlers(t, limits)
		for i, body := range wireCases {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				th.compare(t, req{target: "/batch/", body: []byte(body)}, true)
			})
		}
	}
}
