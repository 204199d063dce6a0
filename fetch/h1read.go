package fetch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
)

// responseHead is a response's status line and header, and how its body is
// framed (RFC 9112, section 6.3).
type responseHead struct {
	status int
	header http.Header
	// length is the body's length, or -1 when it is chunked or runs to the
	// connection's close.
	length  int64
	chunked bool
	// close: the connection ends after this response (it said so, or it
	// is HTTP/1.0 without keep-alive, or its body runs to the close).
	close bool
}

var errMalformed = errors.New("malformed HTTP response")

// readHead reads a response's status line and header from br. head says
// the request was a HEAD, whose response has no body whatever its header
// says. scratch is reused for the header block; the returned header's
// strings share one allocation. Its values are kept in values when it has
// room for them.
func readHead(br *bufio.Reader, head bool, scratch *[]byte, values []string) (responseHead, error) {
	var h responseHead
	block := (*scratch)[:0]
	var lines [32][2]int // a line's start and end in block, for most responses
	ends := lines[:0]
	first := true
	for {
		line, err := br.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			block = append(block, line...)
			line, err = br.ReadSlice('\n')
		}
		if err != nil {
			if err == io.EOF && (len(block) > 0 || !first) {
				err = io.ErrUnexpectedEOF
			}
			*scratch = block
			return h, err
		}
		start := len(block)
		block = append(block, line...)
		end := len(block) - 1 // the '\n'
		if end > start && block[end-1] == '\r' {
			end--
		}
		if first {
			first = false
			ends = append(ends, [2]int{start, end})
			continue
		}
		if end == start {
			break
		}
		ends = append(ends, [2]int{start, end})
	}
	*scratch = block
	// One string for the whole block: keys and values are slices of it.
	s := string(block)

	status := s[ends[0][0]:ends[0][1]]
	proto, rest, ok := strings.Cut(status, " ")
	if !ok || len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') {
		return h, fmt.Errorf("%w: status line %q", errMalformed, truncate(status))
	}
	var http10 bool
	switch proto {
	case "HTTP/1.1":
	case "HTTP/1.0":
		http10 = true
	default:
		return h, fmt.Errorf("%w: version %q", errMalformed, truncate(proto))
	}
	code, err := strconv.Atoi(rest[:3])
	if err != nil || code < 100 {
		return h, fmt.Errorf("%w: status code %q", errMalformed, rest[:3])
	}
	h.status = code

	n := len(ends) - 1
	h.header = make(http.Header, n)
	if len(values) < n {
		values = make([]string, n)
	}
	for i, e := range ends[1:] {
		line := s[e[0]:e[1]]
		k, v, ok := strings.Cut(line, ":")
		if !ok || !isToken(k) {
			// Also refuses obsolete line folding (a line starting with
			// white space), which RFC 9112 lets a client reject.
			return h, fmt.Errorf("%w: header line %q", errMalformed, truncate(line))
		}
		k = http.CanonicalHeaderKey(k) // the same string when already canonical
		values[i] = strings.Trim(v, " \t")
		if vs, dup := h.header[k]; dup {
			h.header[k] = append(vs, values[i])
		} else {
			h.header[k] = values[i : i+1 : i+1]
		}
	}

	connection := h.header["Connection"]
	if http10 {
		h.close = !anyToken(connection, "keep-alive")
	} else {
		h.close = anyToken(connection, "close")
	}
	if h.close {
		// As net/http: the connection's fate is not the caller's header.
		delete(h.header, "Connection")
	}

	h.length = -1
	if head || code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		h.length = 0
		return h, nil
	}
	if te, ok := h.header["Transfer-Encoding"]; ok {
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") || http10 {
			return h, fmt.Errorf("%w: unsupported transfer encoding %q", errMalformed, truncate(strings.Join(te, ", ")))
		}
		// Chunked framing wins over a length (RFC 9112, 6.3); neither is
		// the body the caller sees.
		delete(h.header, "Transfer-Encoding")
		delete(h.header, "Content-Length")
		h.chunked = true
		return h, nil
	}
	if cl, ok := h.header["Content-Length"]; ok {
		for i, v := range cl {
			if i > 0 && v != cl[0] {
				return h, fmt.Errorf("%w: conflicting Content-Length %q", errMalformed, truncate(strings.Join(cl, ", ")))
			}
		}
		l, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || l < 0 || cl[0][0] == '+' {
			return h, fmt.Errorf("%w: Content-Length %q", errMalformed, truncate(cl[0]))
		}
		h.length = l
		return h, nil
	}
	h.close = true
	return h, nil
}

func anyToken(vs []string, token string) bool {
	for _, v := range vs {
		if hasToken(v, token) {
			return true
		}
	}
	return false
}

// truncate keeps what a server sent short in an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// fixedBody reads a body of a known length; a connection that ends before
// it is an unexpected EOF, never a shorter body.
type fixedBody struct {
	r *bufio.Reader
	n int64
}

func (b *fixedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	if err == io.EOF {
		if b.n > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}

// chunkedBody reads a chunked body and then its trailer, so that the
// connection is left at the next response.
type chunkedBody struct {
	r       *bufio.Reader
	chunks  io.Reader
	trailer int  // bytes of trailer still allowed
	done    bool // the trailer has been read
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.chunks.Read(p)
	if err != io.EOF {
		return n, err
	}
	// The trailer's fields are dropped, as a Response has no place for
	// them; a line too long for the buffer is refused.
	for {
		line, err := b.r.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		if b.trailer -= len(line); b.trailer < 0 {
			return n, errHeaderTooLarge
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			b.done = true
			return n, io.EOF
		}
	}
}

func newChunkedBody(r *bufio.Reader) *chunkedBody {
	return &chunkedBody{r: r, chunks: httputil.NewChunkedReader(r), trailer: maxResponseHeaderBytes}
}
