package dataplane

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/dataplane/telemetry"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/resourcename"
)

// Source webhooks. The capture server hands each request to
// POST /public/webhooks/{id} to the node (webhooks.Receive), which runs
// the webhook's code on it at once, while the sender waits: the events
// the code captures are stored in the project's event log before the
// answer, so they go through transformations and destinations as
// captured events do, and a sender told 200 can count on them.

// webhook is one source webhook as one configuration has it.
type webhook struct {
	d       *hogwirev1.Destination
	prep    *executor.Destination
	name    string
	project *projectRoutes
	// skip is the metric counted instead of running it (quarantined); ""
	// runs it.
	skip string
}

// addWebhook prepares d, reusing prev's code when d did not change.
// Disabled ones are left out: their URL answers 404.
func addWebhook(prev *routing, d *hogwirev1.Destination, pr *projectRoutes, fvm *executor.FilterVM, log *slog.Logger) *webhook {
	if !d.Enabled {
		return nil
	}
	wh := &webhook{d: d, name: d.Name, project: pr, skip: skipMetric(d)}
	if old := prev.webhookOf(resourcename.ID(d.Name)); old != nil && sameRevision(old.d, d) {
		wh.prep = old.prep
		return wh
	}
	prep, err := executor.Prepare(d, executor.WithFilterVM(fvm))
	if err != nil {
		log.Error("cannot prepare source webhook; skipping it", "webhook", d.Name, "err", err)
		return nil
	}
	wh.prep = prep
	return wh
}

func (r *routing) webhookOf(id string) *webhook {
	if r == nil {
		return nil
	}
	return r.webhooks[id]
}

// webhooks runs source webhooks for the capture server.
type webhooks struct{ n *Node }

type webhookError struct {
	Error string `json:"error"`
}

// Receive runs webhook id on req and returns the answer.
func (w webhooks) Receive(ctx context.Context, id string, req *executor.Request) (int, any) {
	n := w.n
	wh := n.routes.Load().webhookOf(id)
	if wh == nil {
		return http.StatusNotFound, webhookError{"no such webhook"}
	}
	if wh.skip != "" {
		n.tel.Count(wh.name, wh.skip, 1)
		return http.StatusTooManyRequests, webhookError{"the webhook is disabled for now: it failed too often"}
	}
	res := wh.prep.Receive(ctx, req, wh.project.globals, executor.Options{Redact: true, NoDebugLogs: !n.cfg.ShipDebugLogs})
	status, body := http.StatusOK, any(map[string]string{"status": "ok"})
	ms := []telemetry.Metric{{Name: "succeeded", N: 1}}
	switch {
	case res.Status == executor.Succeeded:
		if len(res.Captures) > 0 && !n.ingestCaptures(ctx, wh.name, res.Captures, func(level hogwirev1.LogLevel, format string, args ...any) {
			res.Logs = append(res.Logs, executor.LogEntry{Time: time.Now(), Level: level, Message: fmt.Sprintf(format, args...)})
		}) {
			// The sender should retry: nothing was stored.
			status, body = http.StatusServiceUnavailable, webhookError{"the captured event could not be stored; retry"}
			ms = []telemetry.Metric{{Name: "failed", N: 1}}
			break
		}
		if res.HTTPStatus != 0 {
			status, body = res.HTTPStatus, res.HTTPBody
		}
	case res.ErrorKind == executor.KindSignature:
		// The sender's doing: failed, but no sign of poor health.
		status, body = http.StatusUnauthorized, webhookError{res.Error}
		ms = []telemetry.Metric{{Name: "failed", N: 1}}
	default:
		status, body = http.StatusInternalServerError, webhookError{"the webhook's code failed; its logs say why"}
		ms = []telemetry.Metric{{Name: "failed", N: 1}, {Name: "health_errors", N: 1}}
	}
	n.tel.Record(wh.name, ms, res.Duration)
	if len(res.Logs) > 0 {
		n.shipFunctionLogs(wh.name, "", res.Result)
	}
	return status, body
}
