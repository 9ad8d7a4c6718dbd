package svcproxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// Event reasons on Services.
const (
	reasonAllocated        = "IPAllocated"
	reasonAllocationFailed = "AllocationFailed"
	reasonListenFailed     = "ListenFailed"
)

// sync brings the listeners, the pool and the load-balancer status of one Service in line
// with the API server.
func (p *Proxy) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil //nolint:nilerr // keys come from the informers; a malformed one would never sync, so retrying is pointless
	}
	svc, err := p.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		p.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if _, other := svc.Labels[LabelServiceProxyName]; other {
		// Another proxy's (as kube-proxy): the cluster DNS Service, answered by dns.go.
		p.forget(key)
		return nil
	}

	lbIP := p.allocate(key, svc)
	fronts := frontendsOf(svc, p.cfg.ServiceCIDR, lbIP, p.cfg.NodePortAddr)
	objs, err := p.slices.ByIndex(serviceIndex, key)
	if err != nil {
		return fmt.Errorf("endpointslices of %s: %w", key, err)
	}
	eps := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if s, ok := o.(*discoveryv1.EndpointSlice); ok {
			eps = append(eps, s)
		}
	}
	errs := []error{p.applyListeners(svc, key, fronts, eps)}

	switch {
	case ownLoadBalancer(svc) && p.pool != nil:
		var ingress []corev1.LoadBalancerIngress
		if lbIP.IsValid() {
			vip := corev1.LoadBalancerIPModeVIP
			ingress = []corev1.LoadBalancerIngress{{IP: lbIP.String(), IPMode: &vip}}
		}
		errs = append(errs, p.writeIngress(ctx, svc, ingress))
	case svc.Spec.Type != corev1.ServiceTypeLoadBalancer && p.pool != nil && p.pool.prefix.Contains(statusIP(svc)):
		// The type changed away from LoadBalancer: take back the address we published.
		errs = append(errs, p.writeIngress(ctx, svc, nil))
	}
	return errors.Join(errs...)
}

// allocate returns svc's load-balancer address, or the zero Addr when it has none (not a
// LoadBalancer of ours, or the request cannot be met: then an Event says why).
func (p *Proxy) allocate(key string, svc *corev1.Service) netip.Addr {
	if p.pool == nil {
		return netip.Addr{}
	}
	if !ownLoadBalancer(svc) {
		p.release(key)
		return netip.Addr{}
	}
	want, err := requestedIP(svc)
	if err != nil {
		p.release(key)
		p.warn(svc, key, reasonAllocationFailed, err.Error())
		return netip.Addr{}
	}
	before, had := p.pool.lookup(key)
	a, err := p.pool.assign(key, want, statusIP(svc), p.claimedByOthers(key))
	if err != nil {
		if had {
			p.requeueWaiting(key)
		}
		p.warn(svc, key, reasonAllocationFailed, err.Error())
		return netip.Addr{}
	}
	if had && before != a {
		p.requeueWaiting(key)
	}
	p.clearWarning(key, reasonAllocationFailed)
	if !had || before != a {
		p.recorder.Eventf(svc, corev1.EventTypeNormal, reasonAllocated, "load-balancer address %s assigned from %s", a, p.pool.prefix)
	}
	return a
}

// claimedByOthers returns the addresses other LoadBalancer Services of ours request or
// already show in their status, so the lowest free address is not taken from a Service
// whose turn has not come yet (after a restart the watch delivers Services in any order).
func (p *Proxy) claimedByOthers(key string) func(netip.Addr) bool {
	all, err := p.services.List(labels.Everything())
	if err != nil {
		return nil
	}
	claimed := map[netip.Addr]bool{}
	for _, s := range all {
		k, _ := cache.MetaNamespaceKeyFunc(s)
		if k == key || !ownLoadBalancer(s) {
			continue
		}
		if a, err := requestedIP(s); err == nil && a.IsValid() {
			claimed[a] = true
		}
		if a := statusIP(s); a.IsValid() {
			claimed[a] = true
		}
	}
	return func(a netip.Addr) bool { return claimed[a] }
}

