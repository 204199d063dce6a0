package console_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/console"
	"github.com/hogwire/hogwire/controlplane"
	"github.com/hogwire/hogwire/devstack/devstacktest"
	"github.com/hogwire/hogwire/rpcserver"
)

const listProjects = "/console/api/hogwire.v1.ProjectService/ListProjects"

// connect posts a Connect unary call, as the app does.
func connect(t *testing.T, c *http.Client, base, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func signIn(t *testing.T, c *http.Client, base, token string) (int, string) {
	t.Helper()
	resp, err := c.Post(base+"/console/session", "application/json", strings.NewReader(`{"token": "`+token+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConsoleAuth: the API behind the console answers only with the admin
// token or a session made with it, and a session cookie never acts for
// another site.
func TestConsoleAuth(t *testing.T) {
	st, _ := devstacktest.Start(t, nil)
	base := "http://" + st.HTTPAddr
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}

	if code, body := connect(t, c, base, listProjects, `{}`, nil); code != http.StatusUnauthorized || !strings.Contains(body, `"unauthenticated"`) {
		t.Errorf("anonymous call: %d %s", code, body)
	}
	if code, body := connect(t, c, base, listProjects, `{}`, map[string]string{"Authorization": "Bearer " + st.AdminToken}); code != 200 || !strings.Contains(body, "projects") {
		t.Errorf("bearer call: %d %s", code, body)
	}
	// The node token is not an admin token, and the node's services are
	// not exposed at all.
	if code, _ := connect(t, c, base, listProjects, `{}`, map[string]string{"Authorization": "Bearer " + st.NodeToken}); code != http.StatusUnauthorized {
		t.Errorf("node token: %d", code)
	}
	if code, _ := connect(t, c, base, "/console/api/hogwire.v1.ConfigService/Watch", `{}`, map[string]string{"Authorization": "Bearer " + st.NodeToken}); code != http.StatusNotFound {
		t.Errorf("ConfigService through the console: %d, want 404", code)
	}

	if code, body := signIn(t, c, base, "hwa_wrong"); code != http.StatusUnauthorized || !strings.Contains(body, `"field":"token"`) {
		t.Errorf("wrong token: %d %s", code, body)
	}
	if code, body := signIn(t, c, base, ""); code != http.StatusBadRequest {
		t.Errorf("empty token: %d %s", code, body)
	}
	resp, err := c.Post(base+"/console/session", "application/json", strings.NewReader(`not json`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("malformed sign-in: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if whoami(t, c, base) {
		t.Error("signed in before signing in")
	}
	if code, body := signIn(t, c, base, st.AdminToken); code != 200 {
		t.Fatalf("sign in: %d %s", code, body)
	}
	if !whoami(t, c, base) {
		t.Error("not signed in after signing in")
	}
	var ck *http.Cookie
	for _, x := range jar.Cookies(mustURL(t, base+"/console/")) {
		ck = x
	}
	if ck == nil || strings.Contains(ck.Value, st.AdminToken) {
		t.Fatalf("session cookie %v holds the token", ck)
	}
	if code, body := connect(t, c, base, "/console/api/hogwire.v1.ProjectService/CreateProject", `{"projectId": "shop", "project": {"displayName": "Shop"}}`, nil); code != 200 {
		t.Errorf("call with the session: %d %s", code, body)
	}
	// Cross-site requests with the cookie are refused before they reach the
	// API, whatever the browser says about them.
	for _, h := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}} {
		if code, _ := connect(t, c, base, "/console/api/hogwire.v1.ProjectService/DeleteProject", `{"name": "projects/shop"}`, h); code != http.StatusForbidden {
			t.Errorf("cross-origin call %v: %d, want 403", h, code)
		}
	}
	if code, _ := connect(t, c, base, "/console/session", `{"token": "`+st.AdminToken+`"}`, map[string]string{"Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
		t.Errorf("cross-site sign-in: %d, want 403", code)
	}
	// A forged or altered cookie is no session.
	forged := &http.Client{}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, v := range []string{"garbage", flip(ck.Value, len(ck.Value)-3), flip(ck.Value, 10), "." + strings.SplitN(ck.Value, ".", 2)[1]} {
		if code, _ := connect(t, forged, base, listProjects, `{}`, map[string]string{"Cookie": ck.Name + "=" + v}); code != http.StatusUnauthorized {
			t.Errorf("forged cookie %q: %d", v, code)
		}
	}
	// Signing out ends the session.
	req, _ := http.NewRequest("DELETE", base+"/console/session", nil)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("sign out: %v %v", resp, err)
	}
	if code, _ := connect(t, c, base, listProjects, `{}`, nil); code != http.StatusUnauthorized {
		t.Errorf("after sign-out: %d", code)
	}
}

func whoami(t *testing.T, c *http.Client, base string) bool {
	t.Helper()
	resp, err := c.Get(base + "/console/session")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		SignedIn bool `json:"signed_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /console/session: %d %v", resp.StatusCode, err)
	}
	return v.SignedIn
}

// TestSessionExpires: a session ends after its TTL.
func TestSessionExpires(t *testing.T) {
	now := time.Now()
	gs := rpcserver.New(rpcserver.Options{})
	defer gs.Stop()
	if _, err := console.New(console.Options{GRPC: gs.Server, Roles: controlplane.Roles(), AdminToken: "hwa_x"}); err == nil {
		t.Error("a server with no admin service registered was accepted")
	}
	if _, err := console.New(console.Options{GRPC: gs.Server, Roles: controlplane.Roles()}); err == nil {
		t.Error("a console without an admin token was accepted")
	}
	h, err := newConsoleFor(t, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	if code, _ := signIn(t, c, srv.URL, "hwa_admin"); code != 200 {
		t.Fatalf("sign in: %d", code)
	}
	if !whoami(t, c, srv.URL) {
		t.Fatal("no session")
	}
	now = now.Add(time.Hour + time.Second)
	if whoami(t, c, srv.URL) {
		t.Error("the session outlived its TTL")
	}
}

// TestStatic: the embedded app is served with caching that suits it, gzip,
// and index.html for the app's routes.
func TestStatic(t *testing.T) {
	h, err := newConsoleFor(t, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		}
		b, _ := io.ReadAll(r)
		return resp, string(b)
	}
	resp, index := get("/console/")
	if resp.StatusCode != 200 || !strings.Contains(index, `<div id="app">`) || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("index: %d %q %s", resp.StatusCode, resp.Header.Get("Cache-Control"), index)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if r2, body := get("/console/projects/shop/destinations/hook/code"); r2.StatusCode != 200 || body != index {
		t.Errorf("an app route does not serve index.html: %d", r2.StatusCode)
	}
	if r2, _ := get("/console/", "If-None-Match", resp.Header.Get("ETag")); r2.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d", r2.StatusCode)
	}
	script := regexp.MustCompile(`src="/console/(assets/[^"]+\.js)"`).FindStringSubmatch(index)
	if script == nil {
		t.Fatalf("no script in index.html: %s", index)
	}
	plain, js := get("/console/" + script[1])
	if plain.StatusCode != 200 || !strings.Contains(plain.Header.Get("Cache-Control"), "immutable") || !strings.HasPrefix(plain.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("asset: %d %q %q", plain.StatusCode, plain.Header.Get("Cache-Control"), plain.Header.Get("Content-Type"))
	}
	zipped, js2 := get("/console/"+script[1], "Accept-Encoding", "gzip, br")
	if zipped.Header.Get("Content-Encoding") != "gzip" || js2 != js || zipped.ContentLength >= plain.ContentLength {
		t.Errorf("gzip: encoding %q, same body %v, %d vs %d bytes", zipped.Header.Get("Content-Encoding"), js2 == js, zipped.ContentLength, plain.ContentLength)
	}
	if r2, _ := get("/console/assets/missing.js"); r2.StatusCode != http.StatusNotFound {
		t.Errorf("missing asset: %d", r2.StatusCode)
	}
	if r2, _ := get("/"); r2.StatusCode != http.StatusFound || r2.Header.Get("Location") != "/console/" {
		t.Errorf("/: %d %s", r2.StatusCode, r2.Header.Get("Location"))
	}
}

// newConsoleFor returns a console over a gRPC server with the control
// plane's admin services registered (unimplemented: these tests never call
// through them), admin token "hwa_admin" and a one-hour session.
func newConsoleFor(t *testing.T, now func() time.Time) (http.Handler, error) {
	t.Helper()
	gs := rpcserver.New(rpcserver.Options{Policy: &auth.Policy{AdminToken: "hwa_admin"}})
	t.Cleanup(gs.Stop)
	hogwirev1.RegisterProjectServiceServer(gs, hogwirev1.UnimplementedProjectServiceServer{})
	return console.New(console.Options{GRPC: gs.Server, Roles: controlplane.Roles(), AdminToken: "hwa_admin", SessionTTL: time.Hour, Now: now})
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
