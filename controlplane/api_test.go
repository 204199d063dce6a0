package controlplane_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/embedetcd/etcdtest"
)

func strValue(s string) *structpb.Value { return structpb.NewStringValue(s) }

func badRequest(t *testing.T, err error) map[string]string {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("got %v, want INVALID_ARGUMENT", err)
	}
	out := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				out[v.Field] = v.Description
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("INVALID_ARGUMENT without a google.rpc.BadRequest: %v", err)
	}
	return out
}

func TestProjectLifecycle(t *testing.T) {
	e := etcdtest.Start(t)
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{})
	ctx := ctxT(t)

	p := mustProject(t, r, "shop")
	if p.Name != "projects/shop" {
		t.Errorf("name = %q", p.Name)
	}
	if !regexp.MustCompile(`^phc_[A-Za-z0-9_-]{43}$`).MatchString(p.CaptureToken) {
		t.Errorf("capture token %q is not phc_ + 43 URL-safe characters", p.CaptureToken)
	}
	if id, err := r.srv.ProjectByToken(ctx, p.CaptureToken); err != nil || id != "shop" {
		t.Errorf("ProjectByToken = %q, %v", id, err)
	}
	if _, err := r.projects().CreateProject(ctx, &hogwirev1.CreateProjectRequest{ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "again"}}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("duplicate create: %v, want ALREADY_EXISTS", err)
	}
	fields := badRequest(t, func() error {
		_, err := r.projects().CreateProject(ctx, &hogwirev1.CreateProjectRequest{ProjectId: "Bad_Id", Project: &hogwirev1.Project{TimeZone: "Mars/Olympus"}})
		return err
	}())
	for _, f := range []string{"project_id", "project.display_name", "project.time_zone"} {
		if fields[f] == "" {
			t.Errorf("no violation for %s in %v", f, fields)
		}
	}

	up, err := r.projects().UpdateProject(ctx, &hogwirev1.UpdateProjectRequest{
		Project:    &hogwirev1.Project{Name: p.Name, DisplayName: "Shop", TimeZone: "Europe/Paris", Etag: p.Etag},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name", "time_zone"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.Project.DisplayName != "Shop" || up.Project.TimeZone != "Europe/Paris" || up.Project.CaptureToken != p.CaptureToken {
		t.Errorf("after update: %v", up.Project)
	}
	// The etag of the first read is stale now.
	_, err = r.projects().UpdateProject(ctx, &hogwirev1.UpdateProjectRequest{
		Project: &hogwirev1.Project{Name: p.Name, DisplayName: "Lost", Etag: p.Etag},
	})
	if status.Code(err) != codes.Aborted {
		t.Errorf("stale etag: %v, want ABORTED", err)
	}

	rot, err := r.projects().RotateCaptureToken(ctx, &hogwirev1.RotateCaptureTokenRequest{Name: p.Name})
	if err != nil {
		t.Fatal(err)
	}
	if rot.Project.CaptureToken == p.CaptureToken {
		t.Error("rotation kept the token")
	}
	if _, err := r.srv.ProjectByToken(ctx, p.CaptureToken); status.Code(err) != codes.Unauthenticated {
		t.Errorf("old token after rotation: %v, want UNAUTHENTICATED", err)
	}
	if id, _ := r.srv.ProjectByToken(ctx, rot.Project.CaptureToken); id != "shop" {
		t.Errorf("new token resolves to %q", id)
	}

	for i := range 3 {
		mustProject(t, r, "p"+string(rune('a'+i)))
	}
	var names []string
	tok := ""
	for {
		resp, err := r.projects().ListProjects(ctx, &hogwirev1.ListProjectsRequest{PageSize: 2, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.Projects {
			names = append(names, p.Name)
		}
		if tok = resp.NextPageToken; tok == "" {
			break
		}
	}
	if got := strings.Join(names, ","); got != "projects/pa,projects/pb,projects/pc,projects/shop" {
		t.Errorf("paged list = %s", got)
	}

	if _, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: webhookDestination("hook")}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.projects().DeleteProject(ctx, &hogwirev1.DeleteProjectRequest{Name: p.Name}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("deleting a project with destinations: %v, want FAILED_PRECONDITION", err)
	}
	if _, err := r.projects().DeleteProject(ctx, &hogwirev1.DeleteProjectRequest{Name: p.Name, Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.projects().GetProject(ctx, &hogwirev1.GetProjectRequest{Name: p.Name}); status.Code(err) != codes.NotFound {
		t.Errorf("get after delete: %v", err)
	}
	left, _ := r.etcd.Get(ctx, "/hogwire/config/destinations/shop/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if left.Count != 0 {
		t.Errorf("%d destinations left after forced project delete", left.Count)
	}
}

func TestDestinationValidationNamesFieldLineAndColumn(t *testing.T) {
	e := etcdtest.Start(t)
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{})
	ctx := ctxT(t)
	p := mustProject(t, r, "shop")

	d := webhookDestination("broken")
	d.Hog = "let x := 1\nlet y := (x +\n"
	d.Inputs["body"] = &hogwirev1.InputValue{Value: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
		"name": strValue("Hi {event.properties.name"),
	}})}
	d.Inputs["nope"] = &hogwirev1.InputValue{Value: strValue("x")}
	d.Filters = &hogwirev1.Filters{Expression: "event = "}
	delete(d.Inputs, "url")
	_, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: d})
	fields := badRequest(t, err)
	if !regexp.MustCompile(`^line \d+, column \d+: .+`).MatchString(fields["destination.hog"]) {
		t.Errorf("hog violation %q does not give line and column", fields["destination.hog"])
	}
	for _, f := range []string{"destination.inputs.body", "destination.inputs.nope", "destination.inputs.url", "destination.filters.expression"} {
		if fields[f] == "" {
			t.Errorf("no violation for %s in %v", f, fields)
		}
	}

	// Choice, number and email inputs are checked against the schema.
	d = webhookDestination("typed")
	d.InputsSchema = append(d.InputsSchema,
		&hogwirev1.InputSchema{Key: "method", Type: hogwirev1.InputType_INPUT_TYPE_CHOICE, Choices: []*hogwirev1.InputChoice{{Value: "POST"}, {Value: "PUT"}}},
		&hogwirev1.InputSchema{Key: "n", Type: hogwirev1.InputType_INPUT_TYPE_NUMBER},
		&hogwirev1.InputSchema{Key: "to", Type: hogwirev1.InputType_INPUT_TYPE_EMAIL},
	)
	d.Inputs["method"] = &hogwirev1.InputValue{Value: strValue("DELETE")}
	d.Inputs["n"] = &hogwirev1.InputValue{Value: strValue("7")}
	d.Inputs["to"] = &hogwirev1.InputValue{Value: strValue("not an address")}
	_, err = r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: d})
	fields = badRequest(t, err)
	for _, f := range []string{"destination.inputs.method", "destination.inputs.n", "destination.inputs.to"} {
		if fields[f] == "" {
			t.Errorf("no violation for %s in %v", f, fields)
		}
	}

	// The durable retry schedule is bounded, and its longest wait is not
	// shorter than its first.
	d = webhookDestination("retries")
	d.Limits = &hogwirev1.ExecutionLimits{RetryBase: durationpb.New(time.Minute), RetryMax: durationpb.New(time.Second),
		RetryGiveUp: durationpb.New(30 * 24 * time.Hour)}
	_, err = r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: d})
	fields = badRequest(t, err)
	for _, f := range []string{"destination.limits.retry_max", "destination.limits.retry_give_up"} {
		if fields[f] == "" {
			t.Errorf("no violation for %s in %v", f, fields)
		}
	}
	d.Limits = &hogwirev1.ExecutionLimits{RetryBase: durationpb.New(time.Second), RetryMax: durationpb.New(time.Minute), RetryGiveUp: durationpb.New(time.Hour)}
	if _, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: d}); err != nil {
		t.Errorf("a valid retry schedule: %v", err)
	}

	// Rate and backlog limits are bounded.
	d = webhookDestination("rates")
	d.Limits = &hogwirev1.ExecutionLimits{MaxRate: -1, MaxRequestsInFlight: -2, MaxBacklog: -3, MaxBacklogBytes: -4,
		MaxBacklogAge: durationpb.New(30 * 24 * time.Hour)}
	_, err = r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: d})
	fields = badRequest(t, err)
	for _, f := range []string{"destination.limits.max_rate", "destination.limits.max_requests_in_flight", "destination.limits.max_backlog",
		"destination.limits.max_backlog_bytes", "destination.limits.max_backlog_age"} {
		if fields[f] == "" {
			t.Errorf("no violation for %s in %v", f, fields)
		}
	}
	d.Limits = &hogwirev1.ExecutionLimits{MaxRate: 0.5, MaxRequestsInFlight: 8, MaxBacklog: 1000, MaxBacklogBytes: 1 << 20,
		MaxBacklogAge: durationpb.New(time.Hour)}
	if _, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: d}); err != nil {
		t.Errorf("valid rate and backlog limits: %v", err)
	}
}

