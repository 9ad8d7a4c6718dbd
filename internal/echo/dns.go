package echo

import (
	"bufio"
	"io"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// A DNS backend that stands in for CoreDNS with the whoami plugin, which
// the Gateway API conformance suite runs behind its UDPRoutes: a query for
// a name in a whoami zone is answered with the client's address as seen by
// the server (an A or AAAA record in the additional section) and its port
// and transport (an SRV record), as whoami does. Other names are REFUSED:
// this server forwards nothing, so test traffic stays on the machine.

// WhoamiZones reads the zones whose server block uses the whoami plugin
// from a Corefile ("foo.bar.com:53 {\n  whoami\n}"). Nothing else in it is
// read.
func WhoamiZones(r io.Reader) []string {
	var zones []string
	var current []string
	depth := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case depth == 0 && strings.HasSuffix(line, "{"):
			current = current[:0]
			for _, key := range strings.Fields(strings.TrimSuffix(line, "{")) {
				key = strings.TrimPrefix(strings.TrimPrefix(key, "dns://"), "udp://")
				if host, _, err := net.SplitHostPort(key); err == nil {
					key = host
				}
				current = append(current, dns.Fqdn(strings.ToLower(key)))
			}
			depth = 1
		case depth > 0 && strings.HasSuffix(line, "{"):
			depth++
		case depth > 0 && line == "}":
			depth--
		case depth == 1 && (line == "whoami" || strings.HasPrefix(line, "whoami ")):
			zones = append(zones, current...)
		}
	}
	return zones
}

// DNSHandler answers whoami queries for names in zones (every name when
// zones is empty) and refuses the rest.
func DNSHandler(zones []string) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		if len(req.Question) != 1 || !inZones(req.Question[0].Name, zones) {
			m.SetRcode(req, dns.RcodeRefused)
			w.WriteMsg(m) //nolint:errcheck // the client retries
			return
		}
		q := req.Question[0]
		var ip net.IP
		var port int
		transport := "udp"
		switch a := w.RemoteAddr().(type) {
		case *net.UDPAddr:
			ip, port = a.IP, a.Port
		case *net.TCPAddr:
			ip, port, transport = a.IP, a.Port, "tcp"
		}
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET}
		if ip4 := ip.To4(); ip4 != nil {
			hdr.Rrtype = dns.TypeA
			m.Extra = append(m.Extra, &dns.A{Hdr: hdr, A: ip4})
		} else {
			hdr.Rrtype = dns.TypeAAAA
			m.Extra = append(m.Extra, &dns.AAAA{Hdr: hdr, AAAA: ip})
		}
		srv := dns.RR_Header{Name: "_" + transport + "." + q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET}
		m.Extra = append(m.Extra, &dns.SRV{Hdr: srv, Port: uint16(port), Target: "."})
		w.WriteMsg(m) //nolint:errcheck // as above
	})
}

func inZones(name string, zones []string) bool {
	if len(zones) == 0 {
		return true
	}
	name = strings.ToLower(dns.Fqdn(name))
	for _, z := range zones {
		if z == "." || dns.IsSubDomain(z, name) {
			return true
		}
	}
	return false
}
