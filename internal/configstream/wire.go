// Package configstream carries each Gateway's routing snapshot from the
// controller to that Gateway's data-plane pods, and their reports back.
//
// The data plane dials the controller over TLS (the controller's own CA,
// whose certificate the data plane is given) and authenticates with a bound
// ServiceAccount token; the controller checks the token with the API server
// and streams only the Gateway that identity serves, with only that
// Gateway's key material. The stream is a sequence of frames (frame.go): the
// current Config at once, then each new one, with heartbeats between. After
// applying a Config the data plane posts a Report (JSON), which is how the
// controller knows what is served before it writes Programmed.
package configstream

import (
	"github.com/false-systems/rauta/internal/ir"
)

// Paths served by the controller.
const (
	StreamPath = "/v2/config"
	ReportPath = "/v1/report"
)

// Audience is the audience data-plane tokens are issued for, so a token
// minted for the API server (or anything else) is refused here, and this
// one is refused elsewhere.
const Audience = "rauta.io/config"

// Config is one Gateway's configuration as a data plane serves it.
type Config struct {
	// Version identifies the content (a hash), so a Report names exactly
	// what was applied.
	Version string `json:"version"`
	// Gateway is "namespace/name".
	Gateway string `json:"gateway"`
	// Generation is the Gateway's metadata.generation this snapshot was
	// translated from.
	Generation int64 `json:"generation"`
	// Snapshot holds only this Gateway's listeners. Certificate key
	// material is not in it (ir keeps it out of JSON); it travels in Keys.
	Snapshot *ir.Snapshot `json:"snapshot"`
	// Keys are the PEM certificate chains and keys of the Snapshot's
	// certificates, by ir.Certificate.Name.
	Keys []KeyPair `json:"keys,omitempty"`

	// frame is the stream frame carrying this Config, composed on first
	// use (Frame); Publish sends it as it is. wire is the same Config with
	// each route encoded, from which Publish encodes a delta.
	frame *lazyFrame
	wire  *wireConfig
}

// KeyPair is one certificate chain and key.
type KeyPair struct {
	Name    string `json:"name"`
	CertPEM []byte `json:"cert"`
	KeyPEM  []byte `json:"key"`
}

// Resolve returns the Snapshot with each certificate's key material filled
// in from Keys. The result shares nothing mutable with c.
func (c Config) Resolve() *ir.Snapshot {
	if c.Snapshot == nil {
		return &ir.Snapshot{}
	}
	keys := make(map[string]KeyPair, len(c.Keys))
	for _, k := range c.Keys {
		keys[k.Name] = k
	}
	out := &ir.Snapshot{Listeners: make([]ir.Listener, len(c.Snapshot.Listeners))}
	for i, l := range c.Snapshot.Listeners {
		if len(l.Certificates) > 0 {
			certs := make([]ir.Certificate, len(l.Certificates))
			for j, cert := range l.Certificates {
				k := keys[cert.Name]
				cert.CertPEM, cert.KeyPEM = k.CertPEM, k.KeyPEM
				certs[j] = cert
			}
			l.Certificates = certs
		}
		if bc := l.BackendClientCertificate; bc != nil {
			cert := *bc
			k := keys[cert.Name]
			cert.CertPEM, cert.KeyPEM = k.CertPEM, k.KeyPEM
			l.BackendClientCertificate = &cert
		}
		out.Listeners[i] = l
	}
	return out
}

// Report is what a data-plane pod says after applying a Config.
type Report struct {
	Gateway string `json:"gateway"`
	// Pod is the reporting pod's name.
	Pod string `json:"pod"`
	// Version and Generation are those of the Config applied.
	Version    string `json:"version"`
	Generation int64  `json:"generation"`
	// Error is set when the Config was refused as a whole (it did not
	// compile); the previous one keeps serving.
	Error string `json:"error,omitempty"`
	// Unbound lists listeners whose socket could not be bound, by IR
	// listener name; the others are served.
	Unbound []ListenerError `json:"unbound,omitempty"`
	// Resync says the Config was not applied because it elides a route
	// this data plane did not have compiled (router.ErrUnknownRoute: the
	// Config before it was refused, or a listener changed its port). The
	// previous configuration keeps serving; the data plane opens a new
	// stream, whose first Config is whole. Not an error of the Config:
	// the Client does not post it, and the controller keeps the pod's last
	// report when an older data plane does.
	Resync bool `json:"resync,omitempty"`
}

// ListenerError says why one listener is not served.
type ListenerError struct {
	Listener string `json:"listener"`
	Error    string `json:"error"`
}

// message is one line of the stream.
type message struct {
	Config    *Config `json:"config,omitempty"`
	Heartbeat bool    `json:"heartbeat,omitempty"`
}