func TestDestinationCompilesAndRedactsSecrets(t *testing.T) {
	e := etcdtest.Start(t)
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{})
	ctx := ctxT(t)
	p := mustProject(t, r, "shop")

	d := webhookDestination("hook")
	d.Inputs["api_key"] = &hogwirev1.InputValue{Value: strValue("sk_live_SUPERSECRET")}
	d.Inputs["body"] = &hogwirev1.InputValue{Value: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
		"greeting": strValue("Hi {event.properties.name}"),
		"n":        structpb.NewNumberValue(3),
	}})}
	d.Filters = &hogwirev1.Filters{Expression: "event = 'signed_up'"}
	resp, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, DestinationId: "hook", Destination: d})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.Destination
	if got.Name != "projects/shop/destinations/hook" || got.Etag == "" || got.Health.GetState() != hogwirev1.HealthState_HEALTH_STATE_HEALTHY {
		t.Errorf("created %v", got)
	}
	if !strings.HasPrefix(string(got.Bytecode), `["_H",1,`) {
		t.Errorf("bytecode = %s", got.Bytecode)
	}
	if len(got.Filters.GetBytecode()) == 0 {
		t.Error("filters were not compiled")
	}
	greeting := got.Inputs["body"].GetBytecode().GetStructValue().GetFields()["greeting"]
	if l := greeting.GetListValue().GetValues(); len(l) < 2 || l[0].GetStringValue() != "_H" {
		t.Errorf("templated input compiled to %v, want bytecode", greeting)
	}
	if n := got.Inputs["body"].GetBytecode().GetStructValue().GetFields()["n"]; n.GetNumberValue() != 3 {
		t.Errorf("a number inside a json input changed: %v", n)
	}
	key := got.Inputs["api_key"]
	if !key.SecretSet || key.Value != nil || key.Bytecode != nil {
		t.Errorf("secret input returned as %v, want only secret_set", key)
	}

	// At rest the secret is encrypted.
	raw, err := r.etcd.Get(ctx, "/hogwire/config/destinations/shop/hook")
	if err != nil || len(raw.Kvs) != 1 {
		t.Fatal(err)
	}
	if strings.Contains(string(raw.Kvs[0].Value), "SUPERSECRET") {
		t.Error("the secret is stored in the clear")
	}

	// An update that leaves the secret out keeps it; the etag moves.
	d2 := &hogwirev1.Destination{Name: got.Name, Etag: got.Etag, Inputs: map[string]*hogwirev1.InputValue{
		"url": {Value: strValue("https://example.invalid/other")},
	}}
	up, err := r.destinations().UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{Destination: d2, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"inputs"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !up.Destination.Inputs["api_key"].GetSecretSet() {
		t.Error("updating inputs without the secret dropped it")
	}
	if up.Destination.Etag == got.Etag {
		t.Error("etag did not change on update")
	}
	// The stale etag is refused.
	_, err = r.destinations().UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{
		Destination: &hogwirev1.Destination{Name: got.Name, Etag: got.Etag, Description: "x"},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"description"}},
	})
	if status.Code(err) != codes.Aborted {
		t.Errorf("stale etag: %v, want ABORTED", err)
	}
	// Unknown mask paths are refused.
	_, err = r.destinations().UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{
		Destination: &hogwirev1.Destination{Name: got.Name}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"bytecode"}},
	})
	badRequest(t, err)

	// projects/- finds it by id alone.
	g, err := r.destinations().GetDestination(ctx, &hogwirev1.GetDestinationRequest{Name: "projects/-/destinations/hook"})
	if err != nil || g.Destination.Name != got.Name {
		t.Errorf("get by projects/-: %v %v", g, err)
	}
}

