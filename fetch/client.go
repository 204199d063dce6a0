package fetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Request is one outbound HTTP request. An empty Method means GET.
// Do reads Header's value slices without copying them: they must not
// change until Do returns.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// Sign, when set, authenticates every attempt (see [Signing]).
	Sign *Signing `json:",omitempty"`
	// Timeout, when set and shorter than the Policy's, bounds each attempt
	// of this request instead.
	Timeout time.Duration `json:",omitempty"`
}

// Response is the last response received. Status may be any code,
// including 3xx (redirects are not followed) and a 5xx that was still
// failing after the last retry.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Truncated reports that the body was longer than
	// Policy.MaxResponseBytes and Body holds only its beginning.
	Truncated bool
	// Attempts is how many attempts were made, this one included.
	Attempts int
}

// Attempt describes one finished attempt, for logging and metrics.
type Attempt struct {
	N         int           // 1-based
	Max       int           // the most attempts this call may make
	Status    int           // 0 when Err is set
	Err       error         // a typed error when no response was received
	Duration  time.Duration // time the attempt took
	WillRetry bool
	RetryIn   time.Duration // the wait before the next attempt, when WillRetry
	// RetryAfter is the response's Retry-After, read (0 when it has none,
	// or an unreadable one).
	RetryAfter time.Duration
}

// Options configure a [Client]. The zero value is a production client that
// allows only public addresses.
type Options struct {
	// AllowCIDRs opens ranges the egress guard would otherwise refuse.
	AllowCIDRs []netip.Prefix
	// TLSConfig is cloned and used for https destinations; nil means the
	// system roots with TLS 1.2 as the minimum.
	TLSConfig *tls.Config
	// Now is the clock requests are signed with (see [Signing]); nil
	// means time.Now. Tests set it to reproduce signatures.
	Now func() time.Time
	// Resolver resolves destination hostnames; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// UserAgent is sent when a request sets none. Default "hogwire".
	UserAgent string
	// MaxIdleConnsPerHost is how many keep-alive connections are kept per
	// destination host. Default MaxIdleConns: destinations that share a
	// vendor's host (every project's Slack webhook) together keep hundreds
	// of requests in flight, and a connection that finds no idle slot on
	// its way back is closed, so the next request pays a new TCP and TLS
	// handshake. A per-host cap below the host's peak concurrency turns
	// every dip in load into closes and every rise into dials: ten
	// destinations of 64 requests each to one host, under a cap of 512,
	// closed and redialled a connection every 17 deliveries.
	MaxIdleConnsPerHost int
	// MaxIdleConns bounds keep-alive connections across all hosts, so
	// thousands of rarely used destinations cannot pin thousands of
	// sockets. Default 2048.
	MaxIdleConns int
	// MaxConnsPerHost caps connections per host; 0 means no cap. Per
	// destination concurrency is meant to be limited by the caller.
	MaxConnsPerHost int
	// DialTimeout bounds DNS plus TCP connect. Default 5s; the attempt
	// timeout still applies when it is shorter.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake. Default 5s.
	TLSHandshakeTimeout time.Duration
	// IdleConnTimeout closes keep-alive connections unused for this long.
	// Default 90s.
	IdleConnTimeout time.Duration
}

// Client sends requests with retries through the egress guard. It is safe
// for concurrent use; one is meant to be shared by the whole process so
// that connections are reused.
type Client struct {
	transport *http.Transport // https://, and what plain does not take
	plain     *plain          // http://
	dialer    *net.Dialer
	// dialContext opens every connection of both paths; tests wrap it.
	dialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// userAgent is the header value shared, read-only, by every request
	// that names none, rather than a slice allocated per request.
	userAgent []string
	// sleep waits between attempts; tests replace it to observe waits
	// without spending them.
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time

	// targets caches parsed URLs: a destination sends to the same few
	// URLs again and again. Bounded: it is emptied when full.
	targetsMu sync.RWMutex
	targets   map[string]*target
}

// maxTargets bounds the URL cache; URLs that differ per event (an id in
// the path) only cycle through it.
const maxTargets = 1024

// target is a parsed, validated request URL.
type target struct {
	u    *url.URL // without userinfo; never modified
	auth []string // Authorization from the URL's userinfo, or nil; never modified
	// plain is set for the URLs the plain-HTTP path takes: http://, an
	// ASCII host. addr is then the address to dial and requestURI what
	// the request line names.
	plain      bool
	addr       string
	requestURI string
}

