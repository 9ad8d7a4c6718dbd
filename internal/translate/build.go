package translate

import (
	"fmt"
	"sort"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

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
		byPort := make(map[gwv1.PortNumber][]*listenerState)
		var ports []gwv1.PortNumber
		for _, l := range gs.served() {
			if !l.programmed() {
				continue
			}
			if _, ok := byPort[l.spec.Port]; !ok {
				ports = append(ports, l.spec.Port)
			}
			byPort[l.spec.Port] = append(byPort[l.spec.Port], l)
		}
		sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
		for _, p := range ports {
			snap.Listeners = append(snap.Listeners, buildListener(gs, p, byPort[p]))
		}
	}
	return snap
}

func buildListener(gs *gatewayState, port gwv1.PortNumber, ls []*listenerState) ir.Listener {
	out := ir.Listener{
		Name:     fmt.Sprintf("%s/%d", gs.key, port),
		Gateway:  gs.key,
		Address:  gs.address,
		Port:     uint32(port),
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
			vh.Routes = append(vh.Routes, e.route)
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
