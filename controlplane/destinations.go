package controlplane

import (
	"context"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/store"
	"github.com/hogwire/hogwire/resourcename"
)

// destinationServer serves DestinationService: destinations are validated
// and compiled (compile.go, batch.go) on every write, stored with secret
// inputs sealed, and each write is recorded in their history (history.go).
type destinationServer struct {
	hogwirev1.UnimplementedDestinationServiceServer
	store          *store.Store
	log            *slog.Logger
	now            func() time.Time
	templates      Templates
	compileFilters FilterCompiler
	// telemetry, when there is NATS, holds what nodes publish of each
	// destination's delivery (delivery.go).
	telemetry *telemetryStore
}

// mutableDestinationFields are the fields UpdateDestination may change.
func mutableDestinationFields() []string {
	return []string{
		"display_name", "description", "enabled", "hog", "inputs_schema", "inputs",
		"filters", "masking", "limits", "notification_destination", "batch",
		"mappings", "order",
	}
}

func (s *destinationServer) CreateDestination(ctx context.Context, req *hogwirev1.CreateDestinationRequest) (*hogwirev1.CreateDestinationResponse, error) {
	project, err := resourcename.ParseProject(req.GetParent())
	if err != nil {
		return nil, invalid("parent", "%v", err)
	}
	d := proto.Clone(req.GetDestination()).(*hogwirev1.Destination)
	if d == nil {
		return nil, invalid("destination", "is required")
	}
	id := req.GetDestinationId()
	if id == "" {
		id = newID("d")
	} else if !resourcename.ValidID(id) {
		return nil, invalid("destination_id", "must be 1 to 63 lowercase letters, digits or hyphens, starting with a letter")
	}
	if t := req.GetFromTemplate(); t != "" {
		if err := s.applyTemplate(d, t); err != nil {
			return nil, err
		}
	}
	if d.Kind == hogwirev1.FunctionKind_FUNCTION_KIND_UNSPECIFIED {
		d.Kind = hogwirev1.FunctionKind_FUNCTION_KIND_DESTINATION
	}
	if _, _, err := s.store.Project(ctx, project); err != nil {
		return nil, err
	}
	if clash, err := s.store.Destination(ctx, "-", id); err == nil {
		return nil, status.Errorf(codes.AlreadyExists, "destination id %q is taken (by %s)", id, clash.D.Name)
	} else if status.Code(err) != codes.NotFound {
		return nil, err
	}
	now := timestamppb.New(s.now())
	d.Name = resourcename.Destination(project, id)
	d.CreateTime, d.UpdateTime, d.Etag, d.Revision, d.Health = now, now, "", 0, nil
	var v violations
	s.compileDestination(d, &v)
	s.checkNotification(ctx, d, &v)
	if err := v.err(); err != nil {
		return nil, err
	}
	if req.GetValidateOnly() {
		return &hogwirev1.CreateDestinationResponse{Destination: s.present(d, nil)}, nil
	}
	val, err := s.store.Seal(d)
	if err != nil {
		return nil, err
	}
	key := s.store.Keys.Destination(project, id)
	history, err := s.historyOps(ctx, project, id, 0, nil, d)
	if err != nil {
		return nil, err
	}
	resp, err := s.store.Etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(s.store.Keys.Project(project)), ">", 0)).
		Then(append([]clientv3.Op{clientv3.OpPut(key, string(val)), clientv3.OpDelete(s.store.Keys.Health(project, id))}, history...)...).
		Commit()
	if err != nil {
		return nil, store.Err(err)
	}
	if !resp.Succeeded {
		return nil, status.Errorf(codes.Aborted, "destination %s was created, or its project deleted, concurrently", d.Name)
	}
	d.Revision = resp.Header.Revision
	s.log.Info("destination created", "destination", d.Name, "template", d.Template)
	return &hogwirev1.CreateDestinationResponse{Destination: s.present(d, nil)}, nil
}

