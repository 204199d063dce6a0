package capture

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// PostHog's SDKs ask the server for settings before and while they send
// events: posthog-js loads its remote config (/array/<token>/config.js,
// or /config as JSON) and, like every server SDK, evaluates feature flags
// at /flags (/decide before it). hogwire has no feature flags and none of
// PostHog's recording products, so it answers what lets an SDK run as
// configured for capture alone: no flags (and no error, which would make
// posthog-js send $feature_flag_called noise and retry), autocapture on,
// and the compressions capture accepts. Unknown tokens are refused as
// capture refuses them.

// remoteSettings is the remote config posthog-js applies: what it turns
// off stays off, and hasFeatureFlags false spares it a /flags request.
// Every product whose code posthog-js would fetch from /static/ is off,
// and surveys is left out, not false: posthog-js (1.449) still loads its
// surveys script when told surveys is false, and only a missing value
// keeps it from asking.
func remoteSettings(token string) map[string]any {
	return map[string]any{
		"token":                 token,
		"supportedCompression":  []string{"gzip", "gzip-js"},
		"hasFeatureFlags":       false,
		"autocapture_opt_out":   false,
		"autocaptureExceptions": false,
		"captureDeadClicks":     false,
		"capturePerformance":    false,
		"defaultIdentifiedOnly": true,
		"elementsChainAsString": true,
		"heatmaps":              false,
		"sessionRecording":      false,
		"siteApps":              []any{},
	}
}

// remoteConfig answers GET /array/<token>/config with the settings as JSON.
func (h *handler) remoteConfig(_ context.Context, w http.ResponseWriter, r *http.Request) (int, any, *apiError) {
	token := r.PathValue("token")
	if _, ok := h.cfg.Tokens.Project(token); !ok {
		return 0, nil, unknownConfig()
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	return http.StatusOK, remoteSettings(token), nil
}

// remoteConfigJS answers GET /array/<token>/config.js: a script that
// leaves the settings where posthog-js looks for them.
func (h *handler) remoteConfigJS(_ context.Context, w http.ResponseWriter, r *http.Request) (int, any, *apiError) {
	token := r.PathValue("token")
	if _, ok := h.cfg.Tokens.Project(token); !ok {
		return 0, nil, unknownConfig()
	}
	settings, err := json.Marshal(map[string]any{"config": remoteSettings(token), "siteApps": []any{}})
	if err != nil {
		return 0, nil, &apiError{status: http.StatusInternalServerError, Type: "server_error", Code: "internal", Detail: err.Error()}
	}
	key, _ := json.Marshal(token)
	js := "(function(){window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};window._POSTHOG_REMOTE_CONFIG[" +
		string(key) + "]=" + string(settings) + ";})();\n"
	w.Header().Set("Cache-Control", "public, max-age=60")
	return http.StatusOK, script(js), nil
}

// staticScript answers posthog-js's requests for the scripts it loads
// lazily (/static/surveys.js, /static/<version>/recorder.js, ...) from its
// asset host, which is api_host unless set. hogwire does not serve
// PostHog's code; the remote config keeps posthog-js from asking, so a
// request here comes from a feature turned on in posthog.init, and the
// answer says how to get the script. The CORS headers let the page see
// this 404 rather than a CORS failure.
func (h *handler) staticScript(_ context.Context, _ http.ResponseWriter, r *http.Request) (int, any, *apiError) {
	return 0, nil, &apiError{status: http.StatusNotFound, Type: "invalid_request", Code: "not_found",
		Detail: "hogwire does not serve posthog-js's scripts (" + r.URL.Path + "): set asset_host in posthog.init " +
			"to a host that does (PostHog's is https://us-assets.i.posthog.com), load posthog-js's full bundle " +
			"(array.full.js), or turn the feature off"}
}

func unknownConfig() *apiError {
	return &apiError{status: http.StatusNotFound, Type: "invalid_request", Code: "not_found",
		Detail: "no project has this token"}
}

// flags answers /flags (v1 and v2) and the older /decide: no flag is set.
// With ?config=true (and always on /decide, as PostHog's did) the remote
// config's settings come along.
func (h *handler) flags(_ context.Context, w http.ResponseWriter, r *http.Request) (int, any, *apiError) {
	token := requestToken(r)
	if r.Method == http.MethodPost && r.ContentLength != 0 {
		mem := h.mem.lease()
		defer mem.release()
		env, aerr := h.readPayload(w, r, mem)
		if aerr != nil {
			return 0, nil, aerr
		}
		var body struct {
			Token  string `json:"token"`
			APIKey string `json:"api_key"`
		}
		if err := json.Unmarshal(env.payload, &body); err != nil {
			return 0, nil, validationError("invalid_payload", "Malformed request data: "+err.Error())
		}
		token = firstNonEmpty(body.Token, body.APIKey, env.token, token)
	}
	if token == "" {
		return 0, nil, &apiError{status: http.StatusUnauthorized, Type: "authentication_error", Code: "missing_api_key",
			Detail: "API key not provided. You can find your project API key in PostHog project settings."}
	}
	if _, ok := h.cfg.Tokens.Project(token); !ok {
		return 0, nil, invalidToken()
	}
	out := map[string]any{
		"featureFlags":              map[string]any{},
		"featureFlagPayloads":       map[string]any{},
		"errorsWhileComputingFlags": false,
		"requestId":                 uuid.NewString(),
	}
	q := r.URL.Query()
	if v, _ := strconv.Atoi(q.Get("v")); v >= 2 {
		out["flags"] = map[string]any{}
		out["evaluatedAt"] = time.Now().UnixMilli()
	}
	if q.Get("config") == "true" || r.URL.Path == "/decide" || r.URL.Path == "/decide/" {
		for k, v := range remoteSettings(token) {
			out[k] = v
		}
	}
	return http.StatusOK, out, nil
}
