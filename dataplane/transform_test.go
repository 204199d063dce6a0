package dataplane_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/devstack/devstacktest"
	"github.com/hogwire/hogwire/geoip/geoiptest"
)

// transformation creates an enabled transformation, from a template when
// template is set, else from d.Hog.
func (st *stack) transformation(t *testing.T, project, id, template string, d *hogwirev1.Destination) *hogwirev1.Destination {
	t.Helper()
	d.Enabled, d.Kind = true, hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION
	if d.DisplayName == "" {
		d.DisplayName = id
	}
	req := &hogwirev1.CreateDestinationRequest{Parent: "projects/" + project, DestinationId: id, Destination: d}
	if template != "" {
		req.FromTemplate = "templates/" + template
	}
	resp, err := hogwirev1.NewDestinationServiceClient(st.admin).CreateDestination(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Destination
}

func jsonInput(t *testing.T, v any) *hogwirev1.InputValue {
	t.Helper()
	pv, err := structpb.NewValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return &hogwirev1.InputValue{Value: pv}
}

// One project with six transformations in front of a webhook whose sink
// records what it gets: GeoIP from the test database, a bot filter that
// drops, a redaction, two that run in their order (not their creation
// order), one that throws and one past its step limit. The sink sees the
// transformed event, with the person built from it, and never the bot's.
func TestTransformations(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "city.mmdb")
	if err := geoiptest.Write(dbPath); err != nil {
		t.Fatal(err)
	}
	s, cc := devstacktest.Start(t, func(c *devstack.Config) { c.GeoIPDB, c.Persons = dbPath, true })
	st := &stack{Stack: s, admin: cc}
	p := st.project(t, "shop")
	sk := newSink(t, nil)
	hook := st.fromTemplate(t, "shop", "webhook", sk.URL, map[string]any{
		"event": "{event.event}", "props": "{event.properties}", "email": "{person.properties.email}",
	}, &hogwirev1.Destination{DisplayName: "sink"})

	// Created in an order unlike their order, so that only order decides.
	appendB := st.transformation(t, "shop", "append-b", "", &hogwirev1.Destination{Order: 20,
		Hog: "let e := event\ne.properties.trail := concat(e.properties.trail ?? '', 'b')\nreturn e"})
	appendA := st.transformation(t, "shop", "append-a", "", &hogwirev1.Destination{Order: 10,
		Hog: "let e := event\ne.properties.trail := concat(e.properties.trail ?? '', 'a')\nreturn e"})
	throws := st.transformation(t, "shop", "throws", "", &hogwirev1.Destination{Order: 30,
		Hog: "let e := event\ne.properties.trail := 'lost'\nthrow Error('boom')"})
	loops := st.transformation(t, "shop", "loops", "", &hogwirev1.Destination{Order: 40,
		Hog:    "let e := event\nlet i := 0\nwhile (true) { i := i + 1 }\nreturn e",
		Limits: &hogwirev1.ExecutionLimits{MaxSteps: 1000}})
	geo := st.transformation(t, "shop", "geo", "geoip", &hogwirev1.Destination{Order: 1})
	bots := st.transformation(t, "shop", "bots", "bot-filter", &hogwirev1.Destination{Order: 2})
	redact := st.transformation(t, "shop", "redact", "redact-properties", &hogwirev1.Destination{Order: 3,
		Inputs: map[string]*hogwirev1.InputValue{"remove": jsonInput(t, []any{"$ip", "secret"})}})
	hash := st.transformation(t, "shop", "hash", "hash-email", &hogwirev1.Destination{Order: 4})
	st.waitConfig(t, 9)

	human, _ := structpb.NewStruct(map[string]any{"$ip": geoiptest.LondonIP, "secret": "s3cr3t", "keep": "yes",
		"$raw_user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0"})
	set, _ := structpb.NewStruct(map[string]any{"email": "Ada@Example.com"})
	bot, _ := structpb.NewStruct(map[string]any{"$raw_user_agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
	st.publish(t, p.CaptureToken,
		&hogwirev1.Event{Event: "$pageview", DistinctId: "bot-1", Properties: bot},
		&hogwirev1.Event{Event: "$pageview", DistinctId: "ada", Properties: human, Set: set})

	waitStat(t, st, hook.Name, "succeeded", 1)
	waitStat(t, st, bots.Name, "dropped", 1)
	waitStat(t, st, throws.Name, "failed", 1)
	waitStat(t, st, loops.Name, "failed", 1)
	for _, d := range []*hogwirev1.Destination{geo, redact, hash, appendA, appendB} {
		waitStat(t, st, d.Name, "succeeded", 1)
	}
	if n := st.Node.Stat(geo.Name, "succeeded"); n != 2 {
		t.Errorf("geo ran %v times, want 2 (it runs before the bot filter)", n)
	}
	if n := st.Node.Stat(redact.Name, "succeeded"); n != 1 {
		t.Errorf("redact ran %v times, want 1 (the bot's event was dropped before it)", n)
	}
	// Nothing more arrives: the bot's event was dropped.
	time.Sleep(200 * time.Millisecond)
	sk.mu.Lock()
	bodies := sk.bodies
	sk.mu.Unlock()
	if len(bodies) != 1 {
		t.Fatalf("the sink got %d requests, want 1 (the bot's event dropped): %v", len(bodies), bodies)
	}
	props, _ := bodies[0]["props"].(map[string]any)
	for k, want := range map[string]any{
		"trail": "ab", "keep": "yes", "$geoip_city_name": "London", "$geoip_country_code": "GB",
	} {
		if props[k] != want {
			t.Errorf("properties[%q] = %v, want %v (all: %v)", k, props[k], want, props)
		}
	}
	for _, k := range []string{"$ip", "secret"} {
		if _, ok := props[k]; ok {
			t.Errorf("properties[%q] reached the destination: %v", k, props)
		}
	}
	// The person store applied the transformed $set: the hashed address.
	if e := bodies[0]["email"]; e != "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72" {
		t.Errorf("person.properties.email = %v, want the SHA-256 of ada@example.com", e)
	}

	// A message whose every event is dropped is acknowledged like any
	// other, and nothing reaches the destination.
	st.publish(t, p.CaptureToken, &hogwirev1.Event{Event: "$pageview", DistinctId: "bot-2", Properties: bot})
	waitStat(t, st, bots.Name, "dropped", 2)
	time.Sleep(200 * time.Millisecond)
	if n := st.Node.Stat(hook.Name, "succeeded"); n != 1 {
		t.Errorf("the destination ran %v times, want 1", n)
	}

	// The failures are in the transformations' logs.
	for _, c := range []struct{ name, want string }{{throws.Name, "boom"}, {loops.Name, "steps"}} {
		waitLog(t, st, c.name, c.want)
	}
}

// With no --geoip-db, the node reads the country database built in: the
// geoip template adds the country and continent of a public address to
// the event a destination gets, and no city field (the database has
// none); a private address gets nothing.
func TestGeoIPEmbeddedDatabase(t *testing.T) {
	s, cc := devstacktest.Start(t, nil)
	st := &stack{Stack: s, admin: cc}
	p := st.project(t, "shop")
	sk := newSink(t, nil)
	hook := st.fromTemplate(t, "shop", "webhook", sk.URL, map[string]any{
		"who": "{event.distinct_id}", "props": "{event.properties}",
	}, &hogwirev1.Destination{DisplayName: "sink"})
	st.transformation(t, "shop", "geo", "geoip", &hogwirev1.Destination{Order: 1})
	st.waitConfig(t, 2)

	public, _ := structpb.NewStruct(map[string]any{"$ip": "8.8.8.8"})
	private, _ := structpb.NewStruct(map[string]any{"$ip": "192.168.1.10"})
	st.publish(t, p.CaptureToken,
		&hogwirev1.Event{Event: "$pageview", DistinctId: "public", Properties: public},
		&hogwirev1.Event{Event: "$pageview", DistinctId: "private", Properties: private})
	waitStat(t, st, hook.Name, "succeeded", 2)

	sk.mu.Lock()
	bodies := sk.bodies
	sk.mu.Unlock()
	byWho := map[string]map[string]any{}
	for _, b := range bodies {
		props, _ := b["props"].(map[string]any)
		byWho[b["who"].(string)] = props
	}
	pub := byWho["public"]
	for k, want := range map[string]any{
		"$geoip_country_code": "US", "$geoip_country_name": "United States",
		"$geoip_continent_code": "NA", "$geoip_continent_name": "North America",
	} {
		if pub[k] != want {
			t.Errorf("properties[%q] = %v, want %v (all: %v)", k, pub[k], want, pub)
		}
	}
	if set, _ := pub["$set"].(map[string]any); set["$geoip_country_code"] != "US" {
		t.Errorf("$set = %v, want $geoip_country_code US", pub["$set"])
	}
	for k := range pub {
		if strings.HasPrefix(k, "$geoip_city") || strings.HasPrefix(k, "$geoip_latitude") || strings.HasPrefix(k, "$geoip_postal") {
			t.Errorf("properties has %s from a country database: %v", k, pub)
		}
	}
	priv, ok := byWho["private"]
	if !ok {
		t.Fatalf("the sink got no event of the private address: %v", bodies)
	}
	for k := range priv {
		if strings.Contains(k, "geoip") {
			t.Errorf("a private address got %s: %v", k, priv)
		}
	}
}

// waitLog waits for a log line of dest containing want.
func waitLog(t *testing.T, st *stack, dest, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	logs := hogwirev1.NewLogServiceClient(st.admin)
	for {
		resp, err := logs.ListLogEntries(context.Background(), &hogwirev1.ListLogEntriesRequest{Parent: dest})
		if err == nil {
			for _, e := range resp.Entries {
				if strings.Contains(e.Message, want) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line of %s contains %q (err %v)", dest, want, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
