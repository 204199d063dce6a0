package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The sink runs in a process of its own, as a vendor's endpoint would: in
// the benchmark's process it would share the Go runtime with hogwire, and
// pay garbage-collection assists for hogwire's heap during hogwire's runs
// but not during the raw client's, which is not the comparison we want.
//
// It counts the events of POSTs to /hook it accepts (one per request, or
// the length of a webhook-batch request's batch) (between /down and /up it answers
// them 429 with Retry-After: 31, a rate limit fetch does not wait for
// within an invocation) and, between /latency/start and
// /latency/stop, records each delivery's latency from the "sent" field
// (nanoseconds since the epoch) of its JSON body.
func runSink() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var (
		count atomic.Int64
		track atomic.Bool
		down  atomic.Bool
		mu    sync.Mutex
		lat   []int64
	)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if down.Load() {
			w.Header().Set("Retry-After", "31")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if track.Load() {
			var m struct {
				Sent string `json:"sent"`
			}
			if json.Unmarshal(b, &m) == nil && m.Sent != "" {
				if ns, err := strconv.ParseInt(m.Sent, 10, 64); err == nil {
					d := time.Since(time.Unix(0, ns))
					mu.Lock()
					lat = append(lat, int64(d))
					mu.Unlock()
				}
			}
		}
		if bytes.HasPrefix(b, batchPrefix) {
			// A webhook-batch request: it delivers every event it holds.
			var m struct{ Batch []json.RawMessage }
			if json.Unmarshal(b, &m) == nil {
				count.Add(int64(len(m.Batch)))
				return
			}
		}
		count.Add(1)
	})
	mux.HandleFunc("POST /down", func(http.ResponseWriter, *http.Request) { down.Store(true) })
	mux.HandleFunc("POST /up", func(http.ResponseWriter, *http.Request) { down.Store(false) })
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, count.Load())
	})
	mux.HandleFunc("POST /latency/start", func(http.ResponseWriter, *http.Request) {
		mu.Lock()
		lat = lat[:0]
		mu.Unlock()
		track.Store(true)
	})
	mux.HandleFunc("POST /latency/stop", func(w http.ResponseWriter, _ *http.Request) {
		track.Store(false)
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(lat)
	})
	// The parent reads the address from the first line, and closes stdin
	// to stop the sink.
	fmt.Println("http://" + l.Addr().String())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		l.Close()
	}()
	err = http.Serve(l, mux)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// batchPrefix starts the body of a webhook-batch request.
var batchPrefix = []byte(`{"batch":[`)

// sinkClient starts the sink process and talks to it.
type sinkClient struct {
	cmd   *exec.Cmd
	stdin io.Closer
	base  string
	hc    *http.Client
}

func startSink() (*sinkClient, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-serve-sink")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("starting the sink: %w", err)
	}
	return &sinkClient{cmd: cmd, stdin: stdin, base: strings.TrimSpace(line), hc: &http.Client{}}, nil
}

func (s *sinkClient) hookURL() string { return s.base + "/hook" }

func (s *sinkClient) close() {
	s.stdin.Close()
	_ = s.cmd.Wait()
}

func (s *sinkClient) count() (int64, error) {
	resp, err := s.hc.Get(s.base + "/count")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(b), 10, 64)
}

// await polls the count until it reaches n.
func (s *sinkClient) await(n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := s.count()
		if err != nil {
			return err
		}
		if c >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the sink counted %d deliveries, want %d", c, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (s *sinkClient) post(path string) error {
	resp, err := s.hc.Post(s.base+path, "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// latencies stops recording and returns what was recorded.
func (s *sinkClient) latencies() ([]time.Duration, error) {
	resp, err := s.hc.Post(s.base+"/latency/stop", "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ns []int64
	if err := json.NewDecoder(resp.Body).Decode(&ns); err != nil {
		return nil, err
	}
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n)
	}
	return out, nil
}

// cpuTime is the user and system CPU time used so far by this process and
// the sink's, or 0 where /proc cannot tell.
func (s *sinkClient) cpuTime() time.Duration {
	return procCPU("self") + procCPU(strconv.Itoa(s.cmd.Process.Pid))
}

// procCPU reads utime and stime from /proc/PID/stat.
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name, field 2, is parenthesised and may hold spaces:
	// count fields after its closing parenthesis.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// utime and stime are fields 14 and 15 of the line, 11 and 12 after
	// the name, in clock ticks of 1/100 s on Linux.
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+st) * 10 * time.Millisecond
}
