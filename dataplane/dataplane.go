// Package dataplane is a stateless node that ingests events, runs the
// matching destinations' Hog code and delivers what it fetches.
package dataplane

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"google.golang.org/grpc"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/auth"
)

// Config configures a node.
type Config struct {
	// NodeID names the node to the control plane; unique per process.
	NodeID string
	Logger *slog.Logger
}

// Node is one data-plane process.
type Node struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	hogwirev1.UnimplementedEventServiceServer
}

// New returns a node for cfg.
func New(cfg Config) *Node {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	n.mux.HandleFunc("GET /_health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	capture := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotImplemented, map[string]string{
			"type": "server_error", "code": "not_implemented",
			"detail": "event ingest is not implemented yet in this build",
		})
	}
	for _, p := range []string{"/batch", "/capture", "/e", "/i/v0/e", "/track"} {
		n.mux.HandleFunc("POST "+p+"/", capture)
		n.mux.HandleFunc("POST "+p, capture)
	}
	return n
}

// Register adds the node's gRPC services (ingest) to gs.
func (n *Node) Register(gs grpc.ServiceRegistrar) {
	hogwirev1.RegisterEventServiceServer(gs, n)
}

// Roles says which token each data-plane service requires.
func Roles() map[string]auth.Role {
	return map[string]auth.Role{hogwirev1.EventService_ServiceDesc.ServiceName: auth.Capture}
}

// Handler serves the PostHog-compatible HTTP capture API.
func (n *Node) Handler() http.Handler { return n.mux }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
