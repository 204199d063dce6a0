package controlplane

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/inputs"
)

// FilterCompiler compiles a destination's filters to one expression's
// bytecode (PostHog's JSON form), normally filters.Compile. Errors of type
// *filters.FieldError name the field.
type FilterCompiler func(*hogwirev1.Filters) ([]byte, error)

// Limits the API accepts, so that one destination cannot ask a node for
// unbounded resources.
const (
	maxTimeout      = 60 * time.Second
	maxFetchTimeout = 120 * time.Second
	maxFetches      = 100
	maxConcurrency  = 1024
	maxMemoryBytes  = 256 << 20
	maxMaskingTTL   = 7 * 24 * time.Hour
	maxHogBytes     = 256 << 10
	// The durable retry schedule: the parked stream keeps an invocation
	// 8 days (eventlog.MaxParkedAge).
	maxRetryWait   = 24 * time.Hour
	maxRetryGiveUp = 7 * 24 * time.Hour
	// Rate and backlog limits: bounded so that a typo is caught, not so
	// that they bind.
	maxRate             = 1e6
	maxRequestsInFlight = 1 << 20
	maxBacklogAge       = 7 * 24 * time.Hour
)

// compileDestination validates d in place and fills every server-computed
// field: the program's bytecode, each input's compiled templates and the
// filters' and masking's bytecode. Input values are plaintext here.
func (s *destinationServer) compileDestination(d *hogwirev1.Destination, v *violations) {
	const p = "destination."
	if strings.TrimSpace(d.DisplayName) == "" {
		v.add(p+"display_name", "is required")
	} else if len(d.DisplayName) > 200 {
		v.add(p+"display_name", "is longer than 200 bytes")
	}
	switch {
	case strings.TrimSpace(d.Hog) == "":
		v.add(p+"hog", "is required (or create the destination from a template)")
	case len(d.Hog) > maxHogBytes:
		v.add(p+"hog", "is longer than %d bytes", maxHogBytes)
	default:
		prog, err := codeKind(d).Compile(d.Hog, nil)
		if err != nil {
			addCompileError(v, p+"hog", err)
		} else if d.Bytecode, err = json.Marshal(prog); err != nil {
			v.add(p+"hog", "encoding bytecode: %v", err)
		}
	}
	s.compileInputs(d, v)
	checkKind(d, v)
	s.checkBatch(d, v)
	if d.Filters == nil {
		d.Filters = &hogwirev1.Filters{}
	}
	if s.compileFilters != nil {
		bc, err := s.compileFilters(d.Filters)
		if err != nil {
			addFilterError(v, p, err)
		} else {
			d.Filters.Bytecode = bc
		}
	}
	s.compileMappings(d, v)
	if m := d.Masking; m != nil {
		switch {
		case strings.TrimSpace(m.Hash) == "":
			v.add(p+"masking.hash", "is required when masking is set")
		default:
			prog, err := compiler.CompileExpr(m.Hash, compiler.Options{})
			if err != nil {
				addCompileError(v, p+"masking.hash", err)
			} else {
				m.Bytecode, _ = json.Marshal(prog)
			}
		}
		if ttl := m.Ttl.AsDuration(); m.Ttl == nil || ttl <= 0 || ttl > maxMaskingTTL {
			v.add(p+"masking.ttl", "must be between 1s and %s", maxMaskingTTL)
		}
		if m.Threshold < 0 {
			v.add(p+"masking.threshold", "must not be negative")
		}
	}
	if l := d.Limits; l != nil {
		checkDur := func(field string, d time.Duration, max time.Duration) {
			if d < 0 || d > max {
				v.add(p+"limits."+field, "must be between 0 (the default) and %s", max)
			}
		}
		checkDur("timeout", l.Timeout.AsDuration(), maxTimeout)
		checkDur("fetch_timeout", l.FetchTimeout.AsDuration(), maxFetchTimeout)
		if l.MaxFetches < 0 || l.MaxFetches > maxFetches {
			v.add(p+"limits.max_fetches", "must be between 0 (the default) and %d", maxFetches)
		}
		if l.MaxConcurrency < 0 || l.MaxConcurrency > maxConcurrency {
			v.add(p+"limits.max_concurrency", "must be between 0 (the default) and %d", maxConcurrency)
		}
		if l.MaxSteps < 0 {
			v.add(p+"limits.max_steps", "must not be negative")
		}
		if l.MaxMemoryBytes < 0 || l.MaxMemoryBytes > maxMemoryBytes {
			v.add(p+"limits.max_memory_bytes", "must be between 0 (the default) and %d", maxMemoryBytes)
		}
		checkDur("retry_base", l.RetryBase.AsDuration(), maxRetryWait)
		checkDur("retry_max", l.RetryMax.AsDuration(), maxRetryWait)
		checkDur("retry_give_up", l.RetryGiveUp.AsDuration(), maxRetryGiveUp)
		if b, m := l.RetryBase.AsDuration(), l.RetryMax.AsDuration(); b > 0 && m > 0 && m < b {
			v.add(p+"limits.retry_max", "must not be shorter than retry_base (%s)", b)
		}
		if r := l.MaxRate; math.IsNaN(r) || r < 0 || r > maxRate {
			v.add(p+"limits.max_rate", "must be between 0 (no limit) and %g requests per second", float64(maxRate))
		} else if r > 0 && r < 0.001 {
			v.add(p+"limits.max_rate", "must be at least 0.001 requests per second (one every 1000 s) when set")
		}
		if l.MaxRequestsInFlight < 0 || l.MaxRequestsInFlight > maxRequestsInFlight {
			v.add(p+"limits.max_requests_in_flight", "must be between 0 (no limit) and %d", maxRequestsInFlight)
		}
		if l.MaxBacklog < 0 {
			v.add(p+"limits.max_backlog", "must not be negative")
		}
		if l.MaxBacklogBytes < 0 {
			v.add(p+"limits.max_backlog_bytes", "must not be negative")
		}
		checkDur("max_backlog_age", l.MaxBacklogAge.AsDuration(), maxBacklogAge)
	}
}

// addCompileError records a compile error with its position.
func addCompileError(v *violations, field string, err error) {
	var ce *compiler.Error
	if errors.As(err, &ce) {
		v.add(field, "line %d, column %d: %s", ce.Line, ce.Column, ce.Msg)
		return
	}
	v.add(field, "%v", err)
}

// compileInputs checks the schema and each value against it, applies
// defaults and compiles templated strings (see inputs.Compile).
func (s *destinationServer) compileInputs(d *hogwirev1.Destination, v *violations) {
	if d.Inputs == nil {
		d.Inputs = map[string]*hogwirev1.InputValue{}
	}
	inputs.CompileAll(d.InputsSchema, d.Inputs, func(field, msg string) {
		v.add("destination."+field, "%s", msg)
	})
}
