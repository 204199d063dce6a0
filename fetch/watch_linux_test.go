package fetch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hogwire/hogwire/testport"
)

// A request body the server reads only after the check's deadline has
// passed goes out whole: the deadline interrupts the write, which goes on.
func TestPlainSlowReaderOutlastsTheCheck(t *testing.T) {
	addr := testport.Addr(t)
	// A small receive buffer, which accepted connections inherit, so
	// that the client's write blocks for a body of a few megabytes.
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		})
		return errors.Join(err, serr)
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		time.Sleep(3 * cancelCheckAfter) // the client's write blocks meanwhile
		r, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		b, _ := io.ReadAll(r.Body)
		got <- len(b)
		io.WriteString(conn, "HTTP/1.1 204 No Content\r\n\r\n")
	})
	c, _ := newTestClient(t)
	// More than the client's send buffer takes (4 MiB at most, as
	// net.ipv4.tcp_wmem has it by default).
	body := bytes.Repeat([]byte("x"), 16<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := c.Do(ctx, Request{Method: "POST", URL: "http://" + addr + "/", Body: body}, Policy{MaxRetries: -1, Timeout: time.Minute}, nil)
	if err != nil || resp.Status != http.StatusNoContent {
		t.Fatalf("%+v, %v", resp, err)
	}
	if n := <-got; n != len(body) {
		t.Fatalf("server read %d bytes, want %d", n, len(body))
	}
}
