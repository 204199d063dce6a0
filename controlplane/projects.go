package controlplane

import (
	"context"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/controlplane/store"
	"github.com/hogwire/hogwire/resourcename"
)

// projectServer serves ProjectService: projects and their capture tokens.
type projectServer struct {
	hogwirev1.UnimplementedProjectServiceServer
	store *store.Store
	log   *slog.Logger
	now   func() time.Time
}

func (s *projectServer) CreateProject(ctx context.Context, req *hogwirev1.CreateProjectRequest) (*hogwirev1.CreateProjectResponse, error) {
	p := proto.Clone(req.GetProject()).(*hogwirev1.Project)
	if p == nil {
		return nil, invalid("project", "is required")
	}
	var v violations
	id := req.GetProjectId()
	if id == "" {
		id = newID("p")
	} else if !resourcename.ValidID(id) {
		v.add("project_id", "must be 1 to 63 lowercase letters, digits or hyphens, starting with a letter")
	}
	validateProject(p, "project.", &v)
	if err := v.err(); err != nil {
		return nil, err
	}
	now := timestamppb.New(s.now())
	p.Name = resourcename.Project(id)
	p.CaptureToken = auth.NewToken("phc_")
	p.CreateTime, p.UpdateTime, p.Etag = now, now, ""
	val, err := proto.Marshal(p)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encoding project: %v", err)
	}
	key := s.store.Keys.Project(id)
	resp, err := s.store.Etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val)), clientv3.OpPut(s.store.Keys.Token(p.CaptureToken), id)).
		Commit()
	if err != nil {
		return nil, store.Err(err)
	}
	if !resp.Succeeded {
		return nil, status.Errorf(codes.AlreadyExists, "project %q already exists", p.Name)
	}
	p.Etag = store.Etag(resp.Header.Revision)
	s.log.Info("project created", "project", p.Name)
	return &hogwirev1.CreateProjectResponse{Project: p}, nil
}

func validateProject(p *hogwirev1.Project, prefix string, v *violations) {
	if p.DisplayName == "" {
		v.add(prefix+"display_name", "is required")
	} else if len(p.DisplayName) > 200 {
		v.add(prefix+"display_name", "is longer than 200 bytes")
	}
	if p.TimeZone != "" {
		if _, err := time.LoadLocation(p.TimeZone); err != nil {
			v.add(prefix+"time_zone", "%q is not an IANA time zone", p.TimeZone)
		}
	}
}

func (s *projectServer) GetProject(ctx context.Context, req *hogwirev1.GetProjectRequest) (*hogwirev1.GetProjectResponse, error) {
	id, err := resourcename.ParseProject(req.GetName())
	if err != nil {
		return nil, invalid("name", "%v", err)
	}
	p, _, err := s.store.Project(ctx, id)
	if err != nil {
		return nil, err
	}
	return &hogwirev1.GetProjectResponse{Project: p}, nil
}

func (s *projectServer) ListProjects(ctx context.Context, req *hogwirev1.ListProjectsRequest) (*hogwirev1.ListProjectsResponse, error) {
	after, ok := store.DecodePageToken("projects", req.GetPageToken())
	if !ok {
		return nil, invalid("page_token", "is not a token from a previous ListProjects call")
	}
	n := store.PageSize(req.GetPageSize())
	prefix := s.store.Keys.Projects()
	from := prefix
	if after != "" {
		from = prefix + after + "\x00"
	}
	resp, err := s.store.Etcd.Get(ctx, from, clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)), clientv3.WithLimit(int64(n+1)))
	if err != nil {
		return nil, store.Err(err)
	}
	out := &hogwirev1.ListProjectsResponse{}
	for i, kv := range resp.Kvs {
		if i == n {
			out.NextPageToken = store.EncodePageToken("projects", string(resp.Kvs[i-1].Key[len(prefix):]))
			break
		}
		p := &hogwirev1.Project{}
		if err := proto.Unmarshal(kv.Value, p); err != nil {
			return nil, status.Errorf(codes.DataLoss, "decoding %s: %v", kv.Key, err)
		}
		p.Etag = store.Etag(kv.ModRevision)
		out.Projects = append(out.Projects, p)
	}
	return out, nil
}

