package configstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"

	"github.com/fxamacker/cbor/v2"

	"github.com/false-systems/rauta/internal/ir"
)

// A route change at a thousand routes changes one route of a Gateway's
// snapshot; decoding every route again was most of what the change cost a
// data plane. The wire types below mirror a message down to the routes,
// which they keep raw. A stream that asked for deltas gets, after its first
// Config, each route the previous Config had as its position there
// (deltaFrame); in a whole Config, a route whose encoding is the same as in
// the previous one is taken from it, already decoded. Either way a route
// keeps the hash of its encoding as ir.Route.Fingerprint, so the router
// reuses its compiled form with a comparison of 16 bytes instead of a deep
// one. The encoding is deterministic (frame.go), so equal routes have equal
// encodings.
//
// The embedded IR types bring every field along; the outer field of the
// same name (JSON's rule, which the CBOR codec follows) replaces the one
// that holds routes.

type wireMessage struct {
	Config    *wireConfig `json:"config,omitempty"`
	Heartbeat bool        `json:"heartbeat,omitempty"`
}

type wireConfig struct {
	Config
	Snapshot *wireSnapshot `json:"snapshot"`
	// Base, when set, makes this a delta (deltaFrame): a route given as
	// an unsigned integer is the route at that position in Config Base,
	// the one the stream sent before.
	Base string `json:"base,omitempty"`
}

type wireSnapshot struct {
	Listeners []wireListener `json:"listeners,omitempty"`
}

type wireListener struct {
	ir.Listener
	VirtualHosts []wireVirtualHost `json:"virtualHosts,omitempty"`
}

type wireVirtualHost struct {
	ir.VirtualHost
	Routes []cbor.RawMessage `json:"routes,omitempty"`
	// digests are the Routes' SHA-256, as the Encoder computed them (not
	// sent; nil in a decoded frame).
	digests []routeDigest
}

// digest returns the digest of route k, computing it when the Encoder
// did not.
func (wv *wireVirtualHost) digest(k int) routeDigest {
	if k < len(wv.digests) {
		return wv.digests[k]
	}
	return sha256.Sum256(wv.Routes[k])
}

// frameDecoder decodes one stream's frames, keeping the routes of the last
// Config it decoded (and nothing older) for the next one.
//
// Routes are known by a 128-bit hash of their encoding (two maphash sums
// with independent seeds), not by the encoding itself: at 10,000 routes
// the encodings are about 9 MB a data plane would hold for nothing. A
// false match needs a 128-bit collision among one Config's routes (about
// 10^-30 at 10,000), and the input is the controller's, not a client's.
type frameDecoder struct {
	seeds  [2]maphash.Seed
	seeded bool
	// version and flat are the last Config decoded and its routes in
	// order, which a delta refers to by position.
	version string
	flat    []decodedRoute
}

// decodedRoute is a route of the last Config decoded: the route itself in
// that Config's snapshot (which nothing modifies), so a thousand routes are
// not copied once more to be remembered. Its hash is its Fingerprint, not
// kept twice (16 bytes a route, 0.4 MB at 25,100 routes).
type decodedRoute struct {
	route *ir.Route
}

// hash is the route's hash, read back from its Fingerprint.
func (dr decodedRoute) hash() routeHash {
	var h routeHash
	if f := dr.route.Fingerprint; len(f) == 16 {
		for i := 0; i < 8; i++ {
			h[0] |= uint64(f[i]) << (8 * i)
			h[1] |= uint64(f[8+i]) << (8 * i)
		}
	}
	return h
}

type routeHash [2]uint64

func (d *frameDecoder) hash(raw []byte) routeHash {
	if !d.seeded {
		d.seeds, d.seeded = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, true
	}
	return routeHash{maphash.Bytes(d.seeds[0], raw), maphash.Bytes(d.seeds[1], raw)}
}

// String is the hash as an ir.Route.Fingerprint.
func (h routeHash) String() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], h[0])
	binary.LittleEndian.PutUint64(b[8:], h[1])
	return string(b[:])
}

// read reads and decodes one frame of at most limit bytes.
func (d *frameDecoder) read(r io.Reader, limit int) (message, error) {
	body, err := readFrameBody(r, limit)
	if err != nil {
		return message{}, err
	}
	var w wireMessage
	if err := decMode.Unmarshal(body, &w); err != nil {
		return message{}, fmt.Errorf("config stream: %w", err)
	}
	m := message{Heartbeat: w.Heartbeat}
	if w.Config == nil {
		return m, nil
	}
	c := w.Config.Config
	delta := w.Config.Base != ""
	if delta && w.Config.Base != d.version {
		return message{}, fmt.Errorf("config stream: a delta against config %q, but the last config was %q", w.Config.Base, d.version)
	}
	var flat []decodedRoute
	if w.Config.Snapshot != nil {
		snap, f, err := d.snapshot(w.Config.Snapshot, delta)
		if err != nil {
			return message{}, err
		}
		c.Snapshot, flat = snap, f
	} else if delta {
		return message{}, fmt.Errorf("config stream: a delta without a snapshot")
	}
	d.version, d.flat = c.Version, flat
	m.Config = &c
	return m, nil
}

