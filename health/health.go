// Package health decides whether a process can serve, from periodic checks
// of what it depends on (etcd, NATS, its configuration), and answers the
// two questions an orchestrator asks separately: is the process alive
// (/livez: restart it if not) and can it take traffic now (/readyz: route
// to it or not). A store outage makes a process unready, never dead, so it
// is not restarted for something a restart cannot fix.
package health

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Check reports why the process cannot serve, or nil.
type Check func(ctx context.Context) error

// Checker runs checks and keeps their last results.
type Checker struct {
	log     *slog.Logger
	timeout time.Duration

	mu       sync.Mutex
	names    []string
	checks   map[string]Check
	results  map[string]error
	ready    bool
	ran      bool
	onChange []func(ready bool)
}

// New returns a checker that is not ready until its checks first pass.
// Each check run is bounded by timeout (default 2s).
func New(log *slog.Logger, timeout time.Duration) *Checker {
	if log == nil {
		log = slog.Default()
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Checker{log: log, timeout: timeout, checks: map[string]Check{}, results: map[string]error{}}
}

// Add registers a named check; a later Add with the same name replaces it.
func (c *Checker) Add(name string, check Check) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.checks[name]; !ok {
		c.names = append(c.names, name)
	}
	c.checks[name] = check
}

// OnChange calls fn with the new state whenever readiness changes, e.g. to
// set the gRPC health service's status.
func (c *Checker) OnChange(fn func(ready bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onChange = append(c.onChange, fn)
}

// Ready reports the state after the last run.
func (c *Checker) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

// CheckNow runs every check once, concurrently, and updates the state.
func (c *Checker) CheckNow(ctx context.Context) bool {
	c.mu.Lock()
	names := slices.Clone(c.names)
	checks := make([]Check, len(names))
	for i, n := range names {
		checks[i] = c.checks[n]
	}
	c.mu.Unlock()

	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, c.timeout)
			defer cancel()
			errs[i] = check(cctx)
		}()
	}
	wg.Wait()

	ready := true
	for _, err := range errs {
		if err != nil {
			ready = false
		}
	}
	c.mu.Lock()
	for i, n := range names {
		c.results[n] = errs[i]
	}
	changed := ready != c.ready || !c.ran
	c.ready, c.ran = ready, true
	hooks := slices.Clone(c.onChange)
	c.mu.Unlock()

	if changed {
		// One line per change of state, not one per check run.
		if ready {
			c.log.Info("ready")
		} else {
			var attrs []any
			for i, n := range names {
				if errs[i] != nil {
					attrs = append(attrs, slog.String(n, errs[i].Error()))
				}
			}
			c.log.Warn("not ready", attrs...)
		}
		for _, fn := range hooks {
			fn(ready)
		}
	}
	return ready
}

// Run checks now and then every interval until ctx ends.
func (c *Checker) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		c.CheckNow(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Handler serves GET /livez (200 while the process runs) and GET /readyz
// (200 when ready, 503 otherwise), each with a JSON body naming every
// check's result.
func (c *Checker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		ready, ran := c.ready, c.ran
		checks := map[string]string{}
		for _, n := range c.names {
			switch err, ok := c.results[n]; {
			case !ok:
				checks[n] = "not checked yet"
			case err != nil:
				checks[n] = err.Error()
			default:
				checks[n] = "ok"
			}
		}
		c.mu.Unlock()
		code, status := http.StatusOK, "ready"
		if !ready || !ran {
			code, status = http.StatusServiceUnavailable, "not ready"
		}
		writeJSON(w, code, map[string]any{"status": status, "checks": checks})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
