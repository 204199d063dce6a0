package gctune

import (
	"io"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

func current() (gogc int, limit int64) {
	gogc = debug.SetGCPercent(100)
	debug.SetGCPercent(gogc)
	return gogc, debug.SetMemoryLimit(-1)
}

// Without settings in the environment, the collector gets GOGC=400 and a
// soft limit of 80 % of the container's memory limit, or of 960 MiB
// without one; the environment's own settings are left alone.
func TestApply(t *testing.T) {
	gogc, limit := current()
	t.Cleanup(func() {
		debug.SetGCPercent(gogc)
		debug.SetMemoryLimit(limit)
	})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("AUTOMEMLIMIT", "") // restored after the test
	os.Unsetenv("AUTOMEMLIMIT")
	want := int64(NoContainerLimit * LimitRatio)
	if c, err := memlimit.FromCgroup(); err == nil && c < math.MaxInt64 {
		want = int64(float64(c) * LimitRatio)
	}
	s := Apply(quiet)
	if g, l := current(); g != GOGC || l != want || s != (Settings{GOGC, want}) {
		t.Fatalf("GOGC %d, limit %d, settings %+v; want %d and %d", g, l, s, GOGC, want)
	}

	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOGC", "50")
	t.Setenv("GOMEMLIMIT", "100MiB")
	s = Apply(quiet)
	if g, l := current(); g != 100 || l != math.MaxInt64 || s.GOGC != 50 {
		t.Fatalf("with the environment's settings: GOGC %d, limit %d, settings %+v; want both left alone", g, l, s)
	}
}
