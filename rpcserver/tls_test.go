package rpcserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/hogwire/hogwire/auth"
	"github.com/hogwire/hogwire/rpcclient"
	"github.com/hogwire/hogwire/rpcserver"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hogwire test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// A TLS server requiring client certificates serves a client that has one
// (and sends its bearer token over TLS), and refuses a plaintext client.
func TestTLSWithClientCertificates(t *testing.T) {
	cert, pool := selfSigned(t)
	srvCreds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	s := rpcserver.New(rpcserver.Options{Creds: srvCreds, Policy: &auth.Policy{AdminToken: "hwa_t"}})
	s.SetServing(true)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	good, err := rpcclient.Dial(l.Addr().String(), rpcclient.Options{Token: "hwa_t",
		Creds: credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}})})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	hr, err := healthpb.NewHealthClient(good).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("over TLS with a client certificate: %v %v", hr, err)
	}

	noCert, _ := rpcclient.Dial(l.Addr().String(), rpcclient.Options{Creds: credentials.NewTLS(&tls.Config{RootCAs: pool})})
	defer noCert.Close()
	if _, err := healthpb.NewHealthClient(noCert).Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("without a client certificate: %v, want the handshake refused", err)
	}
	plain, _ := rpcclient.Dial(l.Addr().String(), rpcclient.Options{})
	defer plain.Close()
	if _, err := healthpb.NewHealthClient(plain).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("a plaintext client was served by a TLS server")
	}
}