// applyTemplate fills what d leaves empty from the template.
func (s *destinationServer) applyTemplate(d *hogwirev1.Destination, name string) error {
	id := strings.TrimPrefix(name, "templates/")
	if s.templates == nil {
		return invalid("from_template", "no templates are available")
	}
	t, ok := s.templates.Get(id)
	if !ok {
		return invalid("from_template", "template %q does not exist", name)
	}
	d.Template = "templates/" + id
	if tk := functionKind(t.Kind); d.Kind == hogwirev1.FunctionKind_FUNCTION_KIND_UNSPECIFIED {
		d.Kind = tk
	} else if d.Kind != tk {
		return invalid("destination.kind", "is %s but template %q makes a %s", kindWord(d.Kind), name, kindWord(tk))
	}
	if d.DisplayName == "" {
		d.DisplayName = t.DisplayName
	}
	if d.Description == "" {
		d.Description = t.Description
	}
	if d.Hog == "" {
		d.Hog = t.Hog
	}
	if len(d.InputsSchema) == 0 {
		d.InputsSchema = proto.CloneOf(&hogwirev1.Destination{InputsSchema: t.InputsSchema}).InputsSchema
	}
	if d.Filters == nil && t.Filters != nil {
		d.Filters = proto.CloneOf(t.Filters)
	}
	applyTemplateBatch(d, t)
	if len(d.Mappings) == 0 {
		d.Mappings = templateMappings(t)
	}
	if t.Limits != nil {
		// The template's limits (a vendor's documented rate limit, say)
		// are defaults: each one the destination sets wins.
		l := proto.CloneOf(t.Limits)
		if d.Limits != nil {
			proto.Merge(l, d.Limits)
		}
		d.Limits = l
	}
	return nil
}

// checkNotification validates notification_destination: another destination
// of the same project.
func (s *destinationServer) checkNotification(ctx context.Context, d *hogwirev1.Destination, v *violations) {
	//lint:ignore SA1019 a deprecated field is still validated when set
	n := d.NotificationDestination
	if n == "" {
		return
	}
	const f = "destination.notification_destination"
	project, id, err := resourcename.ParseDestination(n)
	myProject, myID, _ := resourcename.ParseDestination(d.Name)
	switch {
	case err != nil:
		v.add(f, "%v", err)
	case project != myProject:
		v.add(f, "must be a destination of the same project (%s)", resourcename.Project(myProject))
	case id == myID:
		v.add(f, "a destination cannot notify itself")
	default:
		if _, err := s.store.Destination(ctx, project, id); err != nil {
			v.add(f, "destination %s does not exist", n)
		}
	}
}

// redactSecrets removes the value of every secret input of d, in every
// form it may be held in, leaving secret_set to say one is set.
func redactSecrets(d *hogwirev1.Destination) {
	for _, in := range d.Inputs {
		if in.SecretSet {
			in.Value, in.Bytecode, in.ValueJson, in.BytecodeJson = nil, nil, "", ""
		}
	}
}

// present returns the API view of a destination: secrets redacted, health
// filled in (healthy since its last write when the health manager has not
// said otherwise), etag set.
func (s *destinationServer) present(d *hogwirev1.Destination, h *hogwirev1.DestinationHealth) *hogwirev1.Destination {
	out := proto.CloneOf(d)
	redactSecrets(out)
	if h == nil {
		h = &hogwirev1.DestinationHealth{State: hogwirev1.HealthState_HEALTH_STATE_HEALTHY, StateTime: out.UpdateTime}
	}
	out.Health = h
	out.Etag = store.Etag(out.Revision)
	return out
}

