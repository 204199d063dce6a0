package templates_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/eventlimits"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/geoip"
	"github.com/hogwire/hogwire/geoip/geoiptest"
)

// goldenGeoIP opens the test city database (package geoiptest) that
// geoipLookup reads in golden cases: it knows geoiptest.LondonIP
// (81.2.69.142) and geoiptest.StockholmIP.
func goldenGeoIP(t *testing.T) *geoip.DB {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	if err := geoiptest.Write(path); err != nil {
		t.Fatal(err)
	}
	db, err := geoip.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// runGoldenTransform runs a transformation's golden case on the sample
// event as the data plane does (executor.Transform) and compares the event
// it passes on.
func runGoldenTransform(t *testing.T, d *executor.Destination, project *hogwirev1.Project, c goldenCase) {
	ev := eventFor(t, c)
	ev.Person = nil // a transformation runs on the event as captured
	before := proto.CloneOf(ev)
	out := d.Transform(context.Background(), ev, executor.NewProject(project, executor.Source{URL: "https://hogwire.example.com"}),
		eventlimits.Limits{}, executor.Options{GeoIP: goldenGeoIP(t)})
	var logs []string
	for _, l := range out.Logs {
		logs = append(logs, l.Message)
	}
	want := c.Expect.Status
	if want == "" {
		want = "succeeded"
	}
	if out.Status.Metric() != want {
		t.Fatalf("status %s (%s), want %s; logs:\n%s", out.Status.Metric(), out.Error, want, strings.Join(logs, "\n"))
	}
	if c.Expect.Error != "" && !strings.Contains(out.Error, c.Expect.Error) {
		t.Errorf("error %q does not contain %q", out.Error, c.Expect.Error)
	}
	for _, w := range c.Expect.Logs {
		if !slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, w) }) {
			t.Errorf("no log line contains %q; logs:\n%s", w, strings.Join(logs, "\n"))
		}
	}
	if out.Dropped != c.Expect.Dropped {
		t.Fatalf("dropped = %v, want %v", out.Dropped, c.Expect.Dropped)
	}
	if want != "succeeded" && !proto.Equal(ev, before) {
		t.Errorf("a %s transformation changed the event", want)
	}
	if c.Expect.Event == nil {
		return
	}
	got := map[string]any{"event": ev.Event, "distinct_id": ev.DistinctId, "properties": ev.GetProperties().AsMap()}
	if ev.Set != nil {
		got["set"] = ev.Set.AsMap()
	}
	if ev.SetOnce != nil {
		got["set_once"] = ev.SetOnce.AsMap()
	}
	for k, w := range c.Expect.Event {
		if g := normalize(got[k]); !reflect.DeepEqual(g, normalize(w)) {
			gb, _ := json.Marshal(g)
			wb, _ := json.Marshal(w)
			t.Errorf("event %s:\n got %s\nwant %s", k, gb, wb)
		}
	}
}
