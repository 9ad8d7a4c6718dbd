package mesh

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/translate"
)

// gammaConfig is what the mesh proxy serves for one State: the listeners
// of proxy.Server (one per frontend and route group, none bound to a
// socket of its own) and the table that sends each steered connection to
// one of them.
type gammaConfig struct {
	snap      *ir.Snapshot
	frontends map[netip.AddrPort]*frontendRoutes
}

// frontendRoutes are the listeners of one steered frontend, by the
// listener key the proxy opens them with (listenKey).
type frontendRoutes struct {
	service string
	// sniff: the Service port has no appProtocol; the first bytes decide
	// between HTTP and the relay.
	sniff bool
	// direct relays the connection's bytes to one of the Service's
	// endpoints, as if there were no mesh: for clients no route applies
	// to, and for what is not HTTP.
	direct string
	// producer serves the producer routes ("" when there are none).
	producer string
	// consumers serve the consumer routes, by client namespace.
	consumers map[string]string
}

// pick returns the listener for a client of namespace ns (empty when the
// client is not a known pod) and whether it serves HTTP: the namespace's
// consumer routes, else the producer routes, else the relay (GEP-1294).
func (fr *frontendRoutes) pick(ns string) (string, bool) {
	if k, ok := fr.consumers[ns]; ok && ns != "" {
		return k, true
	}
	if fr.producer != "" {
		return fr.producer, true
	}
	return fr.direct, false
}

// buildGamma marks the frontends that GAMMA routes apply to as steered (in
// st, which it changes) and builds the proxy's configuration for them.
// Only TCP frontends of a family the proxy has an address for (v4, v6)
// are steered: the others keep going to their endpoints directly.
func buildGamma(st State, mr translate.MeshResult, v4, v6 bool) gammaConfig {
	type svcPort struct {
		service string
		port    uint16
	}
	byPort := make(map[svcPort][]Frontend)
	for _, f := range st.Frontends() {
		if f.Proto != TCP || f.Addr.Is4() && !v4 || f.Addr.Is6() && !v6 {
			continue
		}
		k := svcPort{st[f].Service, f.Port}
		byPort[k] = append(byPort[k], f)
	}
	out := gammaConfig{snap: &ir.Snapshot{}, frontends: make(map[netip.AddrPort]*frontendRoutes)}
	for _, mp := range mr.Ports {
		for _, f := range byPort[svcPort{mp.Service, uint16(mp.Port)}] {
			e := st[f]
			e.Steer = true
			st[f] = e
			fe := netip.AddrPortFrom(f.Addr, f.Port)
			base := "mesh/" + mp.Service + "/" + fe.String()
			fr := &frontendRoutes{service: mp.Service, sniff: mp.AppProtocol == "", consumers: make(map[string]string)}
			direct := ir.Listener{
				Name: base + "/direct", Gateway: mp.Service, Port: uint32(f.Port), Protocol: ir.ProtocolTCP,
				VirtualHosts: []ir.VirtualHost{{Name: base + "/direct", Routes: []ir.Route{{
					Name:  "mesh/" + mp.Service + "/" + strconv.Itoa(int(mp.Port)) + "/direct",
					Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"}},
					Backends: []ir.Backend{{
						Name: mp.Service + ":" + strconv.Itoa(int(mp.Port)), Weight: 1, Policy: ir.LBRoundRobin,
						Endpoints: irEndpoints(e.Backends),
					}},
				}}}},
			}
			fr.direct = out.add(direct)
			if len(mp.Producer) > 0 {
				fr.producer = out.add(httpListener(base+"/producer", mp, f.Port, mp.Producer))
			}
			for _, c := range mp.Consumers {
				fr.consumers[c.Namespace] = out.add(httpListener(base+"/consumer/"+c.Namespace, mp, f.Port, c.Routes))
			}
			out.frontends[fe] = fr
		}
	}
	return out
}

func httpListener(name string, mp translate.MeshPort, port uint16, routes []ir.Route) ir.Listener {
	return ir.Listener{
		Name: name, Gateway: mp.Service, Port: uint32(port), Protocol: ir.ProtocolHTTP,
		VirtualHosts: []ir.VirtualHost{{Name: name, Routes: routes}},
	}
}

// add appends l with its name as its address (a key, never bound: the
// proxy opens it through Options.Listen) and returns its listener key.
func (g *gammaConfig) add(l ir.Listener) string {
	l.Address = l.Name
	g.snap.Listeners = append(g.snap.Listeners, l)
	return listenKey(l.Address, l.Port)
}

// listenKey is the address proxy.Server asks Options.Listen for: the
// listener's Address and Port joined, as it binds them (the mesh proxy
// sets no port offsets).
func listenKey(address string, port uint32) string {
	return net.JoinHostPort(address, strconv.Itoa(int(port)))
}

func irEndpoints(bs []netip.AddrPort) []ir.Endpoint {
	out := make([]ir.Endpoint, len(bs))
	for i, b := range bs {
		out[i] = ir.Endpoint{Address: b.Addr().String(), Port: uint32(b.Port())}
	}
	return out
}

// union is the configuration serving both a and b's frontends (b's
// listeners where both have one): served while the maps change from a's
// steering to b's, so that a connection steered under either finds its
// listener.
func union(a, b gammaConfig) gammaConfig {
	out := gammaConfig{snap: &ir.Snapshot{}, frontends: make(map[netip.AddrPort]*frontendRoutes, len(b.frontends))}
	names := make(map[string]bool, len(b.snap.Listeners))
	for _, l := range b.snap.Listeners {
		names[l.Name] = true
		out.snap.Listeners = append(out.snap.Listeners, l)
	}
	for _, l := range a.snap.Listeners {
		if !names[l.Name] {
			out.snap.Listeners = append(out.snap.Listeners, l)
		}
	}
	for fe, fr := range a.frontends {
		out.frontends[fe] = fr
	}
	for fe, fr := range b.frontends {
		out.frontends[fe] = fr
	}
	return out
}

// covers: b has a listener of every name a has, so serving b alone
// leaves no connection steered under a without its listener.
func covers(b, a gammaConfig) bool {
	names := make(map[string]bool, len(b.snap.Listeners))
	for _, l := range b.snap.Listeners {
		names[l.Name] = true
	}
	for _, l := range a.snap.Listeners {
		if !names[l.Name] {
			return false
		}
	}
	return true
}
