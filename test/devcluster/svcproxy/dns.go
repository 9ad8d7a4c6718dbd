package svcproxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// LabelServiceProxyName is the label by which a Service belongs to another proxy: kube-proxy,
// this proxy and rauta mesh leave such Services alone. The cluster DNS Service carries it,
// because this proxy answers DNS on its ClusterIP itself.
const LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"

// dnsTTL is the TTL of every answer: short, as CoreDNS's kubernetes plugin (5 s), so a
// changed Service is seen soon.
const dnsTTL = 5

// DNS timeouts: a TCP client that sends nothing is dropped after dnsReadTimeout.
const (
	dnsReadTimeout  = 2 * time.Second
	dnsWriteTimeout = 2 * time.Second
)

// dnsServer answers the cluster's Service names, as CoreDNS's kubernetes plugin does for
// the records the tests use: <service>.<namespace>.svc.<domain> A -> the ClusterIP, or
// for a headless Service the ready endpoint addresses; an ExternalName Service is a CNAME.
// Other names under the domain are NXDOMAIN; names outside it are REFUSED (there is no
// upstream: pods reach nothing outside the cluster).
type dnsServer struct {
	p       *Proxy
	cluster string // "cluster.local."
	domain  string // "svc.cluster.local."
	servers []*dns.Server
	wg      sync.WaitGroup
}

func (p *Proxy) startDNS() error {
	addr := netip.AddrPortFrom(p.cfg.DNS, 53).String()
	cluster := strings.ToLower(dns.Fqdn(p.cfg.ClusterDomain))
	d := &dnsServer{p: p, cluster: cluster, domain: "svc." + cluster}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", d.serve)
	udp, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	tcp, err := net.Listen("tcp4", addr)
	if err != nil {
		udp.Close()
		return fmt.Errorf("cluster DNS: %w", err)
	}
	d.servers = []*dns.Server{
		{PacketConn: udp, Handler: mux, ReadTimeout: dnsReadTimeout, WriteTimeout: dnsWriteTimeout},
		{Listener: tcp, Handler: mux, ReadTimeout: dnsReadTimeout, WriteTimeout: dnsWriteTimeout, MaxTCPQueries: 100},
	}
	for _, s := range d.servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		d.wg.Go(func() {
			if err := s.ActivateAndServe(); err != nil {
				p.cfg.Log.Warn("cluster DNS server", "err", err)
			}
		})
		<-started
	}
	p.dns = d
	return nil
}

func (d *dnsServer) close() error {
	var errs []error
	for _, s := range d.servers {
		errs = append(errs, s.Shutdown())
	}
	d.wg.Wait()
	return errors.Join(errs...)
}

func (d *dnsServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	rest, ok := strings.CutSuffix(name, "."+d.domain)
	if !ok {
		m.Rcode = dns.RcodeNameError // inside the cluster domain, not a Service name
		if name != d.cluster && !strings.HasSuffix(name, "."+d.cluster) {
			m.Authoritative, m.Rcode = false, dns.RcodeRefused
		}
		_ = w.WriteMsg(m)
		return
	}
	svcName, ns, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(ns, ".") {
		m.Rcode = dns.RcodeNameError
		_ = w.WriteMsg(m)
		return
	}
	svc, err := d.p.services.Services(ns).Get(svcName)
	if err != nil {
		m.Rcode = dns.RcodeNameError
		_ = w.WriteMsg(m)
		return
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: dnsTTL}
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: dns.Fqdn(svc.Spec.ExternalName)})
		_ = w.WriteMsg(m)
		return
	}
	if q.Qtype != dns.TypeA && q.Qtype != dns.TypeANY {
		// The name exists; it has no record of that type (IPv4 only): NODATA.
		_ = w.WriteMsg(m)
		return
	}
	for _, a := range d.addresses(svc) {
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()})
	}
	_ = w.WriteMsg(m)
}

// addresses are the ClusterIPs (IPv4) of svc, or for a headless Service its ready
// endpoints' addresses.
func (d *dnsServer) addresses(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		for _, ip := range svc.Spec.ClusterIPs {
			if a, err := netip.ParseAddr(ip); err == nil && a.Is4() {
				out = append(out, a)
			}
		}
		return out
	}
	objs, err := d.p.slices.ByIndex(serviceIndex, svc.Namespace+"/"+svc.Name)
	if err != nil {
		return nil
	}
	seen := map[netip.Addr]bool{}
	for _, o := range objs {
		s, ok := o.(*discoveryv1.EndpointSlice)
		if !ok || s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, ip := range ep.Addresses {
				if a, err := netip.ParseAddr(ip); err == nil && !seen[a] {
					seen[a] = true
					out = append(out, a)
				}
			}
		}
	}
	return out
}
