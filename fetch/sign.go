package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Signer authenticates one attempt of a request. Do calls it before every
// attempt on a copy of the request's header, so a signature that covers
// the time (AWS Signature V4, Standard Webhooks) is made afresh on each
// retry instead of going stale. The signer holds the credentials itself:
// they never pass through the program that built the request.
type Signer interface {
	// Sign adds its headers to r, whose body is body.
	Sign(r *http.Request, body []byte) error
}

// SignedHeader returns the header an attempt of req sends: req's own
// header, and what req.Signer adds when it is set. Fetchers other than
// [Client] (mocks that record requests) use it to see the request as the
// destination would.
func SignedHeader(req Request) (http.Header, error) {
	if req.Signer == nil {
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
	if err := req.Signer.Sign(hr, req.Body); err != nil {
		return nil, fmt.Errorf("%w: signing: %w", ErrInvalidRequest, err)
	}
	return hr.Header, nil
}

// AWSSigV4 signs requests with AWS Signature Version 4, as AWS's APIs
// (Kinesis, SQS, Lambda URLs, API Gateway with IAM auth) require.
type AWSSigV4 struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string // temporary (STS) credentials only
	Region          string // e.g. us-east-1
	Service         string // the signing name, e.g. kinesis
	// Now is the signing time; nil means time.Now. AWS refuses signatures
	// more than five minutes off its clock.
	Now func() time.Time

	signer *v4.Signer
}

// NewAWSSigV4 returns a signer for the given credentials and scope.
func NewAWSSigV4(accessKeyID, secretAccessKey, sessionToken, region, service string, now func() time.Time) *AWSSigV4 {
	return &AWSSigV4{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey, SessionToken: sessionToken,
		Region: region, Service: service, Now: now, signer: v4.NewSigner()}
}

// Sign implements Signer: it sets X-Amz-Date, Authorization and, with a
// session token, X-Amz-Security-Token. Every header of r but User-Agent
// and the hop-by-hop ones is signed.
func (s *AWSSigV4) Sign(r *http.Request, body []byte) error {
	signer := s.signer
	if signer == nil {
		signer = v4.NewSigner()
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey, SessionToken: s.SessionToken}
	return signer.SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), s.Service, s.Region, now().UTC())
}