// applyListeners opens the Service's missing listeners, closes those it no longer wants
// and hands every listener the current endpoints. Connections already forwarded are left
// alone: they finish on the endpoint they have.
func (p *Proxy) applyListeners(svc *corev1.Service, key string, fronts map[frontend]corev1.ServicePort, eps []*discoveryv1.EndpointSlice) error {
	mine := p.owned[key]
	if mine == nil {
		mine = map[frontend]struct{}{}
		p.owned[key] = mine
	}
	var errs []error
	for addr := range mine {
		if _, keep := fronts[addr]; !keep {
			errs = append(errs, p.closeListener(addr))
			delete(mine, addr)
		}
	}
	var failed []string
	for addr, port := range fronts {
		backends := backendsFor(port, eps)
		if len(backends) == 0 && key == "default/kubernetes" && p.cfg.APIServer.IsValid() {
			backends = []netip.AddrPort{p.cfg.APIServer}
		}
		l, err := p.listener(addr, key)
		if err != nil {
			errs = append(errs, err)
			failed = append(failed, err.Error())
			continue
		}
		l.fwd.setBackends(backends)
		mine[addr] = struct{}{}
	}
	if len(failed) > 0 {
		p.warn(svc, key, reasonListenFailed, fmt.Sprint(failed))
	} else {
		p.clearWarning(key, reasonListenFailed)
	}
	return errors.Join(errs...)
}

// listener returns the listener on addr, opening it if needed. Addresses are unique per
// Service (the API server allocates ClusterIPs and nodePorts, the pool load-balancer
// addresses), so one held for another key is left from a Service deleted and recreated
// under a new name before the deletion was seen: it changes owner.
func (p *Proxy) listener(addr frontend, key string) (*front, error) {
	p.mu.Lock()
	l := p.listeners[addr]
	p.mu.Unlock()
	if l != nil {
		if l.owner != key {
			delete(p.owned[l.owner], addr)
			l.owner = key
		}
		return l, nil
	}
	var fwd forwarder
	var err error
	if addr.proto == corev1.ProtocolUDP {
		fwd, err = listenUDP(addr.addr, p.cfg.MaxUDPFlowsPerListener, p.cfg.UDPIdleTimeout)
	} else {
		fwd, err = listen(addr.addr, p.cfg.MaxConnsPerListener, p.cfg.DialTimeout, p.cfg.DialAttempts, p.conns)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	l = &front{owner: key, fwd: fwd}
	p.mu.Lock()
	p.listeners[addr] = l
	p.mu.Unlock()
	return l, nil
}

func (p *Proxy) closeListener(addr frontend) error {
	p.mu.Lock()
	l := p.listeners[addr]
	delete(p.listeners, addr)
	p.mu.Unlock()
	if l == nil {
		return nil
	}
	if err := l.fwd.close(); err != nil {
		return fmt.Errorf("close listener %s: %w", addr, err)
	}
	return nil
}

// forget undoes everything for a deleted Service.
func (p *Proxy) forget(key string) {
	for addr := range p.owned[key] {
		if err := p.closeListener(addr); err != nil {
			p.cfg.Log.Warn("close listener", "service", key, "err", err)
		}
	}
	delete(p.owned, key)
	p.release(key)
	for _, r := range []string{reasonAllocationFailed, reasonListenFailed} {
		p.clearWarning(key, r)
	}
}

// release frees key's load-balancer address, if it has one, for the Services waiting.
func (p *Proxy) release(key string) {
	if p.pool != nil && p.pool.release(key) {
		p.requeueWaiting(key)
	}
}

// requeueWaiting syncs again every LoadBalancer Service of ours without an address (other
// than key), since an address was just freed: one may have asked for exactly that address,
// or the pool may have been exhausted.
func (p *Proxy) requeueWaiting(key string) {
	all, err := p.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range all {
		k, _ := cache.MetaNamespaceKeyFunc(s)
		if _, has := p.pool.lookup(k); k != key && !has && ownLoadBalancer(s) {
			p.queue.Add(k)
		}
	}
}

// warn records a Warning Event once per distinct message.
func (p *Proxy) warn(svc *corev1.Service, key, reason, msg string) {
	if p.warnings[key+"\x00"+reason] == msg {
		return
	}
	p.warnings[key+"\x00"+reason] = msg
	p.cfg.Log.Warn(reason, "service", key, "msg", msg)
	p.recorder.Event(svc, corev1.EventTypeWarning, reason, msg)
}

func (p *Proxy) clearWarning(key, reason string) {
	delete(p.warnings, key+"\x00"+reason)
}
