package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/devstack"
	"github.com/hogwire/hogwire/rpcclient"
)

func TestEventsSend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	st, err := devstack.Start(ctx, devstack.Config{DataDir: dataDir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), EventLog: eventlog.Config{Memory: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	cc, err := rpcclient.Dial(st.GRPCAddr, rpcclient.Options{Token: st.AdminToken})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	p, err := hogwirev1.NewProjectServiceClient(cc).CreateProject(ctx, &hogwirev1.CreateProjectRequest{ProjectId: "shop", Project: &hogwirev1.Project{DisplayName: "Shop"}})
	if err != nil {
		t.Fatal(err)
	}
	token := p.Project.CaptureToken
	deadline := time.Now().Add(10 * time.Second)
	for len(st.Node.Syncer().Current().Tokens) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	var out, errb bytes.Buffer
	if err := run(ctx, []string{"events", "send", "--server", st.GRPCAddr, "--capture-token", token, "--event", "signed_up", "--distinct-id", "u1", "--prop", "plan=\"pro\"", "--prop", "n=3"}, &out, &errb); err != nil {
		t.Fatalf("gRPC send: %v %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "sent 1 event") {
		t.Errorf("output %q", out.String())
	}
	lines := filepath.Join(t.TempDir(), "events.jsonl")
	os.WriteFile(lines, []byte(`{"event":"a","distinct_id":"u1","properties":{"x":1}}`+"\n"+`{"event":"b","distinct_id":"u2"}`+"\n"), 0o644)
	out.Reset()
	if err := run(ctx, []string{"events", "send", "--http", "http://" + st.HTTPAddr, "--capture-token", token, "--file", lines}, &out, &errb); err != nil {
		t.Fatalf("HTTP send: %v %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "sent 2 event") {
		t.Errorf("output %q", out.String())
	}
	// --project looks the capture token up; HOGWIRE_SERVER says where.
	t.Setenv("HOGWIRE_SERVER", st.GRPCAddr)
	out.Reset()
	if err := run(ctx, []string{"events", "send", "--project", "shop", "--data-dir", dataDir, "--event", "signed_up", "--distinct-id", "u3"}, &out, &errb); err != nil {
		t.Fatalf("send with --project and HOGWIRE_SERVER: %v %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "sent 1 event") {
		t.Errorf("output %q", out.String())
	}
	err = run(ctx, []string{"events", "send", "--server", st.GRPCAddr, "--token", "phc_wrong", "--event", "e", "--distinct-id", "u"}, &out, &errb)
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("a wrong token: %v", err)
	}
}
