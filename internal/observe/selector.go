package observe

import (
	"cmp"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
)

// autoKeyword in the interface list selects every pod-side host interface.
const autoKeyword = "auto"

// linkDesc is what selection needs to know of one link in the observed
// namespace. Gathered from netlink by listLinks; plain data so that the
// rules are tested without a kernel.
type linkDesc struct {
	Name  string
	Index int
	// Type is netlink's link kind: "veth", "bridge", "device" (a physical
	// NIC), "dummy", ...
	Type     string
	Loopback bool
	// Master is the ifindex of the bridge (or bond) the link is enslaved
	// to, 0 when none.
	Master int
	// Uplink: the link carries a default route (any table, either
	// family). That is the node's way out, not a pod.
	Uplink bool
	// Routes are the destinations routed through this link (collected only
	// when a pod CIDR narrows the selection).
	Routes []netip.Prefix
}

// ifaceSelector holds the parsed interface list: exact names (attached
// whatever they are, and required at start), glob patterns, and auto.
type ifaceSelector struct {
	names    []string
	patterns []string
	auto     bool
	// podCIDRs narrow patterns and auto to links that route into one of
	// them (themselves or through the bridge they are enslaved to).
	podCIDRs []netip.Prefix
}

// isPattern: the entry uses path.Match syntax.
func isPattern(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// parseSelector splits the configured entries. Patterns are checked here
// so that a typo is a start-up error, not a silent empty selection.
func parseSelector(entries []string, podCIDRs []netip.Prefix) (*ifaceSelector, error) {
	s := &ifaceSelector{podCIDRs: podCIDRs}
	for _, e := range entries {
		switch {
		case e == autoKeyword:
			s.auto = true
		case isPattern(e):
			if _, err := path.Match(e, ""); err != nil {
				return nil, fmt.Errorf("interface pattern %q: %w", e, err)
			}
			s.patterns = append(s.patterns, e)
		default:
			s.names = append(s.names, e)
		}
	}
	return s, nil
}

// discovers: the list selects interfaces that may come and go, so none is
// required at start.
func (s *ifaceSelector) discovers() bool { return s.auto || len(s.patterns) > 0 }

// needsRoutes: selection depends on routes (uplinks for auto, pod CIDRs).
func (s *ifaceSelector) needsRoutes() bool { return s.auto || len(s.podCIDRs) > 0 }

func (s *ifaceSelector) named(name string) bool { return slices.Contains(s.names, name) }

// selects applies the rules to one link; byIndex resolves its master.
//
//   - an exact name is taken whatever the link is: the user asked for it;
//   - a pattern matches the name (path.Match);
//   - auto takes veth links that are neither loopback nor an uplink: the
//     host side of a pod's veth pair (Calico cali*, Cilium lxc*, the
//     bridge and ptp plugins' veth*, kindnet) whatever the CNI names it;
//   - patterns and auto are narrowed by the pod CIDRs when set.
func (s *ifaceSelector) selects(l *linkDesc, byIndex map[int]*linkDesc) bool {
	if s.named(l.Name) {
		return true
	}
	matched := s.auto && l.Type == "veth" && !l.Loopback && !l.Uplink
	for _, p := range s.patterns {
		if matched {
			break
		}
		matched, _ = path.Match(p, l.Name)
	}
	if !matched {
		return false
	}
	return len(s.podCIDRs) == 0 || s.routesIntoPods(l, byIndex)
}

// routesIntoPods: a route through the link, or through the bridge it is
// enslaved to, leads into a pod CIDR. Calico and kindnet route each pod's
// /32 to its veth; the bridge plugin (flannel's cni0) routes the node's pod
// range to the bridge. The peer's own addresses are not used: they live
// in the pod's namespace, which the observer would have to enter for each
// veth, and the netns id the link reports is not a path it can open.
func (s *ifaceSelector) routesIntoPods(l *linkDesc, byIndex map[int]*linkDesc) bool {
	if s.anyInPods(l.Routes) {
		return true
	}
	if m := byIndex[l.Master]; m != nil && l.Master != 0 {
		return s.anyInPods(m.Routes)
	}
	return false
}

func (s *ifaceSelector) anyInPods(routes []netip.Prefix) bool {
	for _, r := range routes {
		for _, c := range s.podCIDRs {
			if r.Addr().Is4() == c.Addr().Is4() && r.Bits() >= c.Bits() && c.Contains(r.Addr()) {
				return true
			}
		}
	}
	return false
}

// attachPlan is what one reconciliation does.
type attachPlan struct {
	attach  []linkDesc // selected, not attached, within the cap
	detach  []int      // attached ifindexes no longer selected or gone
	gone    []int      // those of detach whose link no longer exists
	refused []linkDesc // selected but over the cap
}

// plan compares the selected links with the attached ifindexes. Attached
// links keep their place under the cap (nothing is detached to make room);
// new ones are taken exact names first, then oldest link (lowest ifindex)
// first, so that the choice is stable from one resync to the next.
func (s *ifaceSelector) plan(links []linkDesc, attached map[int]bool, limit int) attachPlan {
	byIndex := make(map[int]*linkDesc, len(links))
	for i := range links {
		byIndex[links[i].Index] = &links[i]
	}
	var p attachPlan
	var want []linkDesc
	keep := 0
	selected := make(map[int]bool)
	for i := range links {
		l := &links[i]
		if !s.selects(l, byIndex) {
			continue
		}
		selected[l.Index] = true
		if attached[l.Index] {
			keep++
		} else {
			want = append(want, *l)
		}
	}
	for idx := range attached {
		if !selected[idx] {
			p.detach = append(p.detach, idx)
			if byIndex[idx] == nil {
				p.gone = append(p.gone, idx)
			}
		}
	}
	slices.Sort(p.detach)
	slices.Sort(p.gone)
	slices.SortFunc(want, func(a, b linkDesc) int {
		an, bn := s.nameRank(a.Name), s.nameRank(b.Name)
		if an != bn {
			return cmp.Compare(an, bn)
		}
		return cmp.Compare(a.Index, b.Index)
	})
	room := max(0, limit-keep)
	if len(want) > room {
		p.refused = want[room:]
		want = want[:room]
	}
	p.attach = want
	return p
}

// nameRank orders exact names by their place in the list, before the
// rest.
func (s *ifaceSelector) nameRank(name string) int {
	if i := slices.Index(s.names, name); i >= 0 {
		return i
	}
	return len(s.names)
}
