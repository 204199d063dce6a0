package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Signing is how every attempt of a request is authenticated; at most one
// of its fields is set. Do signs each attempt afresh, on a copy of the
// header, so that a signature covering the time (AWS Signature V4,
// Standard Webhooks) never goes stale on a retry. It is plain data, the
// credentials included: a request stored to be retried later (it marshals
// to JSON) is signed again when it is sent again, and the program that
// built the request never handles the credentials.
type Signing struct {
	AWSSigV4         *AWSSigV4         `json:"aws_sigv4,omitempty"`
	StandardWebhooks *StandardWebhooks `json:"standard_webhooks,omitempty"`
}

// AWSSigV4 signs with AWS Signature Version 4, as AWS's APIs (Kinesis,
// SQS, Lambda URLs, API Gateway with IAM auth) require. It sets
// X-Amz-Date, Authorization and, with a session token,
// X-Amz-Security-Token; every header but User-Agent and the hop-by-hop
// ones is signed, with the body's SHA-256.
type AWSSigV4 struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	SessionToken    string `json:"session_token,omitempty"` // temporary (STS) credentials only
	Region          string `json:"region"`                  // e.g. us-east-1
	Service         string `json:"service"`                 // the signing name, e.g. kinesis
}

// sign signs r (whose body is body) as of now.
func (s *Signing) sign(r *http.Request, body []byte, now time.Time) error {
	switch {
	case s.AWSSigV4 != nil && s.StandardWebhooks != nil:
		return errors.New("a request is signed one way: AWS Signature V4 or Standard Webhooks")
	case s.AWSSigV4 != nil:
		a := s.AWSSigV4
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: a.AccessKeyID, SecretAccessKey: a.SecretAccessKey, SessionToken: a.SessionToken}
		return v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), a.Service, a.Region, now.UTC())
	case s.StandardWebhooks != nil:
		return s.StandardWebhooks.sign(r.Header, body, now)
	}
	return nil
}

// SignedHeader returns the header an attempt of req made at now sends:
// req's own header, with what req.Sign adds. Fetchers other than [Client]
// (mocks that record requests) use it to see the request as its
// destination would.
func SignedHeader(req Request, now time.Time) (http.Header, error) {
	if req.Sign == nil {
		return req.Header, nil
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed URL", ErrInvalidRequest)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	hr := &http.Request{Method: method, URL: u, Host: u.Host, Header: req.Header.Clone(), ContentLength: int64(len(req.Body))}
	if hr.Header == nil {
		hr.Header = http.Header{}
	}
	if err := req.Sign.sign(hr, req.Body, now); err != nil {
		return nil, fmt.Errorf("%w: signing: %w", ErrInvalidRequest, err)
	}
	return hr.Header, nil
}
