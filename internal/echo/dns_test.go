package echo

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The Corefile the conformance suite gives CoreDNS: only the whoami zone
// counts.
const conformanceCorefile = `.:53 {
    forward . 8.8.8.8 9.9.9.9
    log
    errors
}
foo.bar.com:53 {
  whoami
}
`

func TestWhoamiZones(t *testing.T) {
	if got := WhoamiZones(strings.NewReader(conformanceCorefile)); !slices.Equal(got, []string{"foo.bar.com."}) {
		t.Fatalf("zones %v, want [foo.bar.com.]", got)
	}
}

// A query in the zone gets the client's address and port back; one
// outside it is refused.
func TestDNSWhoami(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: DNSHandler([]string{"foo.bar.com."})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })

	c := &dns.Client{Timeout: 5 * time.Second}
	msg := new(dns.Msg)
	msg.SetQuestion("foo.bar.com.", dns.TypeA)
	r, _, err := c.Exchange(msg, pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Extra) != 2 {
		t.Fatalf("reply %v", r)
	}
	if a, ok := r.Extra[0].(*dns.A); !ok || !a.A.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("first additional record %v, want A 127.0.0.1", r.Extra[0])
	}
	if srv, ok := r.Extra[1].(*dns.SRV); !ok || srv.Port == 0 || !strings.HasPrefix(srv.Hdr.Name, "_udp.") {
		t.Errorf("second additional record %v, want SRV _udp. with the client port", r.Extra[1])
	}
	msg.SetQuestion("example.com.", dns.TypeA)
	if r, _, err = c.Exchange(msg, pc.LocalAddr().String()); err != nil || r.Rcode != dns.RcodeRefused {
		t.Fatalf("outside the zone: %v, %v; want REFUSED", r, err)
	}
}