func (s *destinationServer) GetDestination(ctx context.Context, req *hogwirev1.GetDestinationRequest) (*hogwirev1.GetDestinationResponse, error) {
	project, id, err := resourcename.ParseDestination(req.GetName())
	if err != nil {
		return nil, invalid("name", "%v", err)
	}
	st, err := s.store.Destination(ctx, project, id)
	if err != nil {
		return nil, err
	}
	project, _, _ = resourcename.ParseDestination(st.D.Name)
	h, err := s.store.Health(ctx, project, id)
	if err != nil {
		return nil, err
	}
	out := s.present(st.D, h)
	out.Delivery = s.deliveryState(ctx, out.Name)
	return &hogwirev1.GetDestinationResponse{Destination: out}, nil
}

func (s *destinationServer) ListDestinations(ctx context.Context, req *hogwirev1.ListDestinationsRequest) (*hogwirev1.ListDestinationsResponse, error) {
	parent := req.GetParent()
	prefix := s.store.Keys.AllDestinations()
	healthPrefix := s.store.Keys.AllHealth()
	if parent != "projects/-" {
		project, err := resourcename.ParseProject(parent)
		if err != nil {
			return nil, invalid("parent", "%v", err)
		}
		prefix, healthPrefix = s.store.Keys.Destinations(project), s.store.Keys.ProjectHealth(project)
	}
	after, ok := store.DecodePageToken("destinations", req.GetPageToken())
	if !ok {
		return nil, invalid("page_token", "is not a token from a previous ListDestinations call with the same parent")
	}
	n := store.PageSize(req.GetPageSize())
	healthResp, err := s.store.Etcd.Get(ctx, healthPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, store.Err(err)
	}
	health := map[string]*hogwirev1.DestinationHealth{}
	for _, kv := range healthResp.Kvs {
		h := &hogwirev1.DestinationHealth{}
		if proto.Unmarshal(kv.Value, h) == nil {
			health[strings.TrimPrefix(string(kv.Key), s.store.Keys.AllHealth())] = h
		}
	}
	out := &hogwirev1.ListDestinationsResponse{}
	from := prefix
	if after != "" {
		from = prefix + after + "\x00"
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	for {
		resp, err := s.store.Etcd.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(int64(n+1)))
		if err != nil {
			return nil, store.Err(err)
		}
		for _, kv := range resp.Kvs {
			rel := strings.TrimPrefix(string(kv.Key), s.store.Keys.AllDestinations())
			from = string(kv.Key) + "\x00"
			d := &hogwirev1.Destination{}
			if err := proto.Unmarshal(kv.Value, d); err != nil {
				return nil, status.Errorf(codes.DataLoss, "decoding %s: %v", kv.Key, err)
			}
			d.Revision = kv.ModRevision
			v := s.present(d, health[rel])
			if !matchesList(req, v) {
				continue
			}
			if len(out.Destinations) == n {
				last := out.Destinations[n-1]
				lp, lid, _ := resourcename.ParseDestination(last.Name)
				out.NextPageToken = store.EncodePageToken("destinations", strings.TrimPrefix(s.store.Keys.Destination(lp, lid), prefix))
				return out, nil
			}
			out.Destinations = append(out.Destinations, v)
		}
		if !resp.More {
			return out, nil
		}
	}
}

func matchesList(req *hogwirev1.ListDestinationsRequest, d *hogwirev1.Destination) bool {
	if req.Enabled != nil && d.Enabled != req.GetEnabled() {
		return false
	}
	if req.HealthState != hogwirev1.HealthState_HEALTH_STATE_UNSPECIFIED && d.Health.GetState() != req.HealthState {
		return false
	}
	if t := req.GetTemplate(); t != "" && d.Template != t && d.Template != "templates/"+t {
		return false
	}
	if k := req.GetKind(); k != hogwirev1.FunctionKind_FUNCTION_KIND_UNSPECIFIED && functionKind(d.Kind) != k {
		return false
	}
	return true
}

