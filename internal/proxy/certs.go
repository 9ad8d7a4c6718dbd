package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/false-systems/rauta/internal/ir"
)

// certStore picks the certificate for a TLS handshake by SNI: an exact
// hostname, else the longest matching wildcard, else the default (the
// certificate listed for "" or, failing that, the first one).
type certStore struct {
	exact map[string]*tls.Certificate
	wild  map[string]*tls.Certificate // keyed by ".suffix"
	def   *tls.Certificate
}

func compileCerts(certs []ir.Certificate) (*certStore, error) {
	s := &certStore{exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}}
	var explicitDefault bool
	for i := range certs {
		c := &certs[i]
		kp, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			return nil, fmt.Errorf("certificate %q: %w", c.Name, err)
		}
		cert := &kp
		if s.def == nil {
			s.def = cert
		}
		for _, h := range c.Hostnames {
			h = strings.TrimSuffix(strings.ToLower(h), ".")
			switch {
			case h == "":
				if !explicitDefault {
					s.def, explicitDefault = cert, true
				}
			case strings.HasPrefix(h, "*."):
				if _, ok := s.wild[h[1:]]; !ok {
					s.wild[h[1:]] = cert
				}
			default:
				if _, ok := s.exact[h]; !ok {
					s.exact[h] = cert
				}
			}
		}
	}
	return s, nil
}

var errNoCertificate = errors.New("no certificate configured for this listener")

func (s *certStore) get(serverName string) (*tls.Certificate, error) {
	if s == nil || s.def == nil {
		return nil, errNoCertificate
	}
	name := strings.TrimSuffix(strings.ToLower(serverName), ".")
	if c, ok := s.exact[name]; ok {
		return c, nil
	}
	for i := 1; i < len(name); i++ {
		if name[i] == '.' {
			if c, ok := s.wild[name[i:]]; ok {
				return c, nil
			}
		}
	}
	return s.def, nil
}