// New returns a Client configured by opts.
func New(opts Options) *Client {
	if opts.UserAgent == "" {
		opts.UserAgent = "hogwire"
	}
	if opts.MaxIdleConns <= 0 {
		opts.MaxIdleConns = 2048
	}
	if opts.MaxIdleConnsPerHost <= 0 {
		opts.MaxIdleConnsPerHost = opts.MaxIdleConns
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.TLSHandshakeTimeout <= 0 {
		opts.TLSHandshakeTimeout = 5 * time.Second
	}
	if opts.IdleConnTimeout <= 0 {
		opts.IdleConnTimeout = 90 * time.Second
	}
	var tlsConf *tls.Config
	if opts.TLSConfig != nil {
		tlsConf = opts.TLSConfig.Clone()
	} else {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Client{userAgent: []string{opts.UserAgent}, sleep: sleepCtx, now: opts.Now}
	g := newGuard(opts.AllowCIDRs)
	c.dialer = &net.Dialer{
		Timeout:   opts.DialTimeout,
		KeepAlive: 30 * time.Second,
		Resolver:  opts.Resolver,
		ControlContext: func(ctx context.Context, network, address string, rc syscall.RawConn) error {
			if t := trackerFrom(ctx); t != nil {
				t.advance(stepDial)
			}
			return g.control(ctx, network, address, rc)
		},
	}
	c.dialContext = c.dial
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return c.dialContext(ctx, network, addr)
	}
	c.plain = newPlain(dial, opts)
	c.transport = &http.Transport{
		// No proxy, whatever the environment says: see the package doc.
		Proxy:                  nil,
		DialContext:            dial,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    opts.TLSHandshakeTimeout,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           opts.MaxIdleConns,
		MaxIdleConnsPerHost:    opts.MaxIdleConnsPerHost,
		MaxConnsPerHost:        opts.MaxConnsPerHost,
		IdleConnTimeout:        opts.IdleConnTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		// Detect HTTP/2 connections that died silently instead of letting
		// every request on them time out.
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     15 * time.Second,
		},
	}
	return c
}

// dial connects for the transport. The attempt that asked for the
// connection learns its DNS step here and its connect step in the
// dialer's Control hook (see [phaseTracker.hook]).
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if t := trackerFrom(ctx); t != nil {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if _, err := netip.ParseAddr(host); err != nil {
				// A name, which the dialer looks up first.
				t.advance(stepDNS)
			}
		}
	}
	return c.dialer.DialContext(ctx, network, addr)
}

// CloseIdleConnections closes keep-alive connections not in use.
func (c *Client) CloseIdleConnections() {
	c.transport.CloseIdleConnections()
	c.plain.closeIdle()
}

// Do sends req, retrying as p allows, and returns the last response. A
// non-2xx status is not an error. An error means no usable response: it is
// a *TimeoutError, *ConnError or *EgressError, wraps ErrInvalidRequest, or
// wraps the context's error when ctx ended. If ctx has a deadline that
// would pass before the next retry, Do stops early and returns what it has.
//
// observe, when not nil, is called synchronously after every attempt.
func (c *Client) Do(ctx context.Context, req Request, p Policy, observe func(Attempt)) (*Response, error) {
	pr, err := c.prepare(req)
	if err != nil {
		return nil, err
	}
	p = p.withDefaults()
	if req.Timeout > 0 && req.Timeout < p.Timeout {
		p.Timeout = req.Timeout
	}
	maxAttempts := p.MaxRetries + 1
	for n := 1; ; n++ {
		start := time.Now()
		resp, err := c.attempt(ctx, &pr, p, start)
		a := Attempt{N: n, Max: maxAttempts, Err: err, Duration: time.Since(start)}
		if resp != nil {
			a.Status = resp.Status
			if resp.Status >= 400 {
				a.RetryAfter, _ = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
			}
		}
		if n < maxAttempts && ctx.Err() == nil {
			if err != nil {
				a.WillRetry = retriable(err)
			} else {
				a.WillRetry = RetriableStatus(resp.Status)
			}
		}
		if a.WillRetry {
			a.RetryIn = p.backoff(n)
			if resp != nil {
				if ra := a.RetryAfter; ra > 0 || resp.Header.Get("Retry-After") == "0" {
					a.RetryIn = ra
					if ra > p.MaxRetryAfter {
						// Retrying sooner than the server asked would be
						// hammering it: give the response back, for the
						// caller to retry later (the data plane parks it).
						a.WillRetry, a.RetryIn = false, 0
					}
				}
			}
			if a.WillRetry && p.NotBefore != nil {
				if wait := time.Until(p.NotBefore()); wait > a.RetryIn {
					a.RetryIn = wait
					if wait > p.MaxRetryAfter {
						a.WillRetry, a.RetryIn = false, 0
					}
				}
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= a.RetryIn {
				// The next attempt could not finish in time; waiting would
				// only turn a real answer into a context error.
				a.WillRetry, a.RetryIn = false, 0
			}
		}
		if observe != nil {
			observe(a)
		}
		giveBack := func() (*Response, error) {
			if err != nil {
				return nil, fmt.Errorf("fetch %s %s: attempt %d/%d: %w", pr.method, pr.host, n, maxAttempts, err)
			}
			resp.Attempts = n
			return resp, nil
		}
		if !a.WillRetry || (p.BeforeRetry != nil && !p.BeforeRetry(a)) {
			return giveBack()
		}
		if err := c.sleep(ctx, a.RetryIn); err != nil {
			return nil, fmt.Errorf("fetch %s %s: waiting to retry after attempt %d/%d: %w", pr.method, pr.host, n, maxAttempts, err)
		}
		// A pause may have been set or lengthened while this call slept.
		for waited := a.RetryIn; p.NotBefore != nil; {
			wait := time.Until(p.NotBefore())
			if wait <= 0 {
				break
			}
			if waited += wait; waited > p.MaxRetryAfter {
				return giveBack()
			}
			if err := c.sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("fetch %s %s: waiting to retry after attempt %d/%d: %w", pr.method, pr.host, n, maxAttempts, err)
			}
		}
	}
}