// mutate is a read-modify-write of one destination: f changes the
// plaintext destination; the result is validated, compiled, sealed and
// written only if nobody wrote in between. resetHealth also clears the
// health manager's decision.
func (s *destinationServer) mutate(ctx context.Context, name, etag string, resetHealth bool, f func(d *hogwirev1.Destination) error) (*hogwirev1.Destination, error) {
	project, id, err := resourcename.ParseDestination(name)
	if err != nil {
		return nil, invalid("name", "%v", err)
	}
	var out *hogwirev1.Destination
	err = s.store.Retry(ctx, func() error {
		st, err := s.store.Destination(ctx, project, id)
		if err != nil {
			return err
		}
		if err := store.CheckEtag(etag, st.Rev); err != nil {
			return err
		}
		d := st.D
		if err := s.store.Unseal(d); err != nil {
			return err
		}
		before := proto.CloneOf(d)
		if err := f(d); err != nil {
			return err
		}
		d.UpdateTime = timestamppb.New(s.now())
		var v violations
		s.compileDestination(d, &v)
		s.checkNotification(ctx, d, &v)
		if err := v.err(); err != nil {
			return err
		}
		val, err := s.store.Seal(d)
		if err != nil {
			return err
		}
		p, _, _ := resourcename.ParseDestination(d.Name)
		key := s.store.Keys.Destination(p, id)
		ops := []clientv3.Op{clientv3.OpPut(key, string(val))}
		history, err := s.historyOps(ctx, p, id, st.Rev, before, d)
		if err != nil {
			return err
		}
		ops = append(ops, history...)
		if resetHealth {
			ops = append(ops, clientv3.OpDelete(s.store.Keys.Health(p, id)))
		}
		if d.Revision, err = s.store.Txn(ctx, key, st.Rev, ops...); err != nil {
			return err
		}
		var h *hogwirev1.DestinationHealth
		if !resetHealth {
			if h, err = s.store.Health(ctx, p, id); err != nil {
				return err
			}
		}
		out = s.present(d, h)
		return nil
	})
	return out, err
}

func (s *destinationServer) UpdateDestination(ctx context.Context, req *hogwirev1.UpdateDestinationRequest) (*hogwirev1.UpdateDestinationResponse, error) {
	in := req.GetDestination()
	if in == nil {
		return nil, invalid("destination", "is required")
	}
	paths, err := maskPaths(req.GetUpdateMask(), in, mutableDestinationFields())
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, invalid("update_mask", "names no field to update")
	}
	apply := func(d *hogwirev1.Destination) error {
		for _, p := range paths {
			switch p {
			case "display_name":
				d.DisplayName = in.DisplayName
			case "description":
				d.Description = in.Description
			case "enabled":
				d.Enabled = in.Enabled
			case "hog":
				d.Hog = in.Hog
			case "inputs_schema":
				d.InputsSchema = in.InputsSchema
			case "inputs":
				// Secret values cannot be read back, so an input left out of
				// the new map keeps its stored secret; null clears it.
				next := map[string]*hogwirev1.InputValue{}
				for k, v := range d.Inputs {
					if v.SecretSet {
						next[k] = v
					}
				}
				for k, v := range in.Inputs {
					next[k] = v
				}
				d.Inputs = next
			case "filters":
				d.Filters = in.Filters
			case "masking":
				d.Masking = in.Masking
			case "limits":
				d.Limits = in.Limits
			case "batch":
				d.Batch = in.Batch
			case "mappings":
				d.Mappings = in.Mappings
			case "order":
				d.Order = in.Order
			case "notification_destination":
				//lint:ignore SA1019 a deprecated field can still be set
				d.NotificationDestination = in.NotificationDestination
			default: // "inputs.<key>"
				key := strings.TrimPrefix(p, "inputs.")
				if v, ok := in.Inputs[key]; ok {
					if d.Inputs == nil {
						d.Inputs = map[string]*hogwirev1.InputValue{}
					}
					d.Inputs[key] = v
				} else {
					delete(d.Inputs, key)
				}
			}
		}
		return nil
	}
	if req.GetValidateOnly() {
		project, id, err := resourcename.ParseDestination(in.GetName())
		if err != nil {
			return nil, invalid("destination.name", "%v", err)
		}
		st, err := s.store.Destination(ctx, project, id)
		if err != nil {
			return nil, err
		}
		if err := s.store.Unseal(st.D); err != nil {
			return nil, err
		}
		_ = apply(st.D)
		var v violations
		s.compileDestination(st.D, &v)
		s.checkNotification(ctx, st.D, &v)
		if err := v.err(); err != nil {
			return nil, err
		}
		return &hogwirev1.UpdateDestinationResponse{Destination: s.present(st.D, nil)}, nil
	}
	// Any user edit resets the health state: a fixed destination deserves a
	// fresh start, and a user edit is the documented way out of a disable.
	d, err := s.mutate(ctx, in.GetName(), in.GetEtag(), true, apply)
	if err != nil {
		return nil, err
	}
	s.log.Info("destination updated", "destination", d.Name, "fields", paths)
	return &hogwirev1.UpdateDestinationResponse{Destination: d}, nil
}

