package webhooksig_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hogwire/hogwire/webhooksig"
)

// The vectors come from the vendors' documentation (GitHub's "Validating
// webhook deliveries", Standard Webhooks' reference example) or were
// computed with openssl dgst -sha256 -hmac, independently of this code.
const (
	githubSecret = "It's a Secret to Everybody"
	githubBody   = "Hello, World!"
	githubSig    = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	standardSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	standardID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	standardTS     = "1614265330"
	standardBody   = `{"test": 2432232314}`
	standardSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

	stripeSecret = "whsec_test_stripe"
	stripeBody   = `{"id":"evt_1","type":"customer.created"}`
	stripeSig    = "7ea73701188a4c35f164bcd76b98b156a1c54696be18715d8c2f5cd27d2cbbbe" // t=1700000000

	hmacSecret = "s3cret"
	hmacBody   = `{"a":1}`
	hmacHex    = "5910e62016ef5034272c926c27071992a465c2335cecf41851bda071577f4f6d"
	hmacBase64 = "WRDmIBbvUDQnLJJsJwcZkqRlwjNc7PQYUb2gcVd/T20="
)

func TestVerify(t *testing.T) {
	stripeNow := time.Unix(1700000000, 0).Add(time.Minute)
	standardNow := time.Unix(1614265330, 0)
	for _, tc := range []struct {
		name    string
		spec    webhooksig.Spec
		headers map[string]string
		body    string
		now     time.Time
		invalid bool // else valid
	}{
		{name: "github", spec: webhooksig.Spec{Scheme: webhooksig.GitHub, Secret: githubSecret},
			headers: map[string]string{"X-Hub-Signature-256": githubSig}, body: githubBody},
		{name: "github wrong secret", spec: webhooksig.Spec{Scheme: webhooksig.GitHub, Secret: "nope"},
			headers: map[string]string{"X-Hub-Signature-256": githubSig}, body: githubBody, invalid: true},
		{name: "github body changed", spec: webhooksig.Spec{Scheme: webhooksig.GitHub, Secret: githubSecret},
			headers: map[string]string{"X-Hub-Signature-256": githubSig}, body: githubBody + " ", invalid: true},
		{name: "github no prefix", spec: webhooksig.Spec{Scheme: webhooksig.GitHub, Secret: githubSecret},
			headers: map[string]string{"X-Hub-Signature-256": githubSig[len("sha256="):]}, body: githubBody, invalid: true},
		{name: "github missing", spec: webhooksig.Spec{Scheme: webhooksig.GitHub, Secret: githubSecret},
			body: githubBody, invalid: true},

		{name: "standard", spec: webhooksig.Spec{Scheme: webhooksig.StandardWebhooks, Secret: standardSecret},
			headers: map[string]string{"webhook-id": standardID, "webhook-timestamp": standardTS, "webhook-signature": standardSig},
			body:    standardBody, now: standardNow},
		{name: "standard one of several", spec: webhooksig.Spec{Scheme: webhooksig.StandardWebhooks, Secret: standardSecret},
			headers: map[string]string{"webhook-id": standardID, "webhook-timestamp": standardTS,
				"webhook-signature": "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + standardSig},
			body: standardBody, now: standardNow},
		{name: "standard other id", spec: webhooksig.Spec{Scheme: webhooksig.StandardWebhooks, Secret: standardSecret},
			headers: map[string]string{"webhook-id": "msg_other", "webhook-timestamp": standardTS, "webhook-signature": standardSig},
			body:    standardBody, now: standardNow, invalid: true},
		{name: "standard too old", spec: webhooksig.Spec{Scheme: webhooksig.StandardWebhooks, Secret: standardSecret},
			headers: map[string]string{"webhook-id": standardID, "webhook-timestamp": standardTS, "webhook-signature": standardSig},
			body:    standardBody, now: standardNow.Add(6 * time.Minute), invalid: true},
		{name: "standard tolerance off", spec: webhooksig.Spec{Scheme: webhooksig.StandardWebhooks, Secret: standardSecret, Tolerance: -1},
			headers: map[string]string{"webhook-id": standardID, "webhook-timestamp": standardTS, "webhook-signature": standardSig},
			body:    standardBody, now: standardNow.Add(24 * time.Hour)},
		{name: "standard v2 only", spec: webhooksig.Spec{Scheme: webhooksig.StandardWebhooks, Secret: standardSecret},
			headers: map[string]string{"webhook-id": standardID, "webhook-timestamp": standardTS, "webhook-signature": "v2" + standardSig[2:]},
			body:    standardBody, now: standardNow, invalid: true},

		{name: "stripe", spec: webhooksig.Spec{Scheme: webhooksig.Stripe, Secret: stripeSecret},
			headers: map[string]string{"Stripe-Signature": "t=1700000000,v1=" + stripeSig + ",v0=00"}, body: stripeBody, now: stripeNow},
		{name: "stripe second v1", spec: webhooksig.Spec{Scheme: webhooksig.Stripe, Secret: stripeSecret},
			headers: map[string]string{"Stripe-Signature": "t=1700000000,v1=" + hmacHex + ",v1=" + stripeSig}, body: stripeBody, now: stripeNow},
		{name: "stripe other timestamp", spec: webhooksig.Spec{Scheme: webhooksig.Stripe, Secret: stripeSecret},
			headers: map[string]string{"Stripe-Signature": "t=1700000001,v1=" + stripeSig}, body: stripeBody, now: stripeNow, invalid: true},
		{name: "stripe replayed late", spec: webhooksig.Spec{Scheme: webhooksig.Stripe, Secret: stripeSecret},
			headers: map[string]string{"Stripe-Signature": "t=1700000000,v1=" + stripeSig}, body: stripeBody,
			now: time.Unix(1700000000, 0).Add(time.Hour), invalid: true},
		{name: "stripe wider tolerance", spec: webhooksig.Spec{Scheme: webhooksig.Stripe, Secret: stripeSecret, Tolerance: 2 * time.Hour},
			headers: map[string]string{"Stripe-Signature": "t=1700000000,v1=" + stripeSig}, body: stripeBody,
			now: time.Unix(1700000000, 0).Add(time.Hour)},
		{name: "stripe no timestamp", spec: webhooksig.Spec{Scheme: webhooksig.Stripe, Secret: stripeSecret},
			headers: map[string]string{"Stripe-Signature": "v1=" + stripeSig}, body: stripeBody, now: stripeNow, invalid: true},

		{name: "hmac hex", spec: webhooksig.Spec{Scheme: webhooksig.HMAC, Secret: hmacSecret},
			headers: map[string]string{"X-Signature": hmacHex}, body: hmacBody},
		{name: "hmac base64 prefix header", spec: webhooksig.Spec{Scheme: webhooksig.HMAC, Secret: hmacSecret, Header: "X-Shopify-Hmac-Sha256",
			Encoding: webhooksig.Base64, Prefix: "sha256="},
			headers: map[string]string{"X-Shopify-Hmac-Sha256": "sha256=" + hmacBase64}, body: hmacBody},
		{name: "hmac base64 sent as hex", spec: webhooksig.Spec{Scheme: webhooksig.HMAC, Secret: hmacSecret, Encoding: webhooksig.Base64},
			headers: map[string]string{"X-Signature": hmacHex}, body: hmacBody, invalid: true},
		{name: "hmac wrong", spec: webhooksig.Spec{Scheme: webhooksig.HMAC, Secret: hmacSecret},
			headers: map[string]string{"X-Signature": hmacHex[:63] + "e"}, body: hmacBody, invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			now := tc.now
			if now.IsZero() {
				now = time.Now()
			}
			err := webhooksig.Verify(tc.spec, h.Get, []byte(tc.body), now)
			switch {
			case tc.invalid && !errors.Is(err, webhooksig.ErrInvalid):
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			case !tc.invalid && err != nil:
				t.Fatalf("Verify = %v, want valid", err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	for _, s := range []webhooksig.Spec{
		{Scheme: "svix", Secret: "x"},
		{Scheme: webhooksig.HMAC},
		{Scheme: webhooksig.HMAC, Secret: "x", Encoding: "base32"},
		{Scheme: webhooksig.StandardWebhooks, Secret: "whsec_not base64!"},
	} {
		err := s.Check()
		if err == nil {
			t.Errorf("Check(%+v) = nil, want an error", s)
		}
		if err := webhooksig.Verify(s, http.Header{}.Get, nil, time.Now()); err == nil || errors.Is(err, webhooksig.ErrInvalid) {
			t.Errorf("Verify(%+v) = %v, want a configuration error", s, err)
		}
	}
}