// prepared is a validated request, shared read-only by its attempts.
type prepared struct {
	method string
	target *url.URL // without userinfo; never modified
	host   string   // host[:port], for errors
	header http.Header
	body   []byte
	sign   *Signing
	// auth and userAgent are set on the plain path when header is the
	// caller's own map, not a copy: the Authorization from the URL to
	// send instead of the header's, and the User-Agent to send as the
	// header has none.
	auth, userAgent []string

	// For the plain-HTTP path (see [plain]), set when it takes the request.
	plain      bool
	addr       string
	requestURI string
	askGzip    bool // no Accept-Encoding or Range of the caller's, not HEAD
	close      bool // the caller sent Connection: close
	replayable bool // may be sent again after a kept-alive connection broke
}

func (c *Client) prepare(r Request) (prepared, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	if !isToken(method) {
		return prepared{}, fmt.Errorf("%w: invalid method %q", ErrInvalidRequest, method)
	}
	t, err := c.target(r.URL)
	if err != nil {
		return prepared{}, err
	}
	canonical := true
	for k, vs := range r.Header {
		if !isToken(k) {
			return prepared{}, fmt.Errorf("%w: invalid header name %q", ErrInvalidRequest, k)
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return prepared{}, fmt.Errorf("%w: invalid value for header %q", ErrInvalidRequest, k)
			}
		}
		// CanonicalHeaderKey returns a canonical key itself, unallocated.
		canonical = canonical && http.CanonicalHeaderKey(k) == k
	}
	pr := prepared{method: method, target: t.u, host: t.u.Host, header: r.Header, body: r.Body, sign: r.Sign}
	plain := t.plain && r.Sign == nil && method != http.MethodConnect
	if h := r.Header; plain && canonical {
		// The plain path writes the caller's header as it is, and what
		// the client adds besides it: no copy of the map per request.
		if t.auth != nil && h.Get("Authorization") == "" {
			pr.auth = t.auth
		}
		if _, ok := h["User-Agent"]; !ok {
			pr.userAgent = c.userAgent
		}
	} else {
		h := make(http.Header, len(r.Header)+2)
		for k, vs := range r.Header {
			h[http.CanonicalHeaderKey(k)] = vs
		}
		if t.auth != nil && h.Get("Authorization") == "" {
			h["Authorization"] = t.auth
		}
		if _, ok := h["User-Agent"]; !ok {
			h["User-Agent"] = c.userAgent
		}
		pr.header = h
	}
	if plain {
		h := pr.header
		pr.plain, pr.addr, pr.requestURI = true, t.addr, t.requestURI
		_, ae := h["Accept-Encoding"]
		_, rg := h["Range"]
		pr.askGzip = !ae && !rg && method != http.MethodHead
		for _, v := range h["Connection"] {
			if hasToken(v, "close") {
				pr.close = true
			}
		}
		_, ik := h["Idempotency-Key"]
		_, xik := h["X-Idempotency-Key"]
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			pr.replayable = true
		default:
			pr.replayable = ik || xik
		}
	}
	return pr, nil
}

// hasToken reports whether the comma-separated list v holds token,
// whatever its case.
func hasToken(v, token string) bool {
	for part := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.Trim(part, " \t"), token) {
			return true
		}
	}
	return false
}

