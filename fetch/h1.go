package fetch

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// plain sends requests to http:// URLs over HTTP/1.1 on the calling
// goroutine: it writes the request and reads the response itself, on a
// pooled keep-alive connection.
//
// net/http's transport hands every request to two goroutines of its
// connection (one writes, one reads) and back, through channels and a
// select, with a timer context per attempt: for a small webhook on a kept-
// alive connection that was about 60 % of the client's CPU, more than
// the request's own system calls. Plain HTTP is what in-cluster receivers,
// sidecars and collectors speak, where that overhead is most of a
// delivery's cost; https:// (where TLS dominates and HTTP/2 multiplexes)
// and the rare requests the fast path does not take (signed ones, CONNECT,
// hosts that are not ASCII) stay with net/http. Both paths keep the same
// contract: typed errors and phases, body cap, gzip, redirects returned,
// keep-alive, and a replay on a kept-alive connection the server had
// closed.
type plain struct {
	dial           func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle        int
	maxIdlePerHost int
	maxPerHost     int
	idleTimeout    time.Duration

	mu      sync.Mutex
	hosts   map[string]*plainHost
	nidle   int
	sweptAt time.Time
}

// plainHost is one dial address's connections.
type plainHost struct {
	idle []*plainConn // the most recently used last
	// slots holds a token per request in flight when MaxConnsPerHost is
	// set: a request takes an idle connection or dials only with a token,
	// so open connections never outnumber the tokens.
	slots chan struct{}
}

// plainConn is a kept-alive connection and its buffers.
type plainConn struct {
	nc      net.Conn
	watch   cancelWatch // reads and writes go through it
	lr      limitedConn
	br      *bufio.Reader
	bw      *bufio.Writer
	usedAt  time.Time
	peeker  // asks the socket whether the server closed it
	fixed   fixedBody
	scratch []byte // a response header's bytes, reused
}

// limitedConn reads from the connection, refusing to go past n bytes while
// a response's header is read, as net/http's MaxResponseHeaderBytes does.
type limitedConn struct {
	r    *cancelWatch
	n    int64 // bytes still allowed; reset for every response
	read int64 // bytes read since the request was written
}

var errHeaderTooLarge = errors.New("server response headers exceeded the limit")

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	l.read += int64(n)
	return n, err
}

func newPlain(dial func(ctx context.Context, network, addr string) (net.Conn, error), o Options) *plain {
	return &plain{
		dial:           dial,
		maxIdle:        o.MaxIdleConns,
		maxIdlePerHost: o.MaxIdleConnsPerHost,
		maxPerHost:     o.MaxConnsPerHost,
		idleTimeout:    o.IdleConnTimeout,
		hosts:          map[string]*plainHost{},
	}
}

// maxResponseHeaderBytes bounds a response's status line and header, on
// both paths.
const maxResponseHeaderBytes = 256 << 10

// host returns addr's entry, made when missing. p.mu is held.
func (p *plain) host(addr string) *plainHost {
	h := p.hosts[addr]
	if h == nil {
		h = &plainHost{}
		if p.maxPerHost > 0 {
			h.slots = make(chan struct{}, p.maxPerHost)
		}
		p.hosts[addr] = h
	}
	return h
}

// take returns a live idle connection to addr, or nil.
func (p *plain) take(addr string, now time.Time) *plainConn {
	for {
		p.mu.Lock()
		h := p.hosts[addr]
		if h == nil || len(h.idle) == 0 {
			p.mu.Unlock()
			return nil
		}
		c := h.idle[len(h.idle)-1]
		h.idle[len(h.idle)-1] = nil
		h.idle = h.idle[:len(h.idle)-1]
		p.nidle--
		var stale []*plainConn
		if now.Sub(c.usedAt) > p.idleTimeout {
			// The rest are older still.
			stale = append(append(stale, c), h.idle...)
			p.nidle -= len(h.idle)
			clear(h.idle)
			h.idle = h.idle[:0]
		}
		p.mu.Unlock()
		if stale != nil {
			for _, c := range stale {
				c.nc.Close()
			}
			return nil
		}
		if now.Sub(c.usedAt) < peekAfter {
			return c
		}
		// The last exchange's deadline may have passed since (see
		// cancelWatch): the peek would see it rather than the socket.
		c.watch.setDeadline(time.Time{})
		if !c.closedByPeer() {
			return c
		}
		c.nc.Close()
	}
}

