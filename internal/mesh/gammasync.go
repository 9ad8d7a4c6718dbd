package mesh

import (
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/proxy"
	"github.com/false-systems/rauta/internal/translate"
)

func emptyGamma() gammaConfig {
	return gammaConfig{snap: &ir.Snapshot{}, frontends: map[netip.AddrPort]*frontendRoutes{}}
}

// apply writes st into the maps and, with GAMMA on, the GAMMA routes into
// the proxy, in an order in which no connection is steered to a listener
// the proxy does not have: listeners for the old and the new steered
// frontends first, then the maps (which start and stop steering), then
// the proxy without the listeners only the old frontends used. A
// connection to a frontend that stops being steered goes straight to
// its endpoints from then on.
func (s *syncer) apply(w *watcher, in Input, st State) error {
	if s.proxy == nil {
		return s.writer.Apply(st)
	}
	res, ps, optOut, err := w.gammaInput(in)
	if err != nil {
		// Steering is left as it is: the maps are not written with a
		// State that lost its Steer flags.
		return fmt.Errorf("read GAMMA routes: %w", err)
	}
	mr := translate.TranslateMesh(res)
	next := buildGamma(st, mr, s.proxy4.IsValid(), s.proxy6.IsValid())
	var errs []error
	if err := s.proxy.apply(union(s.gamma, next), ps); err != nil {
		// The proxy kept what it served: steer only its frontends, and
		// try the new routes again at the next sync.
		errs = append(errs, fmt.Errorf("mesh proxy: %w", err))
		for f, e := range st {
			if e.Steer && s.gamma.frontends[netip.AddrPortFrom(f.Addr, f.Port)] == nil {
				e.Steer = false
				st[f] = e
			}
		}
		next = s.gamma
	}
	// The programs learn the proxy's address only now: frontends that
	// pinned maps still flag as steered (an earlier agent's) went to
	// their endpoints until the proxy had listeners for them.
	if !s.steering {
		if err := s.setProxy(s.proxy4, s.proxy6); err != nil {
			return errors.Join(append(errs, fmt.Errorf("set the proxy address: %w", err))...)
		}
		s.steering = true
	}
	// Opted-out pods first: a frontend that starts being steered now is
	// never steered for them.
	if err := s.applyOptOut(optOut); err != nil {
		errs = append(errs, err)
	}
	if err := s.writer.Apply(st); err != nil {
		errs = append(errs, err)
	}
	if err := s.setLocal(localAddrs(s.proxy4, s.proxy6, ps.local, optOut)); err != nil {
		errs = append(errs, fmt.Errorf("local addresses: %w", err))
	}
	if !covers(next, s.gamma) {
		if err := s.proxy.apply(next, ps); err != nil {
			errs = append(errs, fmt.Errorf("mesh proxy: %w", err))
		}
	}
	s.gamma = next
	if s.routeStatus != nil {
		s.routeStatus.post(statusJob{routes: res.HTTPRoutes, status: mr.Status})
	}
	s.mu.Lock()
	s.meshStatus = mr.Status
	s.mu.Unlock()
	return errors.Join(errs...)
}

// routeParentStatus is one GAMMA parentRef's conditions in /status.
type routeParentStatus struct {
	Route      string            `json:"route"`
	Parent     string            `json:"parent"`
	Conditions map[string]string `json:"conditions"`
}

// gammaRouteStatus is the status the mesh computed for each HTTPRoute
// parentRef to a Service (controller translate.MeshControllerName), as
// "Status Reason: message" by condition type.
func gammaRouteStatus(st *translate.Status) []routeParentStatus {
	out := []routeParentStatus{}
	if st == nil {
		return out
	}
	for _, r := range st.HTTPRoutes {
		for _, p := range r.Status.Parents {
			ns := r.Namespace
			if p.ParentRef.Namespace != nil {
				ns = string(*p.ParentRef.Namespace)
			}
			e := routeParentStatus{Route: r.Namespace + "/" + r.Name, Parent: "Service " + ns + "/" + string(p.ParentRef.Name), Conditions: map[string]string{}}
			if p.ParentRef.Port != nil {
				e.Parent += fmt.Sprintf(" port %d", *p.ParentRef.Port)
			}
			for _, c := range p.Conditions {
				e.Conditions[c.Type] = fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
			}
			out = append(out, e)
		}
	}
	return out
}

// localAddrs are the addresses whose connections to each other sockmap
// shortcuts: the proxy's and this node's pods', but those of pods that
// opted out of the mesh.
func localAddrs(proxy4, proxy6 netip.AddrPort, pods map[netip.Addr]proxy.Workload, optOut []*corev1.Pod) []netip.Addr {
	out := make([]netip.Addr, 0, len(pods)+2)
	for _, p := range []netip.AddrPort{proxy4, proxy6} {
		if p.IsValid() {
			out = append(out, p.Addr())
		}
	}
	skip := podWorkloads(optOut)
	for a := range pods {
		if _, ok := skip[a]; !ok {
			out = append(out, a)
		}
	}
	return out
}

// applyOptOut gives the programs the cgroups of the pods that opted out.
// A pod whose cgroup is not there yet (its sandbox is starting) is found at
// a later sync: optOutRetry makes one soon.
func (s *syncer) applyOptOut(pods []*corev1.Pod) error {
	ids, missing, err := s.podCgroups.ids(pods)
	s.metrics.optedOut.WithLabelValues("applied").Set(float64(len(ids)))
	s.metrics.optedOut.WithLabelValues("no_cgroup").Set(float64(len(missing)))
	for _, p := range missing {
		s.logger.Debug("mesh: opted-out pod has no cgroup yet", "pod", p.Namespace+"/"+p.Name, "uid", p.UID)
	}
	s.optOutRetry.schedule(len(missing) > 0)
	if serr := s.setOptOut(ids); serr != nil {
		err = errors.Join(err, fmt.Errorf("opted-out cgroups: %w", serr))
	}
	return err
}
