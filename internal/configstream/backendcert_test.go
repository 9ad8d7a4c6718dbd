package configstream

import (
	"bytes"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

// TestBackendClientCertificateTravels: a listener's backend client
// certificate (Gateway spec.tls.backend) reaches the data plane with its
// key material, which travels in Keys only, as listener certificates do.
func TestBackendClientCertificateTravels(t *testing.T) {
	snap := &ir.Snapshot{Listeners: []ir.Listener{{Name: "ns/gw/80", Port: 80, Protocol: ir.ProtocolHTTP,
		BackendClientCertificate: &ir.Certificate{Name: "ns/client", CertPEM: []byte("CERT-PEM"), KeyPEM: []byte("BACKEND-KEY")}}}}
	c := NewConfig("ns/gw", 1, snap)
	m, err := readFrame(bytes.NewReader(c.Frame()), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got := m.Config.Resolve().Listeners[0].BackendClientCertificate
	if got == nil || string(got.CertPEM) != "CERT-PEM" || string(got.KeyPEM) != "BACKEND-KEY" {
		t.Fatalf("resolved backend client certificate %+v", got)
	}
	if snap.Listeners[0].BackendClientCertificate.KeyPEM == nil {
		t.Error("NewConfig modified the snapshot")
	}
}
