package capture_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/capture"
)

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return m
}

// /flags answers valid empty flags in the shapes each SDK reads, for every
// way an SDK encodes its request, and refuses unknown tokens.
func TestFlags(t *testing.T) {
	h := capture.NewHandler(testConfig(&memPublisher{}))
	body := `{"token":"phc_testtoken","distinct_id":"d1","groups":{},"person_properties":{}}`
	for _, tc := range []struct {
		name string
		r    req
		v2   bool
		cfg  bool
	}{
		{"v2 JSON (posthog-js, posthog-node)", req{target: "/flags/?v=2", contentType: "application/json", body: []byte(body)}, true, false},
		{"v2 with config", req{target: "/flags/?v=2&config=true", contentType: "application/json", body: []byte(body)}, true, true},
		{"v1, api_key", req{target: "/flags/?v=1", body: []byte(`{"api_key":"phc_testtoken","distinct_id":"d1"}`)}, false, false},
		{"gzip-js", req{target: "/flags/?v=2&compression=gzip-js", body: gz(t, []byte(body))}, true, false},
		{"base64 form", req{target: "/flags/?v=2", contentType: "application/x-www-form-urlencoded",
			body: formBody(map[string]string{"data": base64.StdEncoding.EncodeToString([]byte(body))})}, true, false},
		{"decide (older SDKs) carries config", req{target: "/decide/?v=3", body: []byte(body)}, true, true},
		{"token in the query, no body", req{method: http.MethodGet, target: "/flags?token=phc_testtoken"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, h, tc.r)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			m := decodeJSON(t, rec.Body.Bytes())
			if ff, ok := m["featureFlags"].(map[string]any); !ok || len(ff) != 0 || m["errorsWhileComputingFlags"] != false {
				t.Errorf("answer %v", m)
			}
			if _, ok := m["flags"].(map[string]any); ok != tc.v2 {
				t.Errorf("flags present %v, want %v: %v", ok, tc.v2, m)
			}
			if _, ok := m["supportedCompression"]; ok != tc.cfg {
				t.Errorf("config present %v, want %v: %v", ok, tc.cfg, m)
			}
		})
	}
	for _, tc := range []struct {
		name string
		r    req
		code string
	}{
		{"unknown token", req{target: "/flags/?v=2", body: []byte(`{"token":"phc_nope"}`)}, "invalid_api_key"},
		{"no token", req{target: "/flags/?v=2", body: []byte(`{"distinct_id":"d"}`)}, "missing_api_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, h, tc.r)
			if e := decodeErr(t, rec); rec.Code != 401 || e.Code != tc.code {
				t.Errorf("status %d %+v, want 401 %s", rec.Code, e, tc.code)
			}
		})
	}
	rec := do(t, h, req{target: "/flags/?v=2", body: []byte(`{"token":`)})
	if e := decodeErr(t, rec); rec.Code != 400 || e.Code != "invalid_payload" {
		t.Errorf("malformed body: %d %+v", rec.Code, e)
	}
}

// posthog-js's remote config, as JSON and as the script it prefers.
func TestRemoteConfig(t *testing.T) {
	h := capture.NewHandler(testConfig(&memPublisher{}))
	rec := do(t, h, req{method: http.MethodGet, target: "/array/phc_testtoken/config"})
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("config: %d %s", rec.Code, rec.Header())
	}
	m := decodeJSON(t, rec.Body.Bytes())
	if m["token"] != "phc_testtoken" || m["hasFeatureFlags"] != false || m["autocapture_opt_out"] != false {
		t.Errorf("config %v", m)
	}
	// posthog-js loads its surveys script unless surveys is missing.
	if v, ok := m["surveys"]; ok {
		t.Errorf("config says surveys %v; want it left out", v)
	}
	rec = do(t, h, req{method: http.MethodGet, target: "/array/phc_testtoken/config.js"})
	js := rec.Body.String()
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/javascript" ||
		!strings.Contains(js, `window._POSTHOG_REMOTE_CONFIG["phc_testtoken"]={"config":{`) {
		t.Fatalf("config.js: %d %s %s", rec.Code, rec.Header(), js)
	}
	for _, target := range []string{"/array/phc_nope/config", "/array/phc_nope/config.js"} {
		if rec := do(t, h, req{method: http.MethodGet, target: target}); rec.Code != 404 {
			t.Errorf("%s: %d, want 404", target, rec.Code)
		}
	}
}

// posthog-js's lazily loaded scripts are not served, with an answer the
// page can read and that says what to do.
func TestStaticScripts(t *testing.T) {
	h := capture.NewHandler(testConfig(&memPublisher{}))
	for _, target := range []string{"/static/surveys.js?v=1.449.2", "/static/1.449.2/recorder.js"} {
		rec := do(t, h, req{method: http.MethodGet, target: target, header: map[string]string{"Origin": "https://shop.example"}})
		if rec.Code != 404 || rec.Header().Get("Access-Control-Allow-Origin") != "https://shop.example" {
			t.Errorf("%s: %d %v", target, rec.Code, rec.Header())
		}
		if m := decodeJSON(t, rec.Body.Bytes()); !strings.Contains(fmt.Sprint(m["detail"]), "asset_host") {
			t.Errorf("%s: %v", target, m)
		}
	}
}

// Browsers preflight the settings endpoints as they do capture's.
func TestSDKEndpointsCORS(t *testing.T) {
	h := capture.NewHandler(testConfig(&memPublisher{}))
	for _, target := range []string{"/flags/?v=2", "/decide/", "/array/phc_testtoken/config", "/array/phc_testtoken/config.js"} {
		rec := do(t, h, req{method: http.MethodOptions, target: target, header: map[string]string{
			"Origin": "https://shop.example", "Access-Control-Request-Headers": "content-type"}})
		if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "https://shop.example" ||
			rec.Header().Get("Access-Control-Allow-Headers") != "content-type" {
			t.Errorf("%s preflight: %d %v", target, rec.Code, rec.Header())
		}
	}
}