// snapshot builds the IR of ws and returns its routes in order too. A
// whole Config's route whose encoding the last Config (or an earlier
// place in this one) had is taken from there, not decoded again; in a
// delta, a route given as an unsigned integer is the route at that
// position in the last Config.
func (d *frameDecoder) snapshot(ws *wireSnapshot, delta bool) (*ir.Snapshot, []decodedRoute, error) {
	snap := &ir.Snapshot{}
	flat := make([]decodedRoute, 0, len(d.flat))
	var prev, seen map[routeHash]int // positions in d.flat and in flat
	if !delta {
		prev = make(map[routeHash]int, len(d.flat))
		for i, dr := range d.flat {
			prev[dr.hash()] = i
		}
		seen = make(map[routeHash]int, len(d.flat))
	}
	if len(ws.Listeners) > 0 {
		snap.Listeners = make([]ir.Listener, len(ws.Listeners))
	}
	var in *interner // made for the first route decoded
	firstRoutes := 0 // every route of a stream's first Config is decoded
	if len(d.flat) == 0 {
		for i := range ws.Listeners {
			for j := range ws.Listeners[i].VirtualHosts {
				firstRoutes += len(ws.Listeners[i].VirtualHosts[j].Routes)
			}
		}
	}
	for i := range ws.Listeners {
		wl := &ws.Listeners[i]
		l := wl.Listener
		l.VirtualHosts = nil
		if len(wl.VirtualHosts) > 0 {
			l.VirtualHosts = make([]ir.VirtualHost, len(wl.VirtualHosts))
		}
		for j := range wl.VirtualHosts {
			wv := &wl.VirtualHosts[j]
			vh := wv.VirtualHost
			vh.Routes = nil
			if len(wv.Routes) > 0 {
				vh.Routes = make([]ir.Route, len(wv.Routes))
			}
			for k, raw := range wv.Routes {
				if at, ok := parseUint(raw); delta && ok {
					if at >= uint64(len(d.flat)) {
						return nil, nil, fmt.Errorf("config stream: listener %s: route %d: no route %d in the base config", l.Name, k, at)
					}
					vh.Routes[k] = *d.flat[at].route
					flat = append(flat, decodedRoute{route: &vh.Routes[k]})
					continue
				}
				h := d.hash(raw)
				if n, ok := seen[h]; ok {
					vh.Routes[k] = *flat[n].route
				} else if n, ok := prev[h]; ok {
					vh.Routes[k] = *d.flat[n].route
				} else {
					if err := decMode.Unmarshal(raw, &vh.Routes[k]); err != nil {
						return nil, nil, fmt.Errorf("config stream: listener %s: route %d: %w", l.Name, k, err)
					}
					vh.Routes[k].Fingerprint = h.String()
					if in == nil {
						in = newInterner(firstRoutes)
					}
					in.route(&vh.Routes[k])
				}
				if seen != nil {
					seen[h] = len(flat)
				}
				flat = append(flat, decodedRoute{route: &vh.Routes[k]})
			}
			l.VirtualHosts[j] = vh
		}
		snap.Listeners[i] = l
	}
	return snap, flat, nil
}

// parseUint reads raw as one CBOR unsigned integer (a head of major type
// 0 and nothing after it).
func parseUint(raw []byte) (uint64, bool) {
	if len(raw) == 0 || raw[0]>>5 != 0 {
		return 0, false
	}
	switch info, rest := raw[0]&0x1f, raw[1:]; {
	case info < 24 && len(rest) == 0:
		return uint64(info), true
	case info == 24 && len(rest) == 1:
		return uint64(rest[0]), true
	case info == 25 && len(rest) == 2:
		return uint64(binary.BigEndian.Uint16(rest)), true
	case info == 26 && len(rest) == 4:
		return uint64(binary.BigEndian.Uint32(rest)), true
	case info == 27 && len(rest) == 8:
		return binary.BigEndian.Uint64(rest), true
	}
	return 0, false
}

// Frame returns the stream frame that carries c (NewConfig's encoding).
func (c Config) Frame() []byte { return c.frame.get() }

// DecodeStream decodes frames in order as one stream does, each reusing
// the routes of the one before: what a data plane holds after receiving
// them. For tools and benchmarks of the data plane's path.
func DecodeStream(frames ...[]byte) ([]Config, error) {
	var d frameDecoder
	out := make([]Config, 0, len(frames))
	for _, f := range frames {
		m, err := d.read(bytes.NewReader(f), len(f))
		if err != nil {
			return nil, err
		}
		if m.Config == nil {
			return nil, fmt.Errorf("config stream: a frame without a config")
		}
		out = append(out, *m.Config)
	}
	return out, nil
}