// peekAfter is how long a connection must have been idle before it is
// asked whether the server closed it: a server closes an idle connection
// only after its keep-alive timeout (seconds in Node, Go, nginx), so one
// reused sooner is alive, and a busy destination's requests pay no extra
// system call. A server quicker than this to close costs a retried
// attempt, or nothing for a request that may be replayed.
const peekAfter = 200 * time.Millisecond

// forget drops addr's entry when it holds nothing, so that hosts used once
// do not accumulate. p.mu is held.
func (p *plain) forget(addr string, h *plainHost) {
	if len(h.idle) == 0 && h.slots == nil {
		delete(p.hosts, addr)
	}
}

// put keeps c for the next request to addr, or closes it when the pool is
// full.
func (p *plain) put(addr string, c *plainConn, now time.Time) {
	c.usedAt = now
	var closing []*plainConn
	p.mu.Lock()
	h := p.host(addr)
	// Bytes already buffered past the response are bytes no request asked
	// for: the connection is out of step with the server.
	if c.br.Buffered() == 0 && len(h.idle) < p.maxIdlePerHost && p.nidle < p.maxIdle {
		h.idle = append(h.idle, c)
		p.nidle++
	} else {
		closing = append(closing, c)
	}
	if now.Sub(p.sweptAt) > p.idleTimeout {
		// Hosts no longer sent to would otherwise keep their connections
		// until the pool is full.
		p.sweptAt = now
		for a, h := range p.hosts {
			keep := h.idle[:0]
			for _, c := range h.idle {
				if now.Sub(c.usedAt) > p.idleTimeout {
					closing = append(closing, c)
					p.nidle--
				} else {
					keep = append(keep, c)
				}
			}
			clear(h.idle[len(keep):])
			h.idle = keep
			p.forget(a, h)
		}
	}
	p.mu.Unlock()
	for _, c := range closing {
		c.nc.Close()
	}
}

// closeIdle closes every idle connection.
func (p *plain) closeIdle() {
	p.mu.Lock()
	var closing []*plainConn
	for a, h := range p.hosts {
		closing = append(closing, h.idle...)
		clear(h.idle)
		h.idle = h.idle[:0]
		p.forget(a, h)
	}
	p.nidle = 0
	p.mu.Unlock()
	for _, c := range closing {
		c.nc.Close()
	}
}

