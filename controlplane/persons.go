package controlplane

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/store"
	"github.com/hogwire/hogwire/persons"
	"github.com/hogwire/hogwire/resourcename"
)

// PersonStore is the person store PersonService serves (package persons;
// data-plane nodes write it).
type PersonStore interface {
	Get(ctx context.Context, project, personID string) (*persons.Person, error)
	Lookup(ctx context.Context, project, distinctID string) (*persons.Person, error)
	List(ctx context.Context, project string, size int, token string) ([]*persons.Person, string, error)
	Delete(ctx context.Context, project, personID string) (*persons.Person, error)
}

// personServer serves PersonService; it answers UNIMPLEMENTED without a
// store.
type personServer struct {
	hogwirev1.UnimplementedPersonServiceServer
	store  *store.Store
	log    *slog.Logger
	people PersonStore
}

// personRef reads a request's project and person (by id or by distinct
// id), checking the project exists.
func (p *personServer) person(ctx context.Context, parent, personID, distinctID string) (string, *persons.Person, error) {
	if p.people == nil {
		return "", nil, status.Error(codes.Unimplemented, "person profiles are not served: the control plane has no NATS connection")
	}
	var v violations
	project, err := resourcename.ParseProject(parent)
	if err != nil {
		v.add("parent", "%v", err)
	}
	switch {
	case personID == "" && distinctID == "":
		v.add("person_id", "give person_id or distinct_id")
	case personID != "" && distinctID != "":
		v.add("distinct_id", "give person_id or distinct_id, not both")
	}
	if err := v.err(); err != nil {
		return "", nil, err
	}
	if _, _, err := p.store.Project(ctx, project); err != nil {
		return "", nil, err
	}
	var pe *persons.Person
	if personID != "" {
		pe, err = p.people.Get(ctx, project, personID)
	} else {
		pe, err = p.people.Lookup(ctx, project, distinctID)
	}
	switch {
	case errors.Is(err, persons.ErrNotFound) && personID != "":
		return "", nil, store.NotFound("person", resourcename.Project(project)+"/persons/"+personID)
	case errors.Is(err, persons.ErrNotFound):
		return "", nil, status.Errorf(codes.NotFound, "no person has distinct id %q in %s", distinctID, resourcename.Project(project))
	case err != nil:
		return "", nil, status.Errorf(codes.Unavailable, "reading the person store: %v", err)
	}
	return project, pe, nil
}

func (p *personServer) GetPerson(ctx context.Context, req *hogwirev1.GetPersonRequest) (*hogwirev1.GetPersonResponse, error) {
	project, pe, err := p.person(ctx, req.GetParent(), req.GetPersonId(), req.GetDistinctId())
	if err != nil {
		return nil, err
	}
	return &hogwirev1.GetPersonResponse{Person: personProfile(project, pe)}, nil
}

func (p *personServer) DeletePerson(ctx context.Context, req *hogwirev1.DeletePersonRequest) (*hogwirev1.DeletePersonResponse, error) {
	project, pe, err := p.person(ctx, req.GetParent(), req.GetPersonId(), req.GetDistinctId())
	if err != nil {
		return nil, err
	}
	deleted, err := p.people.Delete(ctx, project, pe.ID)
	switch {
	case errors.Is(err, persons.ErrNotFound):
		return nil, store.NotFound("person", resourcename.Project(project)+"/persons/"+pe.ID)
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "deleting from the person store: %v", err)
	}
	p.log.Info("person deleted", "project", project, "person_id", deleted.ID, "distinct_ids", len(deleted.DistinctIDs))
	return &hogwirev1.DeletePersonResponse{Person: personProfile(project, deleted)}, nil
}

func (p *personServer) ListPersons(ctx context.Context, req *hogwirev1.ListPersonsRequest) (*hogwirev1.ListPersonsResponse, error) {
	if p.people == nil {
		return nil, status.Error(codes.Unimplemented, "person profiles are not served: the control plane has no NATS connection")
	}
	project, err := resourcename.ParseProject(req.GetParent())
	if err != nil {
		return nil, invalid("parent", "%v", err)
	}
	if _, _, err := p.store.Project(ctx, project); err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size <= 0:
		size = 100
	case size > store.MaxPageSize:
		size = store.MaxPageSize
	}
	list, next, err := p.people.List(ctx, project, size, req.GetPageToken())
	switch {
	case errors.Is(err, persons.ErrBadToken):
		return nil, invalid("page_token", "is not a token from a previous ListPersons call")
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "reading the person store: %v", err)
	}
	resp := &hogwirev1.ListPersonsResponse{NextPageToken: next, Persons: make([]*hogwirev1.PersonProfile, len(list))}
	for i, pe := range list {
		resp.Persons[i] = personProfile(project, pe)
	}
	return resp, nil
}

func personProfile(project string, p *persons.Person) *hogwirev1.PersonProfile {
	props, err := structpb.NewStruct(p.Properties)
	if err != nil {
		props = &structpb.Struct{}
	}
	out := &hogwirev1.PersonProfile{Name: resourcename.Project(project) + "/persons/" + p.ID, Id: p.ID, Properties: props,
		DistinctIds: p.DistinctIDs, IsIdentified: p.IsIdentified, Version: p.Version}
	if !p.CreatedAt.IsZero() {
		out.CreateTime = timestamppb.New(p.CreatedAt)
	}
	return out
}
