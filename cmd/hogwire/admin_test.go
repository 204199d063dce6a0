package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/enumword"
	"github.com/hogwire/hogwire/testport"
)

// adminStack is a real control plane (the dev stack) and a way to run CLI
// commands against it.
type adminStack struct {
	t       testing.TB
	server  string
	dataDir string
	token   string
}

func startAdminStack(t testing.TB) *adminStack {
	t.Helper()
	// The environment must not redirect the CLI elsewhere.
	for _, k := range []string{"HOGWIRE_TOKEN", "HOGWIRE_SERVER", "HOGWIRE_DATA_DIR", "HOGWIRE_OUTPUT", "HOGWIRE_PROJECT", "HOGWIRE_TLS", "HOGWIRE_CA_FILE", "HOGWIRE_TIMEOUT"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	// Nor may the user's config file.
	t.Setenv("HOGWIRE_CONFIG", filepath.Join(dir, "no-config.yaml"))
	t.Setenv("HOGWIRE_CONTEXT", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Config{
		DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger:  slog.New(slog.DiscardHandler),
		Persons: true, // as `hogwire dev`
	})
	if err != nil {
		t.Fatalf("starting the dev stack: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st.Close(ctx)
	})
	return &adminStack{t: t, server: st.GRPCAddr, dataDir: dir, token: st.AdminToken}
}

// run runs "hogwire args..." against the stack; the token comes from the
// dev stack's token file, as it does for a user of `hogwire dev`.
func (s *adminStack) run(args ...string) (string, error) {
	s.t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "--server", s.server, "--data-dir", s.dataDir)
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), err
}

