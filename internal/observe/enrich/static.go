package enrich

import (
	"fmt"
	"net/netip"
	"os"

	"sigs.k8s.io/yaml"
)

// StaticFile is the format of the static enrichment file (YAML or JSON):
//
//	endpoints:
//	- ip: 10.0.0.5
//	  pod: web-1
//	  namespace: default
//	  service: web
//	  uid: 0b5c...        # optional: the pod's UID, which names it by cgroup (TLS plaintext)
//	routes:                # optional: known routes per service (path prefixes)
//	  web: [/api/users, /api/orders, /healthz]
type StaticFile struct {
	Endpoints []StaticEndpoint    `json:"endpoints"`
	Routes    map[string][]string `json:"routes,omitempty"`
}

// StaticEndpoint is one address.
type StaticEndpoint struct {
	IP        string `json:"ip"`
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Service   string `json:"service,omitempty"`
	// UID is the pod's UID: plaintext from inside TLS is attributed to
	// the pod by its process's cgroup, whose path names the UID.
	UID string `json:"uid,omitempty"`
}

// Static is a fixed table.
type Static struct {
	m      map[netip.Addr]Info
	uids   map[string]Info
	routes map[string][]string
}

// Routes implements RouteSource.
func (s *Static) Routes(service string) []string { return s.routes[service] }

// PodByKey implements PodIndex.
func (s *Static) PodByKey(key string) (Info, bool) {
	i, ok := s.uids[key]
	return i, ok
}

// Lookup implements Resolver.
func (s *Static) Lookup(ip netip.Addr) (Info, bool) {
	i, ok := s.m[ip.Unmap()]
	return i, ok
}

// LoadStatic reads a static enrichment file.
func LoadStatic(path string) (*Static, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read enrichment file: %w", err)
	}
	s, err := ParseStatic(data)
	if err != nil {
		return nil, fmt.Errorf("enrichment file %s: %w", path, err)
	}
	return s, nil
}

// ParseStatic decodes the file content strictly (unknown fields are errors).
func ParseStatic(data []byte) (*Static, error) {
	var f StaticFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	s := &Static{m: make(map[netip.Addr]Info, len(f.Endpoints)), uids: map[string]Info{}, routes: f.Routes}
	for svc, rs := range f.Routes {
		for i, r := range rs {
			if r == "" || r[0] != '/' {
				return nil, fmt.Errorf("routes.%s[%d]: %q is not a path prefix", svc, i, r)
			}
		}
	}
	for i, e := range f.Endpoints {
		ip, err := netip.ParseAddr(e.IP)
		if err != nil {
			return nil, fmt.Errorf("endpoints[%d].ip: %q is not an IP address", i, e.IP)
		}
		if e.Pod == "" && e.Service == "" {
			return nil, fmt.Errorf("endpoints[%d] (%s): needs pod or service", i, e.IP)
		}
		ip = ip.Unmap()
		if _, dup := s.m[ip]; dup {
			return nil, fmt.Errorf("endpoints[%d].ip: %s listed twice", i, ip)
		}
		s.m[ip] = Info{Pod: e.Pod, Namespace: e.Namespace, Service: e.Service}
		if e.UID != "" {
			if e.Pod == "" {
				return nil, fmt.Errorf("endpoints[%d] (%s): uid without pod", i, ip)
			}
			pod := Info{Pod: e.Pod, Namespace: e.Namespace}
			s.uids[e.UID], s.uids[DevclusterPodKey(e.UID)] = pod, pod
		}
	}
	return s, nil
}