func (s *projectServer) UpdateProject(ctx context.Context, req *hogwirev1.UpdateProjectRequest) (*hogwirev1.UpdateProjectResponse, error) {
	in := req.GetProject()
	id, err := resourcename.ParseProject(in.GetName())
	if err != nil {
		return nil, invalid("project.name", "%v", err)
	}
	paths, err := maskPaths(req.GetUpdateMask(), in, []string{"display_name", "time_zone", "site_url"})
	if err != nil {
		return nil, err
	}
	out, err := s.modifyProject(ctx, id, in.GetEtag(), func(cur *hogwirev1.Project) ([]clientv3.Op, error) {
		for _, p := range paths {
			switch p {
			case "display_name":
				cur.DisplayName = in.DisplayName
			case "time_zone":
				cur.TimeZone = in.TimeZone
			case "site_url":
				cur.SiteUrl = in.SiteUrl
			}
		}
		var v violations
		validateProject(cur, "project.", &v)
		return nil, v.err()
	})
	if err != nil {
		return nil, err
	}
	return &hogwirev1.UpdateProjectResponse{Project: out}, nil
}

func (s *projectServer) DeleteProject(ctx context.Context, req *hogwirev1.DeleteProjectRequest) (*hogwirev1.DeleteProjectResponse, error) {
	id, err := resourcename.ParseProject(req.GetName())
	if err != nil {
		return nil, invalid("name", "%v", err)
	}
	err = s.store.Retry(ctx, func() error {
		cur, rev, err := s.store.Project(ctx, id)
		if err != nil {
			return err
		}
		if err := store.CheckEtag(req.GetEtag(), rev); err != nil {
			return err
		}
		dests, err := s.store.Etcd.Get(ctx, s.store.Keys.Destinations(id), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return store.Err(err)
		}
		if dests.Count > 0 && !req.GetForce() {
			return status.Errorf(codes.FailedPrecondition, "project %s has %d destinations: delete them first or set force", req.GetName(), dests.Count)
		}
		pk := s.store.Keys.Project(id)
		_, err = s.store.Txn(ctx, pk, rev,
			clientv3.OpDelete(pk),
			clientv3.OpDelete(s.store.Keys.Token(cur.CaptureToken)),
			clientv3.OpDelete(s.store.Keys.Destinations(id), clientv3.WithPrefix()),
			clientv3.OpDelete(s.store.Keys.ProjectHealth(id), clientv3.WithPrefix()),
		)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("project deleted", "project", req.GetName())
	return &hogwirev1.DeleteProjectResponse{}, nil
}

func (s *projectServer) RotateCaptureToken(ctx context.Context, req *hogwirev1.RotateCaptureTokenRequest) (*hogwirev1.RotateCaptureTokenResponse, error) {
	id, err := resourcename.ParseProject(req.GetName())
	if err != nil {
		return nil, invalid("name", "%v", err)
	}
	out, err := s.modifyProject(ctx, id, req.GetEtag(), func(cur *hogwirev1.Project) ([]clientv3.Op, error) {
		old := cur.CaptureToken
		cur.CaptureToken = auth.NewToken("phc_")
		return []clientv3.Op{clientv3.OpDelete(s.store.Keys.Token(old)), clientv3.OpPut(s.store.Keys.Token(cur.CaptureToken), id)}, nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("capture token rotated", "project", req.GetName())
	return &hogwirev1.RotateCaptureTokenResponse{Project: out}, nil
}

// ProjectByToken resolves a capture token to its project id.
func (s *Server) ProjectByToken(ctx context.Context, token string) (string, error) {
	resp, err := s.store.Etcd.Get(ctx, s.store.Keys.Token(token))
	if err != nil {
		return "", store.Err(err)
	}
	if len(resp.Kvs) == 0 {
		return "", status.Error(codes.Unauthenticated, "unknown capture token")
	}
	return string(resp.Kvs[0].Value), nil
}

// modifyProject is a read-modify-write of one project: change edits it (and
// may add operations to the same transaction), and the result is written
// only if nobody wrote in between; a stale etag fails with ABORTED.
func (s *projectServer) modifyProject(ctx context.Context, id, etag string, change func(*hogwirev1.Project) ([]clientv3.Op, error)) (*hogwirev1.Project, error) {
	var out *hogwirev1.Project
	err := s.store.Retry(ctx, func() error {
		cur, rev, err := s.store.Project(ctx, id)
		if err != nil {
			return err
		}
		if err := store.CheckEtag(etag, rev); err != nil {
			return err
		}
		also, err := change(cur)
		if err != nil {
			return err
		}
		cur.UpdateTime, cur.Etag = timestamppb.New(s.now()), ""
		newRev, err := s.store.Put(ctx, s.store.Keys.Project(id), rev, cur, also...)
		if err != nil {
			return err
		}
		cur.Etag = store.Etag(newRev)
		out = cur
		return nil
	})
	return out, err
}
