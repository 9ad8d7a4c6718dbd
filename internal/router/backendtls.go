package router

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"strings"

	"github.com/false-systems/rauta/internal/ir"
)

// compileBackendTLS builds the client TLS configuration for a backend once
// per compile, so the proxy never parses a CA bundle per request. Key
// identifies the settings: equal keys may share a connection pool. ok is
// false when the CA bundle holds no certificate. h2 offers ALPN h2 instead
// of http/1.1 (a backend that does not take it fails the handshake's ALPN
// check in the Transport, never falls back to HTTP/1.1 for gRPC).
func compileBackendTLS(b *ir.BackendTLS, h2 bool) (cfg *tls.Config, key string, ok bool) {
	cfg = &tls.Config{
		ServerName: b.ServerName,
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
	}
	if h2 {
		cfg.NextProtos = []string{"h2"}
	}
	if !b.SystemCAs || len(b.CACertPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b.CACertPEM) {
			return nil, "", false
		}
		cfg.RootCAs = pool
	}
	if len(b.SubjectAltNames) > 0 {
		// The spec: with subjectAltNames the hostname only picks the
		// certificate (SNI); the chain is still verified, and the
		// certificate must carry one of the names. Go checks the chain
		// and the name together, so the name check is done here.
		sans := slices.Clone(b.SubjectAltNames)
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyBackendSANs(cs, roots, sans)
		}
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%t\x00%t\x00%s\x00", b.ServerName, b.SystemCAs, h2, strings.Join(b.SubjectAltNames, "\x00"))
	h.Write(b.CACertPEM)
	return cfg, fmt.Sprintf("%x", h.Sum64()), true
}

// verifyBackendSANs verifies the backend's chain against roots (nil: the
// system pool) and that its leaf carries one of sans: a DNS name (with the
// usual single-label wildcard) or a URI.
func verifyBackendSANs(cs tls.ConnectionState, roots *x509.CertPool, sans []string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: backend sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return err
	}
	for _, want := range sans {
		if strings.Contains(want, "://") || strings.HasPrefix(want, "spiffe:") {
			for _, u := range leaf.URIs {
				if sameURI(u, want) {
					return nil
				}
			}
			continue
		}
		if leaf.VerifyHostname(want) == nil && len(leaf.DNSNames) > 0 {
			return nil
		}
	}
	return fmt.Errorf("tls: backend certificate has none of the subjectAltNames %s", strings.Join(sans, ", "))
}

func sameURI(u *url.URL, want string) bool {
	return u.String() == want
}

// clientCertKey identifies a backend client certificate.
func clientCertKey(c *ir.Certificate) string {
	h := fnv.New64a()
	h.Write(c.CertPEM)
	h.Write([]byte{0})
	h.Write(c.KeyPEM)
	return fmt.Sprintf("%x", h.Sum64())
}