// target parses and validates a request URL, or returns it from the cache.
func (c *Client) target(raw string) (*target, error) {
	c.targetsMu.RLock()
	t := c.targets[raw]
	c.targetsMu.RUnlock()
	if t != nil {
		return t, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error quotes the URL, credentials included.
		return nil, fmt.Errorf("%w: malformed URL", ErrInvalidRequest)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: unsupported URL scheme %q", ErrInvalidRequest, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w: URL has no host", ErrInvalidRequest)
	}
	t = &target{}
	if u.User != nil {
		pw, _ := u.User.Password()
		cred := u.User.Username() + ":" + pw
		t.auth = []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(cred))}
		u.User = nil
	}
	// As http.NewRequest does: "host:" is "host".
	u.Host = strings.TrimSuffix(u.Host, ":")
	t.u = u
	if u.Scheme == "http" && isASCII(u.Host) {
		port := u.Port()
		if port == "" {
			port = "80"
		}
		t.plain, t.addr, t.requestURI = true, net.JoinHostPort(u.Hostname(), port), u.RequestURI()
	}
	c.targetsMu.Lock()
	if len(c.targets) >= maxTargets || c.targets == nil {
		c.targets = make(map[string]*target, 64)
	}
	c.targets[raw] = t
	c.targetsMu.Unlock()
	return t, nil
}

// attemptState is what an attempt needs beyond its request and contexts,
// in one allocation: the phase tracker, the hooks that advance it, and
// the request body's reader.
type attemptState struct {
	phaseTracker
	trace httptrace.ClientTrace
	body  bytes.Reader
}

// attempt makes one attempt of pr, which started at start.
func (c *Client) attempt(ctx context.Context, pr *prepared, p Policy, start time.Time) (*Response, error) {
	if pr.plain {
		return c.attemptPlain(ctx, pr, p, start)
	}
	actx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	st := &attemptState{}
	st.hook(&st.trace)
	tctx := context.WithValue(httptrace.WithClientTrace(actx, &st.trace), trackerKey{}, &st.phaseTracker)
	fail := func(err error) error {
		return classify(ctx, actx.Err() != nil, err, st.phase(), time.Since(start), pr.host)
	}
	// What http.NewRequestWithContext would build, without parsing the
	// URL again (prepare did), an empty header map to replace, or the
	// readers it wraps a body in. The URL is shared: the transport only
	// reads it.
	r := http.Request{
		Method:     pr.method,
		URL:        pr.target,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     pr.header,
		Host:       pr.target.Host,
	}
	if len(pr.body) > 0 {
		body := pr.body
		st.body.Reset(body)
		// A *bytes.Reader in a NopCloser, as NewRequest makes it: the
		// transport writes such a body with the header, in one packet,
		// where it would flush the header first for a reader it does not
		// know.
		r.Body, r.ContentLength = io.NopCloser(&st.body), int64(len(body))
		// The transport sends the body again on a new connection when a
		// kept-alive one turns out to be closed.
		r.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		}
	}
	hreq := r.WithContext(tctx)
	if pr.sign != nil {
		// AWS's signer rewrites the URL's query, and Authorization's
		// value in place: both are copies.
		u := *pr.target
		hreq.URL = &u
		hreq.Header = pr.header.Clone()
		if err := pr.sign.sign(hreq, pr.body, c.now()); err != nil {
			return nil, fmt.Errorf("%w: signing: %w", ErrInvalidRequest, err)
		}
	}
	hresp, err := c.transport.RoundTrip(hreq)
	if err != nil {
		return nil, fail(err)
	}
	defer hresp.Body.Close()
	st.advance(stepBody)
	data, truncated, err := readCapped(hresp.Body, hresp.ContentLength, p.MaxResponseBytes)
	if err != nil {
		return nil, fail(err)
	}
	return &Response{Status: hresp.StatusCode, Header: hresp.Header, Body: data, Truncated: truncated}, nil
}

// readCapped reads at most limit bytes of r and reports whether there was
// more. The remainder is not drained: for a huge body, dropping the
// connection is cheaper than reading it.
func readCapped(r io.Reader, contentLength, limit int64) ([]byte, bool, error) {
	size := int64(512)
	if contentLength >= 0 && contentLength <= limit {
		// One spare byte lets the read that sees EOF fit without growing.
		size = contentLength + 1
	}
	buf := make([]byte, 0, size)
	lr := io.LimitedReader{R: r, N: limit + 1}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	if int64(len(buf)) > limit {
		return buf[:limit], true, nil
	}
	return buf, false, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// isToken reports whether s is an RFC 9110 token, as methods and header
// names must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0:
		default:
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters other than tab, which would
// let a value smuggle extra header lines.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