// acquire takes one of addr's slots when connections per host are capped,
// waiting until deadline or ctx's end. It returns the function that gives
// the slot back.
func (p *plain) acquire(ctx context.Context, addr string, deadline time.Time) (func(), error) {
	if p.maxPerHost <= 0 {
		return func() {}, nil
	}
	p.mu.Lock()
	slots := p.host(addr).slots
	p.mu.Unlock()
	release := func() { <-slots }
	select {
	case slots <- struct{}{}:
		return release, nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, errPoolTimeout
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

var errPoolTimeout = timeoutError("timed out waiting for a connection")

// timeoutError is a net.Error that is a timeout.
type timeoutError string

func (e timeoutError) Error() string { return string(e) }
func (e timeoutError) Timeout() bool { return true }

func (e timeoutError) Temporary() bool { return true }

// connect dials addr for an attempt tracked by pt.
func (p *plain) connect(ctx context.Context, addr string, deadline time.Time, pt *phaseTracker) (*plainConn, error) {
	// The dialer's hooks advance a tracker of their own, which the
	// context keeps (and so the heap): the attempt's stays on its stack
	// for the attempts that reuse a connection.
	dt := new(phaseTracker)
	defer func() { pt.advance(dt.step.Load()) }()
	dctx, cancel := context.WithDeadline(context.WithValue(ctx, trackerKey{}, dt), deadline)
	defer cancel()
	nc, err := p.dial(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &plainConn{nc: nc}
	c.peeker.init(nc)
	c.watch.init(nc)
	c.lr.r = &c.watch
	c.br = bufio.NewReaderSize(&c.lr, 4<<10)
	c.bw = bufio.NewWriterSize(&c.watch, 4<<10)
	return c, nil
}

// cancelWatch ends an exchange whose context is cancelled, by setting a
// deadline in the past on its connection.
//
// Watching a context means registering with it (context.AfterFunc: a
// context, two closures, the parent's map of children and its channel,
// and their locks), which an exchange over in a millisecond, as most are,
// would pay for nothing. So the watch starts only once an
// exchange has lasted cancelCheckAfter: until then the connection's
// deadline is that moment, where a cancel that came meanwhile is seen.
// An exchange that outlasts it costs a timer's wake-up more.
type cancelWatch struct {
	nc   net.Conn
	kill func() // sets the past deadline; made once per connection

	// The exchange's.
	ctx      context.Context
	deadline time.Time
	// checking: the deadline set is the check's, before the exchange's
	// own; stop is the registration's, once made.
	checking bool
	stop     func() bool
	// set is the deadline last set on the connection (zero: unknown).
	set time.Time
}

// cancelCheckAfter is how long an exchange runs before its context is
// watched; a cancel is seen within it. Short beside a node's stop (whose
// grace is seconds), long beside a delivery to a sink that answers.
const cancelCheckAfter = 50 * time.Millisecond

func (w *cancelWatch) init(nc net.Conn) {
	w.nc = nc
	w.kill = func() { nc.SetDeadline(aLongTimeAgo) }
}

// start begins an exchange that starts at now, ends by deadline, and is
// ended by ctx's end.
func (w *cancelWatch) start(ctx context.Context, now, deadline time.Time) {
	w.ctx, w.deadline, w.stop = ctx, deadline, nil
	check := now.Add(cancelCheckAfter)
	switch {
	case !check.Before(deadline):
		w.setDeadline(deadline)
	case w.set.After(now.Add(cancelCheckAfter/2)) && !w.set.After(check):
		// A check set for an exchange just before is this one's too, a
		// little sooner: a connection in steady use changes its timer
		// (a microsecond, under load) only now and then.
	default:
		w.setDeadline(check)
	}
	w.checking = w.set.Before(deadline)
}

func (w *cancelWatch) setDeadline(t time.Time) {
	w.nc.SetDeadline(t)
	w.set = t
}

// end ends the exchange. False means that the context ended during it and
// its deadline may still land on the connection, which cannot be reused.
func (w *cancelWatch) end() bool {
	ok := w.stop == nil || w.stop()
	w.ctx, w.stop = nil, nil
	return ok
}

// watch starts watching the context as the check's deadline passed, or
// returns its error when it ended meanwhile.
func (w *cancelWatch) watch() error {
	w.checking = false
	if w.ctx.Err() != nil {
		return context.Cause(w.ctx)
	}
	w.setDeadline(w.deadline)
	if w.ctx.Done() != nil {
		w.stop = context.AfterFunc(w.ctx, w.kill)
	}
	return nil
}

// checkDue reports whether err is the check's deadline passing.
func (w *cancelWatch) checkDue(err error) bool {
	// A net.Conn's own deadline error first: isTimeout's errors.As
	// allocates.
	return w.checking && (errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err))
}

// Read reads from the connection; the check's deadline passing is not an
// error, as nothing was read.
func (w *cancelWatch) Read(p []byte) (int, error) {
	for {
		n, err := w.nc.Read(p)
		if err == nil || n > 0 || !w.checkDue(err) {
			return n, err
		}
		if err := w.watch(); err != nil {
			return 0, err
		}
	}
}

// Write writes to the connection, going on with the rest of p after the
// check's deadline passed.
func (w *cancelWatch) Write(p []byte) (int, error) {
	var written int
	for {
		n, err := w.nc.Write(p[written:])
		written += n
		if err == nil || !w.checkDue(err) {
			return written, err
		}
		if err := w.watch(); err != nil {
			return written, err
		}
	}
}

// exchange is one request and response on a connection.
type exchange struct {
	pr     *prepared
	phases *phaseTracker
	gzip   bool // gzip was asked for by the client, and is decoded
	max    int64

	// Set by roundTrip, for the decision to replay: whether the whole
	// request went out, and whether any byte of a response came back.
	sent, answered bool
}

// roundTrip sends e's request and reads its response on c, starting at
// now, to end by deadline or at ctx's end. keep reports whether c can
// carry another request. (ctx and the times are not e's: as the watch
// keeps them, e's pointers would escape with them, e.pr's allocation
// with them.)
func (e *exchange) roundTrip(ctx context.Context, c *plainConn, now, deadline time.Time) (resp *Response, keep bool, err error) {
	e.sent, e.answered = false, false
	c.watch.start(ctx, now, deadline)
	defer func() {
		if !c.watch.end() {
			keep = false
		}
	}()
	c.lr.read = 0
	e.write(c.bw)
	if err := c.bw.Flush(); err != nil {
		return nil, false, err
	}
	e.sent = true
	ra := new(responseAlloc)
	var h responseHead
	for informational := 0; ; informational++ {
		c.lr.n = maxResponseHeaderBytes
		h, err = readHead(c.br, e.pr.method == http.MethodHead, &c.scratch, ra.values[:])
		e.answered = c.lr.read > 0
		if err != nil {
			return nil, false, err
		}
		// 1xx responses (a 100 Continue the caller asked for with its
		// own Expect header, a 103 Early Hints) precede the real one.
		if h.status >= 200 || h.status == http.StatusSwitchingProtocols {
			break
		}
		if informational == 5 {
			return nil, false, fmt.Errorf("%w: too many 1xx informational responses", errMalformed)
		}
	}
	c.lr.n = 1<<63 - 1
	e.phases.advance(stepBody)
	var body io.Reader
	switch {
	case h.chunked:
		body = newChunkedBody(c.br)
	case h.length >= 0:
		c.fixed = fixedBody{r: c.br, n: h.length}
		body = &c.fixed
	default:
		body = c.br
	}
	length := h.length
	var gz *gzipBody
	if e.gzip && length != 0 && strings.EqualFold(h.header.Get("Content-Encoding"), "gzip") {
		// As net/http does for the gzip it asked for: the header no
		// longer describes the body it hands back.
		delete(h.header, "Content-Encoding")
		delete(h.header, "Content-Length")
		gz = &gzipBody{body: body}
		defer gz.release()
		body, length = gz, -1
	}
	data, truncated, err := readCapped(body, length, e.max)
	if err != nil {
		return nil, false, err
	}
	keep = !truncated && !h.close && h.status != http.StatusSwitchingProtocols && !e.pr.close
	if keep && gz != nil {
		// The decoder stops at the end of the gzip stream; the connection
		// is reusable only if the body ended there too.
		var one [1]byte
		n, err := gz.body.Read(one[:])
		keep = n == 0 && err == io.EOF
	}
	ra.resp = Response{Status: h.status, Header: h.header, Body: data, Truncated: truncated}
	return &ra.resp, keep, nil
}

// responseAlloc is a response and room for its header's values, in one
// allocation: most responses have no more header lines than this.
type responseAlloc struct {
	resp   Response
	values [8]string
}

// write writes e's request: request line, Host, the header, the length
// and the body, in one buffer so that a small request is one packet.
func (e *exchange) write(w *bufio.Writer) {
	pr := e.pr
	w.WriteString(pr.method)
	w.WriteByte(' ')
	w.WriteString(pr.requestURI)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(pr.target.Host)
	w.WriteString("\r\n")
	for k, vs := range pr.header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			// Written from the request itself, as net/http does.
			continue
		case "User-Agent":
			// net/http sends the first value, and nothing for an empty
			// one.
			if len(vs) > 0 && vs[0] != "" {
				writeHeaderLine(w, k, vs[0])
			}
			continue
		case "Authorization":
			if pr.auth != nil {
				continue // the URL's, written below
			}
		}
		for _, v := range vs {
			writeHeaderLine(w, k, v)
		}
	}
	if pr.auth != nil {
		writeHeaderLine(w, "Authorization", pr.auth[0])
	}
	if len(pr.userAgent) > 0 && pr.userAgent[0] != "" {
		writeHeaderLine(w, "User-Agent", pr.userAgent[0])
	}
	if len(pr.body) > 0 || pr.method == http.MethodPost || pr.method == http.MethodPut || pr.method == http.MethodPatch {
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(len(pr.body)), 10))
		w.WriteString("\r\n")
	}
	if e.gzip {
		w.WriteString("Accept-Encoding: gzip\r\n")
	}
	w.WriteString("\r\n")
	w.Write(pr.body)
}