func TestCreateFromTemplate(t *testing.T) {
	e := etcdtest.Start(t)
	tpl := &hogwirev1.Template{
		Name: "templates/ping", DisplayName: "Ping", Description: "pings", Hog: `fetch(inputs.url, {})`,
		InputsSchema: []*hogwirev1.InputSchema{{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Required: true}},
		Filters:      &hogwirev1.Filters{Expression: "event = '$pageview'"},
		Limits:       &hogwirev1.ExecutionLimits{MaxRate: 10, MaxConcurrency: 4},
	}
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{templates: templates{"ping": tpl}})
	ctx := ctxT(t)
	p := mustProject(t, r, "shop")
	resp, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
		Parent: p.Name, FromTemplate: "templates/ping",
		Destination: &hogwirev1.Destination{Inputs: map[string]*hogwirev1.InputValue{"url": {Value: strValue("https://example.invalid")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := resp.Destination
	if d.Template != "templates/ping" || d.Hog != tpl.Hog || d.DisplayName != "Ping" || d.Filters.GetExpression() != tpl.Filters.Expression {
		t.Errorf("from template: %v", d)
	}
	if d.Limits.GetMaxRate() != 10 || d.Limits.GetMaxConcurrency() != 4 {
		t.Errorf("the template's limits are not the destination's defaults: %v", d.Limits)
	}
	// A limit the destination sets wins over the template's.
	resp, err = r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
		Parent: p.Name, FromTemplate: "templates/ping",
		Destination: &hogwirev1.Destination{Inputs: map[string]*hogwirev1.InputValue{"url": {Value: strValue("https://example.invalid")}},
			Limits: &hogwirev1.ExecutionLimits{MaxRate: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if l := resp.Destination.Limits; l.GetMaxRate() != 3 || l.GetMaxConcurrency() != 4 {
		t.Errorf("limits over the template's: %v", l)
	}
	_, err = r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, FromTemplate: "templates/nope", Destination: &hogwirev1.Destination{}})
	if fields := badRequest(t, err); fields["from_template"] == "" {
		t.Errorf("unknown template: %v", fields)
	}
	list, err := r.destinations().ListDestinations(ctx, &hogwirev1.ListDestinationsRequest{Parent: p.Name, Template: "templates/ping"})
	if err != nil || len(list.Destinations) != 2 {
		t.Errorf("list by template: %v %v", list, err)
	}
}

func TestListDestinationsFiltersAndPages(t *testing.T) {
	e := etcdtest.Start(t)
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{})
	ctx := ctxT(t)
	p := mustProject(t, r, "shop")
	q := mustProject(t, r, "other")
	for i := range 7 {
		d := webhookDestination("d")
		d.Enabled = i%2 == 0
		if _, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: d}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: q.Name, Destination: webhookDestination("x")}); err != nil {
		t.Fatal(err)
	}
	count := func(req *hogwirev1.ListDestinationsRequest) int {
		n, tok := 0, ""
		seen := map[string]bool{}
		for {
			req.PageToken, req.PageSize = tok, 2
			resp, err := r.destinations().ListDestinations(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range resp.Destinations {
				if seen[d.Name] {
					t.Fatalf("%s listed twice", d.Name)
				}
				seen[d.Name] = true
				if d.Inputs["api_key"].GetValue() != nil {
					t.Fatal("list returned a secret")
				}
			}
			n += len(resp.Destinations)
			if tok = resp.NextPageToken; tok == "" {
				return n
			}
		}
	}
	if n := count(&hogwirev1.ListDestinationsRequest{Parent: p.Name}); n != 7 {
		t.Errorf("listed %d, want 7", n)
	}
	yes := true
	if n := count(&hogwirev1.ListDestinationsRequest{Parent: p.Name, Enabled: &yes}); n != 4 {
		t.Errorf("listed %d enabled, want 4", n)
	}
	if n := count(&hogwirev1.ListDestinationsRequest{Parent: "projects/-"}); n != 8 {
		t.Errorf("listed %d across projects, want 8", n)
	}
	if n := count(&hogwirev1.ListDestinationsRequest{Parent: p.Name, HealthState: hogwirev1.HealthState_HEALTH_STATE_DISABLED_TEMPORARILY}); n != 0 {
		t.Errorf("listed %d quarantined, want 0", n)
	}
}

