package translate

import (
	"sort"

	"github.com/false-systems/rauta/internal/ir"
)

// buildIR assembles the routing model from the programmed listeners of every
// accepted Gateway: one ir.Listener per Gateway and port, one VirtualHost per
// Gateway API listener on it.
func buildIR(gws []*gatewayState) *ir.Snapshot {
	snap := &ir.Snapshot{}
	for _, gs := range gws {
		if !gs.accepted {
			continue
		}
		byPort := make(map[portKey][]*listenerState)
		var ports []portKey
		for _, l := range gs.served() {
			if !l.programmed() {
				continue
			}
			k := keyOf(l.spec)
			if _, ok := byPort[k]; !ok {
				ports = append(ports, k)
			}
			byPort[k] = append(byPort[k], l)
		}
		sort.Slice(ports, func(i, j int) bool {
			if ports[i].port != ports[j].port {
				return ports[i].port < ports[j].port
			}
			return !ports[i].udp && ports[j].udp
		})
		for _, p := range ports {
			snap.Listeners = append(snap.Listeners, buildListener(gs, p, byPort[p]))
		}
	}
	return snap
}

func buildListener(gs *gatewayState, port portKey, ls []*listenerState) ir.Listener {
	out := ir.Listener{
		Name:     ListenerName(gs.key, int32(port.port), port.udp),
		Gateway:  gs.key,
		Address:  gs.address,
		Port:     uint32(port.port),
		Protocol: ir.Protocol(ls[0].spec.Protocol),

		BackendClientCertificate: gs.backendClientCert,
	}
	certIndex := make(map[string]int)
	for _, l := range ls {
		if l.clientValidation != nil {
			// One config per port: every listener on it has the same.
			out.ClientValidation = l.clientValidation
		}
		for _, c := range l.certs {
			if i, ok := certIndex[c.Name]; ok {
				if !contains(out.Certificates[i].Hostnames, l.hostname) {
					out.Certificates[i].Hostnames = append(out.Certificates[i].Hostnames, l.hostname)
				}
				continue
			}
			certIndex[c.Name] = len(out.Certificates)
			out.Certificates = append(out.Certificates, c)
		}
		vh := ir.VirtualHost{Name: l.virtualHostName(), Hostname: l.hostname, TerminateTLS: terminatesTLS(l.spec)}
		if len(l.routes) > 0 {
			vh.Routes = make([]ir.Route, 0, len(l.routes))
		}
		for _, e := range sortByPrecedence(l.routes) {
			vh.Routes = append(vh.Routes, e.irRoute())
		}
		out.VirtualHosts = append(out.VirtualHosts, vh)
	}
	sort.SliceStable(out.VirtualHosts, func(i, j int) bool {
		si, sj := hostnameSpecificity(out.VirtualHosts[i].Hostname), hostnameSpecificity(out.VirtualHosts[j].Hostname)
		if si != sj {
			return si > sj
		}
		return out.VirtualHosts[i].Hostname < out.VirtualHosts[j].Hostname
	})
	return out
}