// ok runs a command that must succeed.
func (s *adminStack) ok(args ...string) string {
	s.t.Helper()
	out, err := s.run(args...)
	if err != nil {
		s.t.Fatalf("hogwire %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// fails runs a command that must fail with the given gRPC code and exit
// status 1, and returns the error text main would print.
func (s *adminStack) fails(code codes.Code, args ...string) string {
	s.t.Helper()
	_, err := s.run(args...)
	if err == nil {
		s.t.Fatalf("hogwire %s succeeded, want %v", strings.Join(args, " "), code)
	}
	if got := status.Code(err); got != code {
		s.t.Fatalf("hogwire %s: code %v (%v), want %v", strings.Join(args, " "), got, err, code)
	}
	if exitCode(err) != 1 {
		s.t.Errorf("hogwire %s: exit status %d, want 1 for an API error", strings.Join(args, " "), exitCode(err))
	}
	return err.Error()
}

func (s *adminStack) getDestination(name string) *hogwirev1.Destination {
	s.t.Helper()
	resp := &hogwirev1.GetDestinationResponse{}
	decodeJSON(s.t, s.ok("destinations", "get", name, "-o", "json"), resp)
	return resp.GetDestination()
}

func decodeJSON(t testing.TB, out string, m proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal([]byte(out), m); err != nil {
		t.Fatalf("output is not protojson: %v\n%s", err, out)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const hookYAML = `displayName: Hook
description: posts events
hog: |
  let res := fetch(inputs.url, {'method': 'POST', 'body': inputs.body})
  print(res.status)
inputsSchema:
  - {key: url, type: INPUT_TYPE_STRING, required: true}
  - {key: body, type: INPUT_TYPE_JSON}
  - {key: api_key, type: INPUT_TYPE_STRING, secret: true}
  - {key: retries, type: INPUT_TYPE_NUMBER}
  - {key: verbose, type: INPUT_TYPE_BOOLEAN}
  - {key: token2, type: INPUT_TYPE_STRING, secret: true}
inputs:
  url: {value: "https://example.invalid/hook"}
filters:
  events: [{event: "$pageview"}]
`

func TestAdminProjects(t *testing.T) {
	s := startAdminStack(t)

	out := s.ok("projects", "create", "shop", "--name", "Shop", "--site-url", "https://shop.example")
	if !strings.Contains(out, "Created projects/shop.") || !regexp.MustCompile(`Capture token:\s+phc_[A-Za-z0-9_-]{43}`).MatchString(out) {
		t.Errorf("create printed:\n%s", out)
	}
	s.ok("projects", "create", "--id", "blog", "--name", "Blog")

	out = s.ok("projects", "list")
	if !regexp.MustCompile(`(?m)^ID\s+NAME\s+CAPTURE TOKEN\s+TIME ZONE\s+CREATED$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^blog\s+Blog\s+phc_\S+\s+-\s+\d{4}-`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^shop\s+Shop\s+phc_`).MatchString(out) {
		t.Errorf("list table:\n%s", out)
	}
	list := &hogwirev1.ListProjectsResponse{}
	decodeJSON(t, s.ok("projects", "list", "-o", "json"), list)
	if len(list.Projects) != 2 || list.Projects[0].Name != "projects/blog" || list.Projects[1].Name != "projects/shop" {
		t.Errorf("list json: %v", list)
	}

	before := &hogwirev1.GetProjectResponse{}
	decodeJSON(t, s.ok("projects", "get", "projects/shop", "-o", "json"), before)

	// Only the flag given changes.
	out = s.ok("projects", "update", "shop", "--time-zone", "Europe/Paris")
	if !strings.Contains(out, "Updated projects/shop.") {
		t.Errorf("update printed:\n%s", out)
	}
	out = s.ok("projects", "get", "shop")
	for _, want := range []string{`Display name:\s+Shop\n`, `Time zone:\s+Europe/Paris\n`, `Site URL:\s+https://shop.example\n`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("get after update does not match %q:\n%s", want, out)
		}
	}
	msg := s.fails(codes.InvalidArgument, "projects", "update", "shop", "--time-zone", "Mars/Olympus")
	if !strings.Contains(msg, "\n  project.time_zone: ") {
		t.Errorf("invalid time zone error does not list the field violation:\n%s", msg)
	}
	if _, err := s.run("projects", "update", "shop"); exitCode(err) != 2 {
		t.Errorf("update without changes: %v, want a usage error", err)
	}

	out = s.ok("projects", "rotate-token", "shop")
	after := &hogwirev1.GetProjectResponse{}
	decodeJSON(t, s.ok("projects", "get", "shop", "-o", "json"), after)
	if after.Project.CaptureToken == before.Project.CaptureToken || !strings.Contains(out, after.Project.CaptureToken) {
		t.Errorf("rotate-token printed %q; token before %s, after %s", out, before.Project.CaptureToken, after.Project.CaptureToken)
	}

	// YAML output is the same message.
	y, err := yaml.YAMLToJSON([]byte(s.ok("projects", "get", "shop", "-o", "yaml")))
	if err != nil {
		t.Fatal(err)
	}
	fromYAML := &hogwirev1.GetProjectResponse{}
	decodeJSON(t, string(y), fromYAML)
	if !proto.Equal(fromYAML, after) {
		t.Errorf("yaml output %v differs from json output %v", fromYAML, after)
	}

	s.ok("destinations", "create", "--project", "shop", "--id", "ping", "--name", "Ping", "--hog-file", writeFile(t, "p.hog", "print('ping')\n"))
	s.fails(codes.FailedPrecondition, "projects", "delete", "shop")
	if out := s.ok("projects", "delete", "shop", "--force"); !strings.Contains(out, "Deleted projects/shop.") {
		t.Errorf("delete printed %q", out)
	}
	s.fails(codes.NotFound, "projects", "get", "shop")
	s.fails(codes.NotFound, "destinations", "get", "ping")
}

func TestAdminDestinations(t *testing.T) {
	s := startAdminStack(t)
	s.ok("projects", "create", "shop", "--name", "Shop")

	// From flags alone.
	hog := writeFile(t, "ping.hog", "print(event.event)\n")
	out := s.ok("destinations", "create", "--project", "projects/shop", "--id", "ping", "--name", "Ping",
		"--hog-file", hog, "--filter-event", "$pageview", "--filter-event", "signed_up", "--filter-expr", "event != 'x'")
	if !strings.Contains(out, "Created projects/shop/destinations/ping.") {
		t.Errorf("create printed:\n%s", out)
	}
	ping := s.getDestination("ping")
	if !ping.Enabled || ping.DisplayName != "Ping" || ping.Hog != "print(event.event)\n" ||
		len(ping.Filters.GetEvents()) != 2 || ping.Filters.GetEvents()[1].GetEvent() != "signed_up" || ping.Filters.GetExpression() != "event != 'x'" {
		t.Errorf("created from flags: %v", ping)
	}

	// From a YAML file, with inputs typed by the file's schema.
	file := writeFile(t, "hook.yaml", hookYAML)
	s.ok("destinations", "create", "--project", "shop", "--id", "hook", "-f", file,
		"--input", "api_key=sk_live_SECRET", "--input", "retries=3", "--input", "verbose=true", "--input", `body={"a":[1,"x"]}`)
	hook := s.getDestination("projects/shop/destinations/hook")
	if hook.Description != "posts events" || !hook.Enabled || hook.Template != "" {
		t.Errorf("created from file: %v", hook)
	}
	if v := hook.Inputs["retries"].GetValue(); v.GetNumberValue() != 3 {
		t.Errorf("retries = %v, want the number 3", v)
	}
	if v := hook.Inputs["verbose"].GetValue(); !v.GetBoolValue() {
		t.Errorf("verbose = %v, want true", v)
	}
	if v := hook.Inputs["body"].GetValue().GetStructValue().GetFields()["a"].GetListValue().GetValues(); len(v) != 2 || v[0].GetNumberValue() != 1 {
		t.Errorf("body = %v, want the JSON object", hook.Inputs["body"])
	}
	if !hook.Inputs["api_key"].GetSecretSet() || hook.Inputs["api_key"].GetValue() != nil {
		t.Errorf("api_key = %v, want set and not returned", hook.Inputs["api_key"])
	}

	// A file can say enabled: false, and --validate-only stores nothing.
	s.ok("destinations", "create", "--project", "shop", "--id", "off", "-f", writeFile(t, "off.yaml", hookYAML+"enabled: false\n"))
	if s.getDestination("off").Enabled {
		t.Error("enabled: false in the file was ignored")
	}
	if out := s.ok("destinations", "create", "--project", "shop", "--id", "dry", "-f", file, "--validate-only"); !strings.Contains(out, "nothing was created") {
		t.Errorf("validate-only printed:\n%s", out)
	}
	s.fails(codes.NotFound, "destinations", "get", "dry")

	out = s.ok("destinations", "list", "--project", "shop")
	if !regexp.MustCompile(`(?m)^ID\s+NAME\s+ENABLED\s+HEALTH\s+TEMPLATE\s+UPDATED$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^hook\s+Hook\s+yes\s+healthy\s+-\s+\d{4}-\d\d-\d\dT`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^off\s+Hook\s+no\s+healthy\s`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^ping\s+Ping\s+yes\s`).MatchString(out) {
		t.Errorf("list table:\n%s", out)
	}
	if out := s.ok("destinations", "list"); !regexp.MustCompile(`(?m)^PROJECT\s+ID\s+NAME.*\n(shop\s+\S+\s.*\n){3}$`).MatchString(out) {
		t.Errorf("list of every project:\n%s", out)
	}
	list := &hogwirev1.ListDestinationsResponse{}
	decodeJSON(t, s.ok("destinations", "list", "--project", "shop", "-o", "json", "--enabled", "true"), list)
	var names []string
	for _, d := range list.Destinations {
		names = append(names, d.Name)
	}
	if got := strings.Join(names, ","); got != "projects/shop/destinations/hook,projects/shop/destinations/ping" {
		t.Errorf("json list of enabled destinations: %s", got)
	}

	out = s.ok("destinations", "get", "hook")
	for _, want := range []string{
		`Name:\s+projects/shop/destinations/hook\n`, `Enabled:\s+yes\n`, `Health:\s+healthy since \d{4}-`,
		`\n  url\s+https://example.invalid/hook\n`, `\n  api_key\s+\(secret, set\)\n`, `\n  token2\s+\(secret, not set\)\n`,
		`\n  retries\s+3\n`, `\n  body\s+\{"a":\[1,"x"\]\}\n`, `\n  event:\s+\$pageview\n`,
		`\nHog:\n  let res := fetch\(inputs.url`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("get does not match %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SECRET") {
		t.Error("get printed the secret")
	}

	// Rate and backlog limits are set by flags and shown by get.
	s.ok("destinations", "update", "hook", "--max-rate", "50", "--max-requests-in-flight", "4", "--max-backlog", "100",
		"--max-backlog-bytes", "1MiB", "--max-backlog-age", "2h")
	if l := s.getDestination("hook").Limits; l.GetMaxRate() != 50 || l.GetMaxRequestsInFlight() != 4 || l.GetMaxBacklog() != 100 ||
		l.GetMaxBacklogBytes() != 1<<20 || l.GetMaxBacklogAge().AsDuration() != 2*time.Hour {
		t.Errorf("limits after update: %v", l)
	}
	if out := s.ok("destinations", "get", "hook"); !strings.Contains(out, "50 requests/s, 4 requests in flight, backlog of 100 events") {
		t.Errorf("get does not show the rate and backlog limits:\n%s", out)
	}

	// Updating one input changes only that input: the mask names it alone,
	// and the secret stays set.
	out = s.ok("destinations", "update", "hook", "--input", "url=https://example.invalid/v2")
	if !strings.Contains(out, "Updated projects/shop/destinations/hook (inputs.url).") {
		t.Errorf("update printed:\n%s", out)
	}
	upd := s.getDestination("hook")
	if upd.Inputs["url"].GetValue().GetStringValue() != "https://example.invalid/v2" {
		t.Errorf("url = %v", upd.Inputs["url"])
	}
	if !upd.Inputs["api_key"].GetSecretSet() {
		t.Error("updating url dropped the secret api_key")
	}
	for _, k := range []string{"retries", "verbose", "body"} {
		if !proto.Equal(upd.Inputs[k].GetValue(), hook.Inputs[k].GetValue()) {
			t.Errorf("input %s changed from %v to %v", k, hook.Inputs[k], upd.Inputs[k])
		}
	}
	if upd.DisplayName != hook.DisplayName || upd.Hog != hook.Hog || upd.Etag == hook.Etag {
		t.Errorf("after update: name %q hog %q etag %s (was %s)", upd.DisplayName, upd.Hog, upd.Etag, hook.Etag)
	}
	// A filter flag keeps the rest of the filters.
	out = s.ok("destinations", "update", "hook", "--filter-expr", "event = '$pageview'", "--input", "retries=4")
	if !strings.Contains(out, "(filters, inputs.retries).") {
		t.Errorf("update printed:\n%s", out)
	}
	if f := s.getDestination("hook").Filters; len(f.GetEvents()) != 1 || f.GetExpression() != "event = '$pageview'" {
		t.Errorf("filters after --filter-expr: %v", f)
	}

	// A file read before someone else's edit is refused, not applied.
	stale := writeFile(t, "stale.yaml", s.ok("destinations", "get", "hook", "-o", "yaml"))
	s.ok("destinations", "update", "hook", "--description", "edited meanwhile")
	msg := s.fails(codes.Aborted, "destinations", "update", "hook", "-f", stale)
	if !strings.Contains(msg, "nothing was written") {
		t.Errorf("ABORTED is not explained:\n%s", msg)
	}
	if got := s.getDestination("hook"); got.Description != "edited meanwhile" {
		t.Errorf("description = %q: the stale write was applied", got.Description)
	}
	// A fresh one round-trips: get -o yaml, edit, update -f.
	fresh := strings.Replace(s.ok("destinations", "get", "hook", "-o", "yaml"), "displayName: Hook", "displayName: Hook v2", 1)
	s.ok("destinations", "update", "hook", "-f", writeFile(t, "fresh.yaml", fresh))
	if got := s.getDestination("hook"); got.DisplayName != "Hook v2" || !got.Inputs["api_key"].GetSecretSet() || got.Description != "edited meanwhile" {
		t.Errorf("after update -f: %v", got)
	}

	// Compile errors name the field, line and column.
	bad := writeFile(t, "bad.hog", "let x := 1\nlet y := (x +\n")
	msg = s.fails(codes.InvalidArgument, "destinations", "update", "hook", "--hog-file", bad, "--filter-expr", "event = ")
	for _, want := range []string{`\n  destination\.hog: line \d+, column \d+: \S`, `\n  destination\.filters[.\w]*: .*line 1, column \d+`} {
		if !regexp.MustCompile(want).MatchString(msg) {
			t.Errorf("compile error does not match %q:\n%s", want, msg)
		}
	}
	// A value that does not fit the input's type is a usage error.
	if _, err := s.run("destinations", "update", "hook", "--input", "retries=many"); exitCode(err) != 2 || !strings.Contains(err.Error(), "not a number") {
		t.Errorf("--input retries=many: %v", err)
	}

	out = s.ok("destinations", "disable", "hook")
	if !strings.Contains(out, "Disabled projects/shop/destinations/hook.") || s.getDestination("hook").Enabled {
		t.Errorf("disable printed %q", out)
	}
	out = s.ok("destinations", "enable", "projects/shop/destinations/hook")
	if !strings.Contains(out, "Enabled projects/shop/destinations/hook (health: healthy).") || !s.getDestination("hook").Enabled {
		t.Errorf("enable printed %q", out)
	}
	out = s.ok("destinations", "update", "hook", "--enabled=false")
	if !strings.Contains(out, "(enabled).") || s.getDestination("hook").Enabled {
		t.Errorf("update --enabled=false printed %q", out)
	}

	if out := s.ok("destinations", "delete", "hook"); !strings.Contains(out, "Deleted projects/-/destinations/hook.") {
		t.Errorf("delete printed %q", out)
	}
	s.fails(codes.NotFound, "destinations", "get", "hook")
	if msg := s.fails(codes.NotFound, "destinations", "delete", "hook"); !strings.Contains(msg, "not found") {
		t.Errorf("delete of a missing destination: %s", msg)
	}
}

func TestAdminHogFromStdin(t *testing.T) {
	s := startAdminStack(t)
	s.ok("projects", "create", "shop", "--name", "Shop")
	var stdout bytes.Buffer
	a := &app{getenv: os.Getenv, stdin: strings.NewReader("print('from stdin')\n"), stdout: &stdout, stderr: &bytes.Buffer{}}
	err := a.run(context.Background(), []string{"destinations", "create", "--project", "shop", "--id", "std", "--name", "Std",
		"--hog-file", "-", "--server", s.server, "--data-dir", s.dataDir})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.getDestination("std").Hog; got != "print('from stdin')\n" {
		t.Errorf("hog = %q", got)
	}
	_, err = s.run("destinations", "create", "--project", "shop", "-f", "-", "--hog-file", "-")
	if exitCode(err) != 2 {
		t.Errorf("two readers of stdin: %v, want a usage error", err)
	}
}

func TestAdminTemplatesAndNodes(t *testing.T) {
	s := startAdminStack(t)

	nodes := &hogwirev1.ListNodesResponse{}
	decodeJSON(t, s.ok("nodes", "list", "-o", "json"), nodes)
	out := s.ok("nodes", "list")
	if !regexp.MustCompile(`(?m)^NODE\s+ADDRESS\s+VERSION\s+REVISION\s+CONNECTED\s+CONTROL PLANE\s+REJECTED$`).MatchString(out) {
		t.Errorf("nodes list:\n%s", out)
	}
	for _, n := range nodes.Nodes {
		if !strings.Contains(out, n.NodeId) {
			t.Errorf("node %s missing from the table:\n%s", n.NodeId, out)
		}
	}

	list := &hogwirev1.ListTemplatesResponse{}
	decodeJSON(t, s.ok("templates", "list", "-o", "json"), list)
	var webhook *hogwirev1.Template
	for _, tpl := range list.Templates {
		if tpl.Name == "templates/webhook" {
			webhook = tpl
		}
	}
	if webhook == nil {
		t.Fatalf("the dev stack serves no webhook template: %v", list)
	}
	out = s.ok("templates", "list")
	cat := webhook.Category
	if cat == "" {
		cat = "Other"
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(cat) + `\n(  .*\n)*  webhook\s+` + regexp.QuoteMeta(webhook.DisplayName) + `\s`).MatchString(out) {
		t.Errorf("templates list does not show webhook under %s:\n%s", cat, out)
	}
	if out := s.ok("templates", "list", "--category", webhook.Category); !strings.Contains(out, "  webhook ") {
		t.Errorf("templates list --category %s:\n%s", webhook.Category, out)
	}
	out = s.ok("templates", "show", "webhook")
	if !regexp.MustCompile(`(?m)^  KEY\s+TYPE\s+REQUIRED\s+SECRET\s+DEFAULT\s+DESCRIPTION$`).MatchString(out) ||
		!strings.Contains(out, "Name:          templates/webhook") || !strings.Contains(out, "\nHog:\n  ") {
		t.Errorf("templates show:\n%s", out)
	}
	for _, in := range webhook.InputsSchema {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(in.Key) + `\s+` + enumword.Of(in.Type)).MatchString(out) {
			t.Errorf("input %s missing from templates show:\n%s", in.Key, out)
		}
	}
	s.fails(codes.NotFound, "templates", "show", "no-such-template")

	// A destination from the template, with --input values typed by the
	// template's schema.
	s.ok("projects", "create", "shop", "--name", "Shop")
	args := []string{"destinations", "create", "--project", "shop", "--id", "wh", "--template", "webhook", "--input", "url=https://example.invalid/wh"}
	typed := map[string]*structpb.Value{}
	for _, in := range webhook.InputsSchema {
		switch in.Type {
		case hogwirev1.InputType_INPUT_TYPE_BOOLEAN:
			args, typed[in.Key] = append(args, "--input", in.Key+"=true"), structpb.NewBoolValue(true)
		case hogwirev1.InputType_INPUT_TYPE_DICTIONARY:
			args, typed[in.Key] = append(args, "--input", in.Key+`={"X-Test":"1"}`), mustValue(t, map[string]any{"X-Test": "1"})
		}
	}
	s.ok(args...)
	d := s.getDestination("wh")
	if d.Template != "templates/webhook" || d.Hog != webhook.Hog || d.Inputs["url"].GetValue().GetStringValue() != "https://example.invalid/wh" {
		t.Errorf("from template: %v", d)
	}
	for k, want := range typed {
		if got := d.Inputs[k].GetValue(); !proto.Equal(got, want) {
			t.Errorf("input %s = %v, want %v", k, got, want)
		}
	}
	if out := s.ok("destinations", "list", "--template", "webhook"); !regexp.MustCompile(`(?m)^shop\s+wh\s+.*\swebhook\s`).MatchString(out) {
		t.Errorf("list --template webhook:\n%s", out)
	}
}

func TestAdminConnectionErrors(t *testing.T) {
	s := startAdminStack(t)

	// No token anywhere: a usage error that says where a token comes from.
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"projects", "list", "--server", s.server, "--data-dir", t.TempDir()}, &stdout, &stderr)
	if exitCode(err) != 2 || !strings.Contains(fmtErr(err), "no admin token: pass --token, set HOGWIRE_TOKEN") {
		t.Errorf("without a token: exit %d, %v", exitCode(err), err)
	}

	msg := s.fails(codes.Unauthenticated, "projects", "list", "--token", "hwa_wrong")
	if !strings.Contains(msg, "hint: check --token") {
		t.Errorf("UNAUTHENTICATED without a hint:\n%s", msg)
	}

	// HOGWIRE_TOKEN wins over the token file.
	t.Setenv("HOGWIRE_TOKEN", "hwa_wrong_too")
	s.fails(codes.Unauthenticated, "projects", "list")
	t.Setenv("HOGWIRE_TOKEN", s.token)
	if err := run(context.Background(), []string{"projects", "list", "--server", s.server, "--data-dir", t.TempDir()}, &stdout, &stderr); err != nil {
		t.Errorf("with HOGWIRE_TOKEN and no token file: %v", err)
	}
	t.Setenv("HOGWIRE_TOKEN", "")

	// HOGWIRE_SERVER is used when --server is not given; nothing listens
	// on this port.
	dead := testport.Addr(t)
	t.Setenv("HOGWIRE_SERVER", dead)
	err = run(context.Background(), []string{"nodes", "list", "--token", s.token}, &stdout, &stderr)
	if status.Code(err) != codes.Unavailable || exitCode(err) != 1 ||
		!strings.Contains(err.Error(), "hint: the server at "+dead+" is not reachable") {
		t.Errorf("unreachable server: %v", err)
	}
	t.Setenv("HOGWIRE_SERVER", "")

	for _, args := range [][]string{
		{"destinations"},
		{"destinations", "frobnicate"},
		{"destinations", "get"},
		{"destinations", "get", "a", "b"},
		{"destinations", "create"}, // no --project
		{"destinations", "list", "-o", "xml"},
		{"destinations", "update", "hook"}, // nothing to update
		{"destinations", "update", "hook", "--input", "novalue"},
	} {
		_, err := s.run(args...)
		if exitCode(err) != 2 {
			t.Errorf("hogwire %s: %v (exit %d), want a usage error", strings.Join(args, " "), err, exitCode(err))
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCoerceInput(t *testing.T) {
	str := structpb.NewStringValue
	for _, tc := range []struct {
		raw     string
		typ     hogwirev1.InputType
		want    *structpb.Value
		wantErr string
	}{
		{"https://x", hogwirev1.InputType_INPUT_TYPE_STRING, str("https://x"), ""},
		{"42", hogwirev1.InputType_INPUT_TYPE_STRING, str("42"), ""},
		{"Hi {person.name}", hogwirev1.InputType_INPUT_TYPE_EMAIL, str("Hi {person.name}"), ""},
		{"POST", hogwirev1.InputType_INPUT_TYPE_CHOICE, str("POST"), ""},
		{"true", hogwirev1.InputType_INPUT_TYPE_UNSPECIFIED, str("true"), ""},
		{"2.5", hogwirev1.InputType_INPUT_TYPE_NUMBER, structpb.NewNumberValue(2.5), ""},
		{" -3 ", hogwirev1.InputType_INPUT_TYPE_NUMBER, structpb.NewNumberValue(-3), ""},
		{"many", hogwirev1.InputType_INPUT_TYPE_NUMBER, nil, "not a number"},
		{"true", hogwirev1.InputType_INPUT_TYPE_BOOLEAN, structpb.NewBoolValue(true), ""},
		{"0", hogwirev1.InputType_INPUT_TYPE_BOOLEAN, structpb.NewBoolValue(false), ""},
		{"maybe", hogwirev1.InputType_INPUT_TYPE_BOOLEAN, nil, "not true or false"},
		{`{"a":[1,"b",null]}`, hogwirev1.InputType_INPUT_TYPE_JSON, mustValue(t, map[string]any{"a": []any{1, "b", nil}}), ""},
		{`"text"`, hogwirev1.InputType_INPUT_TYPE_JSON, str("text"), ""},
		{`7`, hogwirev1.InputType_INPUT_TYPE_JSON, structpb.NewNumberValue(7), ""},
		{`text`, hogwirev1.InputType_INPUT_TYPE_JSON, nil, "is not JSON"},
		{`{"Authorization":"Bearer {inputs.key}"}`, hogwirev1.InputType_INPUT_TYPE_DICTIONARY, mustValue(t, map[string]any{"Authorization": "Bearer {inputs.key}"}), ""},
		{`["a"]`, hogwirev1.InputType_INPUT_TYPE_DICTIONARY, nil, "not a JSON object"},
	} {
		got, err := coerceInput(tc.raw, tc.typ)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("coerceInput(%q, %v) = %v, %v; want error %q", tc.raw, tc.typ, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !proto.Equal(got, tc.want) {
			t.Errorf("coerceInput(%q, %v) = %v, %v; want %v", tc.raw, tc.typ, got, err, tc.want)
		}
	}
}

func mustValue(t *testing.T, v any) *structpb.Value {
	t.Helper()
	out, err := structpb.NewValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestResolveTokenOrder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte("hwa_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctxTokenFile := filepath.Join(t.TempDir(), "ctx.token")
	if err := os.WriteFile(ctxTokenFile, []byte("hwa_ctxfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	resolve := func(flag, env, dataDir string, ctx *cliContext) (string, error) {
		c := &adminCmd{app: &app{getenv: func(k string) string {
			if k == "HOGWIRE_TOKEN" {
				return env
			}
			return ""
		}}, token: flag, dataDir: dataDir, ctx: ctx}
		return c.resolveToken()
	}
	for _, tc := range []struct {
		name, flag, env, dir, want string
		ctx                        *cliContext
	}{
		{"flag wins", "hwa_flag", "hwa_env", dir, "hwa_flag", &cliContext{Token: "hwa_ctx"}},
		{"env before context", "", "hwa_env", dir, "hwa_env", &cliContext{Token: "hwa_ctx"}},
		{"context before file", "", "", dir, "hwa_ctx", &cliContext{Token: "hwa_ctx"}},
		{"context token file", "", "", dir, "hwa_ctxfile", &cliContext{TokenFile: ctxTokenFile}},
		{"file last, trimmed", "", "", dir, "hwa_file", nil},
		{"blank flag and env are not tokens", "  ", " ", dir, "hwa_file", nil},
	} {
		got, err := resolve(tc.flag, tc.env, tc.dir, tc.ctx)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	_, err := resolve("", "", t.TempDir(), nil)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "no admin token") || !strings.Contains(err.Error(), "admin.token does not exist") {
		t.Errorf("no token anywhere: %v", err)
	}
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "admin.token"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resolve("", "", empty, nil); err == nil || !strings.Contains(err.Error(), "no admin token") {
		t.Errorf("empty token file: %v", err)
	}
}

func TestFlagsMayFollowArguments(t *testing.T) {
	a := &app{getenv: func(k string) string {
		return map[string]string{"HOGWIRE_SERVER": "env:1", "HOGWIRE_NAME": "from env", "HOGWIRE_OUTPUT": "yaml", "HOGWIRE_CONFIG": "/nonexistent"}[k]
	}, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	var e destinationEdit
	var got *adminCmd
	c := a.newAdminCmd("x A B", "", "", exactArgs(2))
	e.register(c.fs)
	c.runE(func(context.Context) error { got = c; return nil })
	c.cmd.SetArgs([]string{"hook", "-o", "json", "--input", "a=1", "--", "-odd"})
	if err := c.cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.args, "|") != "hook|-odd" || got.output != outputJSON || strings.Join(e.inputs, ",") != "a=1" {
		t.Errorf("args %q output %q inputs %q", got.args, got.output, e.inputs)
	}
	if got.server != "env:1" {
		t.Errorf("server = %q, want HOGWIRE_SERVER", got.server)
	}
	c = a.newAdminCmd("y", "", "", noArgs)
	e = destinationEdit{}
	e.register(c.fs)
	c.runE(func(context.Context) error { return nil })
	c.cmd.SetArgs(nil)
	if err := c.cmd.Execute(); err != nil || c.output != outputYAML {
		t.Errorf("output = %q, %v; want HOGWIRE_OUTPUT when -o is not given", c.output, err)
	}
	// Flags that describe a change never come from the environment.
	if e.name != "" || c.given("name") {
		t.Errorf("--name was taken from HOGWIRE_NAME: %q", e.name)
	}
}

func TestReadDestinationFile(t *testing.T) {
	d, keys, err := readDestinationFile([]byte(hookYAML + "enabled: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d.DisplayName != "Hook" || len(d.InputsSchema) != 6 || d.InputsSchema[3].Type != hogwirev1.InputType_INPUT_TYPE_NUMBER {
		t.Errorf("decoded %v", d)
	}
	for _, k := range []string{"display_name", "description", "hog", "inputs_schema", "inputs", "filters", "enabled"} {
		if !keys[k] {
			t.Errorf("key %s not reported in %v", k, keys)
		}
	}
	if keys["masking"] {
		t.Error("masking reported although absent")
	}

	// What "destinations get -o json" prints, with proto field names too.
	wrapped := `{"destination": {"name": "projects/p/destinations/d", "display_name": "D", "etag": "7", "enabled": true}}`
	d, keys, err = readDestinationFile([]byte(wrapped))
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "projects/p/destinations/d" || d.Etag != "7" || !keys["display_name"] || !keys["enabled"] {
		t.Errorf("wrapped: %v %v", d, keys)
	}

	if _, _, err := readDestinationFile([]byte("displayName: x\nhogg: typo\n")); err == nil || !strings.Contains(err.Error(), "hogg") {
		t.Errorf("unknown field: %v", err)
	}
}

func TestTemplateViews(t *testing.T) {
	yes := false
	ts := []*hogwirev1.Template{
		{Name: "templates/slack", DisplayName: "Slack", Category: "Chat", Description: "Posts a message to a channel"},
		{Name: "templates/webhook", DisplayName: "HTTP Webhook", Category: "Custom", Description: "Sends the event to a URL", Status: hogwirev1.TemplateStatus_TEMPLATE_STATUS_BETA},
		{Name: "templates/debug", DisplayName: "Debug", Category: "Custom", Description: "Prints"},
	}
	var b bytes.Buffer
	writeTemplateList(&b, ts)
	want := `Chat
  slack    Slack         Posts a message to a channel

Custom
  webhook  HTTP Webhook  Sends the event to a URL (beta)
  debug    Debug         Prints
`
	if b.String() != want {
		t.Errorf("list:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	err := writeTemplate(&b, &hogwirev1.Template{
		Name: "templates/webhook", DisplayName: "HTTP Webhook", Category: "Custom", Description: "Sends the event to a URL",
		Hog: "let res := fetch(inputs.url, {})\nprint(res.status)\n",
		InputsSchema: []*hogwirev1.InputSchema{
			{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Required: true, Description: "Where to send it"},
			{Key: "method", Type: hogwirev1.InputType_INPUT_TYPE_CHOICE, Default: structpb.NewStringValue("POST"),
				Choices: []*hogwirev1.InputChoice{{Value: "POST"}, {Value: "PUT"}}},
			{Key: "api_key", Type: hogwirev1.InputType_INPUT_TYPE_STRING, Secret: true, Label: "API key", Templating: &yes},
		},
		Filters: &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "$pageview"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`Name:\s+templates/webhook\n`, `Category:\s+Custom\n`,
		`\n  KEY\s+TYPE\s+REQUIRED\s+SECRET\s+DEFAULT\s+DESCRIPTION\n`,
		`\n  url\s+string\s+yes\s+no\s+-\s+Where to send it\n`,
		`\n  method\s+choice\s+no\s+no\s+POST\s+\(one of: POST, PUT\)\n`,
		`\n  api_key\s+string\s+no\s+yes\s+-\s+API key\n`,
		`\n  event:\s+\$pageview\n`,
		`\nHog:\n  let res := fetch\(inputs.url, \{\}\)\n  print\(res.status\)\n$`,
	} {
		if !regexp.MustCompile(want).MatchString(b.String()) {
			t.Errorf("show does not match %q:\n%s", want, b.String())
		}
	}
}

func TestJSONOutputIsStable(t *testing.T) {
	m := &hogwirev1.ListProjectsResponse{Projects: []*hogwirev1.Project{{Name: "projects/a", DisplayName: "A"}}}
	var first bytes.Buffer
	if err := printMessage(&first, outputJSON, m, nil); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"projects\": [\n    {\n      \"name\": \"projects/a\",\n      \"displayName\": \"A\"\n    }\n  ]\n}\n"
	if first.String() != want {
		t.Errorf("json:\n%s\nwant:\n%s", first.String(), want)
	}
}

// fakeNodes serves NodeService only: enough to test how the CLI connects.
type fakeNodes struct {
	hogwirev1.UnimplementedNodeServiceServer
	block bool
	auth  chan string
}

func (f *fakeNodes) ListNodes(ctx context.Context, _ *hogwirev1.ListNodesRequest) (*hogwirev1.ListNodesResponse, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("authorization")) > 0 {
		select {
		case f.auth <- md.Get("authorization")[0]:
		default:
		}
	}
	if f.block {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &hogwirev1.ListNodesResponse{Nodes: []*hogwirev1.Node{{NodeId: "n1", Address: "10.0.0.1:7071", AckedRevision: 12}}}, nil
}

func serveFakeNodes(t *testing.T, f *fakeNodes, opts ...grpc.ServerOption) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	hogwirev1.RegisterNodeServiceServer(gs, f)
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	return l.Addr().String()
}

// selfSignedCert returns a server certificate for 127.0.0.1 and its PEM.
func selfSignedCert(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hogwire test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestAdminTLS(t *testing.T) {
	t.Setenv("HOGWIRE_TOKEN", "")
	cert, caPEM := selfSignedCert(t)
	f := &fakeNodes{auth: make(chan string, 1)}
	addr := serveFakeNodes(t, f, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	ca := writeFile(t, "ca.pem", string(caPEM))

	var stdout bytes.Buffer
	err := run(context.Background(), []string{"nodes", "list", "--server", addr, "--token", "hwa_t", "--ca-file", ca}, &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^n1\s+10\.0\.0\.1:7071\s+-\s+12\s+-\s+-\s+-$`).MatchString(stdout.String()) {
		t.Errorf("nodes list over TLS:\n%s", stdout.String())
	}
	if got := <-f.auth; got != "Bearer hwa_t" {
		t.Errorf("authorization = %q", got)
	}
	// --tls verifies with the system roots, which do not know this CA;
	// plaintext to a TLS server fails as well.
	for _, extra := range [][]string{{"--tls"}, nil} {
		err := run(context.Background(), append([]string{"nodes", "list", "--server", addr, "--token", "hwa_t"}, extra...), io.Discard, io.Discard)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%v: %v, want UNAVAILABLE", extra, err)
		}
	}
	err = run(context.Background(), []string{"nodes", "list", "--server", addr, "--token", "hwa_t", "--ca-file", filepath.Join(t.TempDir(), "none.pem")}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--ca-file") {
		t.Errorf("missing CA file: %v", err)
	}
}

func TestAdminTimeout(t *testing.T) {
	addr := serveFakeNodes(t, &fakeNodes{block: true, auth: make(chan string, 1)})
	err := run(context.Background(), []string{"nodes", "list", "--server", addr, "--token", "hwa_t", "--timeout", "100ms"}, io.Discard, io.Discard)
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "--timeout") {
		t.Errorf("blocked call: %v, want DEADLINE_EXCEEDED with a hint", err)
	}
}

// A context of the config file says where the server and the token are;
// HOGWIRE_SERVER and flags win over it.
func TestContexts(t *testing.T) {
	s := startAdminStack(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	t.Setenv("HOGWIRE_CONFIG", cfg)
	if err := run(context.Background(), []string{"config", "set-context", "local", "--server", s.server, "--data-dir", s.dataDir, "--project", "shop"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"config", "set-context", "elsewhere", "--server", "127.0.0.1:1"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"config", "get-contexts"}, &stdout, io.Discard); err != nil ||
		!regexp.MustCompile(`(?m)^\*\s+local\s+`+regexp.QuoteMeta(s.server)+`\s+shop$`).MatchString(stdout.String()) {
		t.Fatalf("get-contexts: %v\n%s", err, stdout.String())
	}
	// The first context saved is the current one: no flag needed.
	if err := run(context.Background(), []string{"projects", "create", "shop", "--name", "Shop"}, io.Discard, io.Discard); err != nil {
		t.Fatalf("projects create through the context: %v", err)
	}
	// Its project is the default --project.
	if err := run(context.Background(), []string{"destinations", "create", "--template", "webhook", "--input", "url=https://example.com", "--id", "ctxhook"}, io.Discard, io.Discard); err != nil {
		t.Fatalf("destinations create with the context's project: %v", err)
	}
	if d := s.getDestination("ctxhook"); d.GetName() != "projects/shop/destinations/ctxhook" {
		t.Errorf("created %s", d.GetName())
	}
	// --context picks another; HOGWIRE_SERVER beats the context.
	if err := run(context.Background(), []string{"projects", "list", "--context", "elsewhere", "--timeout", "2s", "--data-dir", s.dataDir}, io.Discard, io.Discard); status.Code(err) != codes.Unavailable {
		t.Errorf("--context elsewhere: %v, want Unavailable", err)
	}
	t.Setenv("HOGWIRE_SERVER", "127.0.0.1:1")
	if err := run(context.Background(), []string{"projects", "list", "--timeout", "2s"}, io.Discard, io.Discard); status.Code(err) != codes.Unavailable {
		t.Errorf("HOGWIRE_SERVER over the context: %v, want Unavailable", err)
	}
	if err := run(context.Background(), []string{"projects", "list", "--server", s.server}, io.Discard, io.Discard); err != nil {
		t.Errorf("--server over HOGWIRE_SERVER: %v", err)
	}
	if err := run(context.Background(), []string{"projects", "list", "--context", "nope"}, io.Discard, io.Discard); exitCode(err) != 2 {
		t.Errorf("an unknown context: %v, want a usage error", err)
	}
}
