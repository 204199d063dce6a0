package controlplane

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/store"
	"github.com/hogwire/hogwire/controlplane/testrun"
	"github.com/hogwire/hogwire/invocations"
	"github.com/hogwire/hogwire/resourcename"
)

// TestConfig configures TestService.Test: the fetch client and retry
// policy of its real fetch mode, and the links in the Hog globals.
type TestConfig = testrun.Config

// testServer serves TestService: it runs a saved or unsaved destination
// once, validated as DestinationService validates it.
type testServer struct {
	hogwirev1.UnimplementedTestServiceServer
	store *store.Store
	dests *destinationServer
	run   *testrun.Runner
	// events holds the events kept with invocation records (for
	// event_uuid); nil when the control plane keeps none.
	events storedEvents
}

// storedEvents reads the events kept with invocation records
// (*invocations.Store).
type storedEvents interface {
	Event(ctx context.Context, project, uuid string) ([]byte, error)
}

// unsavedID names an unsaved destination whose config has only a project
// name, so that templates reading the destination's name see a valid one.
const unsavedID = "unsaved"

// Test runs a destination once (see package testrun) and reports
// everything it did, secrets redacted. It writes nothing: no metrics, no
// logs, no health.
func (s *testServer) Test(ctx context.Context, req *hogwirev1.TestRequest) (*hogwirev1.TestResponse, error) {
	d, project, err := s.testTarget(ctx, req)
	if err != nil {
		return nil, err
	}
	event := req.GetEvent()
	if uuid := req.GetEventUuid(); uuid != "" {
		if event != nil {
			return nil, invalid("event_uuid", "set event or event_uuid, not both")
		}
		if event, err = s.storedEvent(ctx, project.GetName(), uuid); err != nil {
			return nil, err
		}
	} else if ev := event; ev != nil {
		var v violations
		if ev.Event == "" {
			v.add("event.event", "is required")
		}
		if ev.DistinctId == "" {
			v.add("event.distinct_id", "is required")
		}
		if err := v.err(); err != nil {
			return nil, err
		}
	}
	return s.run.Run(ctx, testrun.Request{Destination: d, Project: project, Event: event,
		RealFetch: req.GetFetchMode() == hogwirev1.FetchMode_FETCH_MODE_REAL, SkipFilters: req.GetSkipFilters(), Mapping: req.GetMapping()})
}

// testTarget returns the destination to run, plaintext secrets included,
// and its project.
func (s *testServer) testTarget(ctx context.Context, req *hogwirev1.TestRequest) (*hogwirev1.Destination, *hogwirev1.Project, error) {
	var d *hogwirev1.Destination
	switch t := req.GetTarget().(type) {
	case *hogwirev1.TestRequest_Destination:
		project, id, err := resourcename.ParseDestination(t.Destination)
		if err != nil {
			return nil, nil, invalid("destination", "%v", err)
		}
		st, err := s.store.Destination(ctx, project, id)
		if err != nil {
			return nil, nil, err
		}
		d = st.D
		if err := s.store.Unseal(d); err != nil {
			return nil, nil, err
		}
	case *hogwirev1.TestRequest_Config:
		if t.Config == nil {
			return nil, nil, invalid("config", "is required")
		}
		d = proto.CloneOf(t.Config)
		if p, err := resourcename.ParseProject(d.Name); err == nil {
			d.Name = resourcename.Destination(p, unsavedID)
		} else if _, _, err := resourcename.ParseDestination(d.Name); err != nil || strings.HasPrefix(d.Name, "projects/-/") {
			return nil, nil, invalid("config.name", "must name the project to run in: projects/{project} or projects/{project}/destinations/{destination}")
		}
		// Validated and compiled exactly as CreateDestination does; the
		// violations name the request's field.
		var v violations
		s.dests.compileDestination(d, &v)
		s.dests.checkNotification(ctx, d, &v)
		for _, fv := range v {
			fv.Field = "config." + strings.TrimPrefix(fv.Field, "destination.")
		}
		if err := v.err(); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, invalid("target", "set destination (a saved destination's name) or config (an unsaved one)")
	}
	projectID, _, _ := resourcename.ParseDestination(d.Name)
	project, _, err := s.store.Project(ctx, projectID)
	if err != nil {
		return nil, nil, err
	}
	return d, project, nil
}

// storedEventWait is how long a test looks for a stored event before
// calling it missing: an event delivered a moment ago is indexed about a
// second after its records.
const storedEventWait = 2 * time.Second

// storedEvent returns the event of uuid kept with project's invocation
// records.
func (s *testServer) storedEvent(ctx context.Context, project, uuid string) (*hogwirev1.Event, error) {
	if s.events == nil {
		return nil, status.Error(codes.Unimplemented, "stored events are not served: the control plane has no NATS connection")
	}
	id, err := resourcename.ParseProject(project)
	if err != nil {
		return nil, err
	}
	data, err := s.events.Event(ctx, id, uuid)
	// An event stored a moment ago may not be indexed yet (its entry
	// waits about a second for company, see package invocations): look
	// again for a while before calling it missing.
	for wait := time.Now().Add(storedEventWait); errors.Is(err, invocations.ErrNotFound) && time.Now().Before(wait); {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		data, err = s.events.Event(ctx, id, uuid)
	}
	if errors.Is(err, invocations.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "event_uuid: no event %q is kept in project %q (events are kept as long as invocation records)", uuid, id)
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading the stored event: %v", err)
	}
	ev := &hogwirev1.Event{}
	if err := proto.Unmarshal(data, ev); err != nil {
		return nil, status.Errorf(codes.DataLoss, "the stored event %q is unreadable: %v", uuid, err)
	}
	return ev, nil
}
