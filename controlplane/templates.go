package controlplane

import (
	"context"
	"strings"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/store"
)

// templateServer serves TemplateService from the shipped catalogue.
type templateServer struct {
	hogwirev1.UnimplementedTemplateServiceServer
	templates Templates
}

func (s *templateServer) ListTemplates(_ context.Context, req *hogwirev1.ListTemplatesRequest) (*hogwirev1.ListTemplatesResponse, error) {
	after, ok := store.DecodePageToken("templates", req.GetPageToken())
	if !ok {
		return nil, invalid("page_token", "is not a token from a previous ListTemplates call")
	}
	var all []*hogwirev1.Template
	if s.templates != nil {
		all = s.templates.List()
	}
	n := store.PageSize(req.GetPageSize())
	out := &hogwirev1.ListTemplatesResponse{}
	started := after == ""
	for _, t := range all {
		if !started {
			started = t.Name == after
			continue
		}
		if c := req.GetCategory(); c != "" && !strings.EqualFold(t.Category, c) {
			continue
		}
		if k := req.GetKind(); k != hogwirev1.FunctionKind_FUNCTION_KIND_UNSPECIFIED && functionKind(t.Kind) != k {
			continue
		}
		if len(out.Templates) == n {
			out.NextPageToken = store.EncodePageToken("templates", out.Templates[n-1].Name)
			break
		}
		out.Templates = append(out.Templates, t)
	}
	return out, nil
}

func (s *templateServer) GetTemplate(_ context.Context, req *hogwirev1.GetTemplateRequest) (*hogwirev1.GetTemplateResponse, error) {
	id, ok := strings.CutPrefix(req.GetName(), "templates/")
	if !ok || id == "" {
		return nil, invalid("name", "%q is not a template name (templates/{template})", req.GetName())
	}
	if s.templates != nil {
		if t, ok := s.templates.Get(id); ok {
			return &hogwirev1.GetTemplateResponse{Template: t}, nil
		}
	}
	return nil, store.NotFound("template", req.GetName())
}
