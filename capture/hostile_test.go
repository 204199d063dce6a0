package capture_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hogwire/hogwire/dataplane/eventlog"
)

// peakMemory samples the process's memory from the runtime until stop is
// called, and returns the largest figure seen: what the Go runtime holds
// from the OS and has not returned (heap, stacks, runtime structures).
func peakMemory() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if v := m.Sys - m.HeapReleased; v > peak.Load() {
			peak.Store(v)
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		sample()
		return peak.Load()
	}
}

// 200 connections that send headers (some a little body) and stall, and
// 16 gzip bombs at once, leave the process well under 512 MiB, and an
// ordinary batch sent meanwhile is stored. Every limit is at its default.
func TestHostileClientsBoundedMemory(t *testing.T) {
	e := startEdge(t, nil, eventlog.Config{})
	addr := strings.TrimPrefix(e.url, "http://")
	stop := peakMemory()

	// Stalled clients: each announces a 20 MB body; half send nothing
	// more, half send 256 KiB of it first.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	head := "POST /batch/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
	partial := []byte(`{"api_key":"phc_testtoken","batch":[` + strings.Repeat(" ", 256<<10))
	for i := range 200 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			if _, err := c.Write(partial); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Gzip bombs: 1 GiB of zeros in about 1 MB, as 1024 gzip members.
	bomb := bytes.Repeat(gz(t, make([]byte, 1<<20)), 1024)
	var (
		wg       sync.WaitGroup
		statusMu sync.Mutex
		statuses = map[int]int{}
	)
	for range 16 {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, e.url+"/batch/", bytes.NewReader(bomb))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", "gzip")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statusMu.Lock()
			statuses[resp.StatusCode]++
			statusMu.Unlock()
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}

	// Ordinary batches, as posthog-node sends them, while the bombs are
	// in flight.
	var sent []map[string]any
	client := &http.Client{Timeout: time.Minute}
	for round := range 3 {
		events := make([]map[string]any, 100)
		for i := range events {
			events[i] = jsEvent(round*100+i, map[string]any{"plan": "pro", "n": i})
		}
		b, _ := json.Marshal(batch(events))
		start := time.Now()
		resp, err := client.Post(e.url+"/batch/", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		t.Logf("ordinary batch %d: %d in %v", round, resp.StatusCode, time.Since(start))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("an ordinary batch under attack: status %d", resp.StatusCode)
		}
		sent = append(sent, events...)
	}
	wg.Wait()
	peak := stop()
	t.Logf("bombs answered %v; peak memory %d MiB", statuses, peak>>20)
	for code := range statuses {
		if code != http.StatusRequestEntityTooLarge && code != http.StatusServiceUnavailable {
			t.Errorf("a bomb was answered %d", code)
		}
	}
	if peak > 512<<20 {
		t.Errorf("peak memory %d MiB, want under 512 MiB", peak>>20)
	}
	exactlyOnce(t, e.stored(t, len(sent)), uuidsOf(sent))
}