func TestReplicasRacingUpdatesNeverLoseOne(t *testing.T) {
	e := etcdtest.Start(t)
	sealer := newTestSealer(t)
	a := startReplica(t, []string{e.ClientURL()}, replicaOpts{sealer: sealer})
	b := startReplica(t, []string{e.ClientURL()}, replicaOpts{sealer: sealer})
	ctx := ctxT(t)
	p := mustProject(t, a, "shop")
	created, err := a.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, Destination: webhookDestination("race")})
	if err != nil {
		t.Fatal(err)
	}
	etag := created.Destination.Etag
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, r := range []*replica{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = r.destinations().UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{
					Destination: &hogwirev1.Destination{Name: created.Destination.Name, Etag: etag, Description: string(rune('a' + i))},
					UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"description"}},
				})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch status.Code(err) {
			case codes.OK:
				ok++
			case codes.Aborted:
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d updates with the same etag succeeded, want exactly 1 (%v)", round, ok, errs)
		}
		g, err := b.destinations().GetDestination(ctx, &hogwirev1.GetDestinationRequest{Name: created.Destination.Name})
		if err != nil {
			t.Fatal(err)
		}
		winner := 0
		if errs[0] != nil {
			winner = 1
		}
		if g.Destination.Description != string(rune('a'+winner)) {
			t.Fatalf("round %d: stored %q, but replica %d won", round, g.Destination.Description, winner)
		}
		etag = g.Destination.Etag
	}
}

