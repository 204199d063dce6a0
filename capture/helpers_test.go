package capture_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/capture"
)

const (
	testToken   = "phc_testtoken"
	testProject = "proj-1"
)

type tokens map[string]string

func (t tokens) Project(token string) (string, bool) {
	p, ok := t[token]
	return p, ok
}

// published is one Publish call as the memory publisher saw it.
type published struct {
	project string
	events  []*hogwirev1.Event
	span    trace.SpanContext
}

// memPublisher stores events in memory. fail makes Publish fail; gate,
// when set, holds every Publish until it is closed.
type memPublisher struct {
	mu      sync.Mutex
	batches []published
	fail    bool
	entered chan struct{}
	gate    chan struct{}
	// canceled, when set, hears of every Publish whose context ended
	// while it waited at the gate.
	canceled chan struct{}
	delay    func(batch int) time.Duration
}

func (p *memPublisher) Publish(ctx context.Context, projectID string, events []*hogwirev1.Event) error {
	if p.entered != nil {
		p.entered <- struct{}{}
	}
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			if p.canceled != nil {
				p.canceled <- struct{}{}
			}
			return ctx.Err()
		}
	}
	p.mu.Lock()
	n := len(p.batches)
	fail := p.fail
	p.mu.Unlock()
	if p.delay != nil {
		time.Sleep(p.delay(n))
	}
	if fail {
		return errors.New("jetstream: no responders")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, published{project: projectID, events: events, span: trace.SpanContextFromContext(ctx)})
	return nil
}

func (p *memPublisher) setFail(fail bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = fail
}

func (p *memPublisher) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = nil
}

func (p *memPublisher) all() []*hogwirev1.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*hogwirev1.Event
	for _, b := range p.batches {
		out = append(out, b.events...)
	}
	return out
}

func (p *memPublisher) calls() []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]published(nil), p.batches...)
}

var fixedNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func testConfig(pub *memPublisher) capture.Config {
	return capture.Config{
		Tokens:    tokens{testToken: testProject, "phc_other": "proj-2"},
		Publisher: pub,
		Now:       func() time.Time { return fixedNow },
		Logger:    slog.New(slog.DiscardHandler),
	}
}
