package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
)

// asset is one embedded file, with its gzip form made on first request
// (not at start: every dev stack and test would pay for it).
type asset struct {
	body        []byte
	gzipOnce    sync.Once
	gz          []byte
	contentType string
	etag        string
	// immutable assets have a content hash in their name.
	immutable bool
}

// static serves the built app. Any path under Prefix that is not a file is
// a route of the app and gets index.html.
type static struct {
	files map[string]*asset
	index *asset
}

func newStatic(root fs.FS) (*static, error) {
	s := &static{files: map[string]*asset{}}
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		a := &asset{
			body:        b,
			contentType: mime.TypeByExtension(path.Ext(p)),
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
			immutable:   strings.HasPrefix(p, "assets/"),
		}
		if a.contentType == "" {
			a.contentType = http.DetectContentType(b)
		}
		s.files[p] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.index = s.files["index.html"]; s.index == nil {
		return nil, fmt.Errorf("console: the embedded build has no index.html (run npm run build in console/)")
	}
	return s, nil
}

// gzipped returns the gzip form of a text asset, or nil.
func (a *asset) gzipped() []byte {
	a.gzipOnce.Do(func() {
		if !compressible(a.contentType) || len(a.body) <= 1024 {
			return
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(a.body)
		zw.Close()
		a.gz = buf.Bytes()
	})
	return a.gz
}

func compressible(ct string) bool {
	for _, p := range []string{"text/", "application/javascript", "application/json", "image/svg+xml"} {
		if strings.HasPrefix(ct, p) {
			return true
		}
	}
	return false
}

func (s *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, Prefix)
	a, ok := s.files[p]
	switch {
	case ok:
	case strings.HasPrefix(p, "assets/") || path.Ext(p) != "":
		http.NotFound(w, r)
		return
	default:
		a = s.index
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Add("Vary", "Accept-Encoding")
	if a.immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && match == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if gz := a.gzipped(); gz != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = gz
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