func TestEnableResetsHealthAndDisable(t *testing.T) {
	e := etcdtest.Start(t)
	r := startReplica(t, []string{e.ClientURL()}, replicaOpts{})
	ctx := ctxT(t)
	p := mustProject(t, r, "shop")
	resp, err := r.destinations().CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{Parent: p.Name, DestinationId: "hook", Destination: webhookDestination("hook")})
	if err != nil {
		t.Fatal(err)
	}
	// What the health manager will write.
	writeHealth(t, r, "shop", "hook", hogwirev1.HealthState_HEALTH_STATE_DISABLED_INDEFINITELY)
	g, _ := r.destinations().GetDestination(ctx, &hogwirev1.GetDestinationRequest{Name: resp.Destination.Name})
	if g.Destination.Health.GetState() != hogwirev1.HealthState_HEALTH_STATE_DISABLED_INDEFINITELY {
		t.Fatalf("health = %v", g.Destination.Health)
	}
	dis, err := r.destinations().DisableDestination(ctx, &hogwirev1.DisableDestinationRequest{Name: resp.Destination.Name})
	if err != nil || dis.Destination.Enabled {
		t.Fatalf("disable: %v %v", dis, err)
	}
	en, err := r.destinations().EnableDestination(ctx, &hogwirev1.EnableDestinationRequest{Name: resp.Destination.Name})
	if err != nil {
		t.Fatal(err)
	}
	if !en.Destination.Enabled || en.Destination.Health.GetState() != hogwirev1.HealthState_HEALTH_STATE_HEALTHY {
		t.Errorf("after enable: enabled=%v health=%v", en.Destination.Enabled, en.Destination.Health)
	}
	if _, err := r.destinations().DeleteDestination(ctx, &hogwirev1.DeleteDestinationRequest{Name: resp.Destination.Name, Etag: "1"}); status.Code(err) != codes.Aborted {
		t.Errorf("delete with a wrong etag: %v", err)
	}
	if _, err := r.destinations().DeleteDestination(ctx, &hogwirev1.DeleteDestinationRequest{Name: resp.Destination.Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.destinations().GetDestination(context.Background(), &hogwirev1.GetDestinationRequest{Name: resp.Destination.Name}); status.Code(err) != codes.NotFound {
		t.Errorf("get after delete: %v", err)
	}
}