func (s *destinationServer) DeleteDestination(ctx context.Context, req *hogwirev1.DeleteDestinationRequest) (*hogwirev1.DeleteDestinationResponse, error) {
	project, id, err := resourcename.ParseDestination(req.GetName())
	if err != nil {
		return nil, invalid("name", "%v", err)
	}
	var backlog int64
	err = s.store.Retry(ctx, func() error {
		st, err := s.store.Destination(ctx, project, id)
		if err != nil {
			return err
		}
		if err := store.CheckEtag(req.GetEtag(), st.Rev); err != nil {
			return err
		}
		backlog = s.deliveryState(ctx, st.D.Name).GetBacklogEvents()
		p, _, _ := resourcename.ParseDestination(st.D.Name)
		key := s.store.Keys.Destination(p, id)
		_, err = s.store.Txn(ctx, key, st.Rev, clientv3.OpDelete(key), clientv3.OpDelete(s.store.Keys.Health(p, id)), s.historyDelete(p, id))
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("destination deleted", "destination", req.GetName(), "backlog_dropped", backlog)
	return &hogwirev1.DeleteDestinationResponse{DroppedBacklogEvents: backlog}, nil
}

func (s *destinationServer) EnableDestination(ctx context.Context, req *hogwirev1.EnableDestinationRequest) (*hogwirev1.EnableDestinationResponse, error) {
	d, err := s.setEnabled(ctx, req.GetName(), req.GetEtag(), true)
	if err != nil {
		return nil, err
	}
	return &hogwirev1.EnableDestinationResponse{Destination: d}, nil
}

func (s *destinationServer) DisableDestination(ctx context.Context, req *hogwirev1.DisableDestinationRequest) (*hogwirev1.DisableDestinationResponse, error) {
	// The backlog as it stands before the data plane drops it.
	var backlog int64
	if project, id, err := resourcename.ParseDestination(req.GetName()); err == nil {
		if st, err := s.store.Destination(ctx, project, id); err == nil && st.D.Enabled {
			backlog = s.deliveryState(ctx, st.D.Name).GetBacklogEvents()
		}
	}
	d, err := s.setEnabled(ctx, req.GetName(), req.GetEtag(), false)
	if err != nil {
		return nil, err
	}
	return &hogwirev1.DisableDestinationResponse{Destination: d, DroppedBacklogEvents: backlog}, nil
}

// setEnabled enables or disables a destination. Enabling also resets its
// health: it is how a user re-enables a quarantined or disabled one.
func (s *destinationServer) setEnabled(ctx context.Context, name, etag string, enabled bool) (*hogwirev1.Destination, error) {
	d, err := s.mutate(ctx, name, etag, enabled, func(d *hogwirev1.Destination) error {
		d.Enabled = enabled
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("destination enabled changed", "destination", d.Name, "enabled", enabled)
	return d, nil
}