func writeHeaderLine(w *bufio.Writer, k, v string) {
	w.WriteString(k)
	w.WriteString(": ")
	w.WriteString(strings.Trim(v, " \t"))
	w.WriteString("\r\n")
}

// attemptPlain makes one attempt of pr over the plain-HTTP path.
func (c *Client) attemptPlain(ctx context.Context, pr *prepared, p Policy, start time.Time) (*Response, error) {
	deadline := start.Add(p.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	var pt phaseTracker
	fail := func(err error) error {
		return classify(ctx, false, err, pt.phase(), time.Since(start), pr.host)
	}
	if ctx.Err() != nil {
		// As net/http: nothing is sent for a context that already ended.
		return nil, fail(context.Cause(ctx))
	}
	pool := c.plain
	release, err := pool.acquire(ctx, pr.addr, deadline)
	if err != nil {
		return nil, fail(err)
	}
	defer release()
	e := exchange{pr: pr, phases: &pt, gzip: pr.askGzip, max: p.MaxResponseBytes}
	for replayed := false; ; replayed = true {
		conn := pool.take(pr.addr, start)
		reused := conn != nil
		now := start
		if !reused {
			if conn, err = pool.connect(ctx, pr.addr, deadline, &pt); err != nil {
				return nil, fail(err)
			}
		}
		if !reused || replayed {
			now = time.Now()
		}
		pt.advance(stepResponse)
		resp, keep, err := e.roundTrip(ctx, conn, now, deadline)
		if err == nil {
			if keep {
				pool.put(pr.addr, conn, time.Now())
			} else {
				conn.nc.Close()
			}
			return resp, nil
		}
		conn.nc.Close()
		// A kept-alive connection the server closed as the request
		// arrived: nothing of a response came back. Sent again on a new
		// connection, once, when the server cannot have acted on it or the
		// request may be repeated, as net/http does.
		if reused && !replayed && !e.answered && ctx.Err() == nil && !isTimeout(err) && (!e.sent || pr.replayable) {
			continue
		}
		return nil, fail(err)
	}
}

// aLongTimeAgo is a deadline in the past, which ends a connection's
// pending reads and writes at once.
var aLongTimeAgo = time.Unix(1, 0)

// gzipBody decodes a gzip response body, from a pooled decoder made on
// the first read: an empty body is an empty body, not an error.
type gzipBody struct {
	body io.Reader
	zr   *gzip.Reader
	err  error
}

var gzipReaders sync.Pool

func (g *gzipBody) Read(p []byte) (int, error) {
	if g.zr == nil && g.err == nil {
		if zr, ok := gzipReaders.Get().(*gzip.Reader); ok {
			if g.err = zr.Reset(g.body); g.err == nil {
				g.zr = zr
			} else {
				gzipReaders.Put(zr)
			}
		} else {
			g.zr, g.err = gzip.NewReader(g.body)
		}
	}
	if g.err != nil {
		return 0, g.err
	}
	return g.zr.Read(p)
}

func (g *gzipBody) release() {
	if g.zr != nil {
		gzipReaders.Put(g.zr)
		g.zr = nil
	}
}
