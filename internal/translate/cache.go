package translate

import (
	"encoding/binary"
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/false-systems/rauta/internal/resources"
)

// Cache carries translated HTTPRoutes from one Translate to the next, so a
// translation after one route changed translates that route only: at a
// thousand routes translating each one's rules, backends and endpoints again
// was most of a route change's cost in the controller.
//
// An entry is reused when its route has the same UID and generation (the
// spec is unchanged) and nothing a route's translation reads besides the
// route changed since: Services, EndpointSlices, ReferenceGrants and
// BackendTLSPolicies (a fingerprint of their resource versions), and the
// options. Any change to those, an endpoint moving for example, empties the
// cache: that translation costs what an uncached one does. Routes without a
// UID (files, tests) are never cached. The zero Cache is ready to use; a
// Cache must serve one sequence of translations at a time.
type Cache struct {
	mu     sync.Mutex
	seed   maphash.Seed
	seeded bool
	deps   uint64
	routes map[types.UID]cachedRoute
	// next collects this translation's entries; routes that are gone
	// are not carried over.
	next map[types.UID]cachedRoute
	// serial numbers cached translations (translatedRoute.serial); it
	// starts at a random value, so a Cache made later (a controller that
	// lost and regained its cache) never reuses a number an earlier one
	// gave a different translation.
	serial uint64
	// spare is the map of the translation before last, emptied and
	// reused as next; ix is the index the translations reuse (emptied
	// after each, so it holds no object of a past snapshot).
	spare map[types.UID]cachedRoute
	ix    *index
	// hits and misses count lookups since the Cache was made.
	hits, misses int
}

// Counts returns how many route translations the Cache has reused and how
// many it had to make, since it was made: a controller logs them with each
// sync, so a cache that keeps being emptied shows.
func (c *Cache) Counts() (reused, translated int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// index returns the Cache's index filled with res. Callers hold c.mu.
func (c *Cache) index(res *resources.Resources) *index {
	if c.ix == nil {
		c.ix = newIndex(res)
		return c.ix
	}
	c.ix.fill(res)
	return c.ix
}

type cachedRoute struct {
	generation int64
	tr         translatedRoute
}

// begin starts a translation of res: it empties the cache when the
// dependencies changed. Callers hold c.mu.
func (c *Cache) begin(res *resources.Resources, opts Options) {
	if !c.seeded {
		c.seed, c.seeded = maphash.MakeSeed(), true
		c.serial = rand.Uint64()
	}
	deps := c.fingerprint(res, opts)
	if deps != c.deps || c.routes == nil {
		c.routes = map[types.UID]cachedRoute{}
	}
	c.deps = deps
	if c.spare == nil {
		c.spare = make(map[types.UID]cachedRoute, len(res.HTTPRoutes))
	}
	c.next, c.spare = c.spare, nil
}

// end keeps only the entries of routes this translation saw, and empties
// the index.
func (c *Cache) end() {
	clear(c.routes)
	c.routes, c.next, c.spare = c.next, nil, c.routes
	if c.ix != nil {
		c.ix.clear()
	}
}

// route returns the cached translation of a route (any kind), or translates and
// caches it.
func (c *Cache) route(uid types.UID, generation int64, translate func() translatedRoute) translatedRoute {
	if c == nil || uid == "" { // no cache (Options.Cache unset), or an object without identity
		return translate()
	}
	if e, ok := c.routes[uid]; ok && e.generation == generation {
		c.hits++
		c.next[uid] = e
		return e.tr
	}
	c.misses++
	e := cachedRoute{generation: generation, tr: translate()}
	if !namesPolicies(e.tr) {
		c.serial++
		e.tr.serial = max(c.serial, 1) // 0 means "not cached"
		c.next[uid] = e
	}
	return e.tr
}

// routeFingerprint is the ir.Route.Fingerprint of match mi of rule rule of
// the cached translation serial, attached with hostnames: everything an IR
// route is made of. A route keeps its fingerprint while it and what it
// reads are unchanged, so the router reuses its compiled form and the
// config stream its encoding without comparing them.
func routeFingerprint(serial uint64, rule, mi int, hostnames []string) string {
	var b strings.Builder
	var head [8 + 2*binary.MaxVarintLen64]byte
	binary.LittleEndian.PutUint64(head[:8], serial)
	n := binary.PutUvarint(head[8:], uint64(rule))
	n += binary.PutUvarint(head[8+n:], uint64(mi))
	b.Grow(8 + n + 32)
	b.Write(head[:8+n])
	for _, h := range hostnames {
		b.WriteByte(0)
		b.WriteString(h)
	}
	return b.String()
}

// namesPolicies reports whether a translation points at BackendTLSPolicy
// objects. Those are this translation's objects, and the policies' status is
// keyed by them, so such a route (rare: RAUTA refuses backend TLS) is
// translated afresh every time.
func namesPolicies(tr translatedRoute) bool {
	for _, p := range tr.refProblems {
		if len(p.policies) > 0 {
			return true
		}
	}
	return false
}

// fingerprint hashes what a route's translation reads besides the route:
// the identity and resource version of every Service, EndpointSlice,
// ReferenceGrant and BackendTLSPolicy, and the controller name. Objects
// are combined order-independently (the lists come in cache order).
func (c *Cache) fingerprint(res *resources.Resources, opts Options) uint64 {
	var sum uint64
	var h maphash.Hash
	h.SetSeed(c.seed)
	add := func(kind string, uid types.UID, ns, name, rv string) {
		h.Reset()
		for _, s := range [...]string{kind, "\x00", string(uid), ns, "/", name, "\x00", rv} {
			h.WriteString(s)
		}
		sum += h.Sum64()
	}
	for _, o := range res.Services {
		add("Service", o.UID, o.Namespace, o.Name, o.ResourceVersion)
	}
	for _, o := range res.EndpointSlices {
		add("EndpointSlice", o.UID, o.Namespace, o.Name, o.ResourceVersion)
	}
	for _, o := range res.ReferenceGrants {
		add("ReferenceGrant", o.UID, o.Namespace, o.Name, o.ResourceVersion)
	}
	for _, o := range res.BackendTLSPolicies {
		add("BackendTLSPolicy", o.UID, o.Namespace, o.Name, o.ResourceVersion)
	}
	counts := strconv.Itoa(len(res.Services)) + "/" + strconv.Itoa(len(res.EndpointSlices)) + "/" +
		strconv.Itoa(len(res.ReferenceGrants)) + "/" + strconv.Itoa(len(res.BackendTLSPolicies))
	return sum ^ maphash.String(c.seed, counts+"\x00"+opts.ControllerName)
}
