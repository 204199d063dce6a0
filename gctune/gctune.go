// Package gctune sets the garbage collector of a process that runs a
// data-plane node. Go's default (GOGC=100: collect whenever the heap has
// doubled) suits a small heap that must stay small; a node delivering
// thousands of events a second spends a tenth of its CPU collecting at it.
// Apply lets the heap grow five times over what is live (GOGC=400) and
// bounds it instead by a soft memory limit taken from the container's,
// so a busy node collects less often yet never grows past its container:
// near the limit the collector runs as often as it must.
package gctune

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// Defaults of Apply.
const (
	// GOGC is the collector's target when the environment sets none.
	GOGC = 400
	// LimitRatio is the share of the container's memory limit (or of
	// NoContainerLimit) that becomes the soft memory limit; the rest is
	// left for what the runtime does not count as heap.
	LimitRatio = 0.8
	// NoContainerLimit stands for the container's limit where the process
	// has none (a laptop running hogwire dev): 768 MiB of heap before the
	// collector hurries, as the default Hog memory budget (256 MiB)
	// assumes.
	NoContainerLimit = 960 << 20
)

// Settings is what Apply left the collector with.
type Settings struct {
	GOGC        int   // the collector's target
	MemoryLimit int64 // the soft memory limit in bytes; math.MaxInt64: none
}

// Apply sets GOGC and the soft memory limit, each unless the environment
// sets it (GOGC, GOMEMLIMIT; AUTOMEMLIMIT=off leaves the limit alone), and
// logs what it did. It is for a binary's main to call: the settings are
// the process's.
func Apply(log *slog.Logger) Settings {
	var s Settings
	if v := os.Getenv("GOGC"); v != "" {
		s.GOGC, _ = strconv.Atoi(v) // "off" reads as 0
	} else {
		debug.SetGCPercent(GOGC)
		s.GOGC = GOGC
	}
	limit, err := memlimit.Set(
		memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.Limit(NoContainerLimit))),
		memlimit.WithRatio(LimitRatio),
	)
	if err != nil {
		log.Warn("cannot set the memory limit of the garbage collector", "err", err)
		limit = debug.SetMemoryLimit(-1)
	}
	s.MemoryLimit = limit
	log.Debug("garbage collector", "gogc", s.GOGC, "memory_limit", limit)
	return s
}
