package embednats

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStreamSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	withJS := func(f func(js jetstream.JetStream)) {
		s, err := Start(Config{StoreDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		f(js)
	}
	withJS(func(js jetstream.JetStream) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "t.x", []byte("hello")); err != nil {
			t.Fatal(err)
		}
	})
	withJS(func(js jetstream.JetStream) {
		st, err := js.Stream(ctx, "T")
		if err != nil {
			t.Fatalf("stream after restart: %v", err)
		}
		msg, err := st.GetMsg(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if string(msg.Data) != "hello" {
			t.Fatalf("got %q, want hello", msg.Data)
		}
	})
}
