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
// (deltaFrame). Every route keeps a hash of its encoding as
// ir.Route.Fingerprint, so the router reuses its compiled form with a
// comparison of 16 bytes instead of a deep one. The encoding is
// deterministic (frame.go), so equal routes have equal encodings.
//
// A route the previous Config had, by position in a delta or by its hash
// in a whole Config, is not decoded at all: it is handed on elided
// (ir.Route.Elided, only the Fingerprint set), as the data plane compiled
// it before. So the decoder keeps the previous Config's fingerprints, not
// its routes, and nothing in a data plane keeps the decoded routes once
// they are compiled (12.8 MB at 10,000 HTTPRoutes). A data plane that
// does not have an elided route compiled (it refused the previous Config)
// says so in its Report (Resync) and streams again from a whole Config.
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

// frameDecoder decodes one stream's frames, keeping the fingerprints of the
// routes of the last Config it decoded (and nothing older) for the next one.
//
// Routes are known by a 128-bit hash of their encoding (two maphash sums
// with independent seeds), not by the encoding itself: at 10,000 routes
// the encodings are about 9 MB a data plane would hold for nothing. A
// false match needs a 128-bit collision among one Config's routes (about
// 10^-30 at 10,000), and the input is the controller's, not a client's.
type frameDecoder struct {
	seeds  [2]maphash.Seed
	seeded bool
	// version and fps are the last Config decoded and its routes'
	// Fingerprints in order, which a delta refers to by position. The
	// strings are the routes' own, which the router keeps too.
	version string
	fps     []string
}

// fingerprintHash is the hash a Fingerprint was made from (routeHash.String).
func fingerprintHash(f string) routeHash {
	var h routeHash
	if len(f) == 16 {
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
	var fps []string
	if w.Config.Snapshot != nil {
		snap, f, err := d.snapshot(w.Config.Snapshot, delta)
		if err != nil {
			return message{}, err
		}
		c.Snapshot, fps = snap, f
	} else if delta {
		return message{}, fmt.Errorf("config stream: a delta without a snapshot")
	}
	d.version, d.fps = c.Version, fps
	m.Config = &c
	return m, nil
}

// snapshot builds the IR of ws and returns its routes' Fingerprints in
// order too. A route the last Config had (in a delta, a route given as an
// unsigned integer, its position there; in a whole Config, one whose hash
// it had) is elided; a whole Config's route equal to an earlier one of it
// is a copy of that one, not decoded again.
func (d *frameDecoder) snapshot(ws *wireSnapshot, delta bool) (*ir.Snapshot, []string, error) {
	snap := &ir.Snapshot{}
	fps := make([]string, 0, len(d.fps))
	var prev map[routeHash]int // positions in d.fps
	var seen map[routeHash]*ir.Route
	if !delta {
		prev = make(map[routeHash]int, len(d.fps))
		for i, f := range d.fps {
			prev[fingerprintHash(f)] = i
		}
		seen = make(map[routeHash]*ir.Route, len(d.fps))
	}
	if len(ws.Listeners) > 0 {
		snap.Listeners = make([]ir.Listener, len(ws.Listeners))
	}
	var in *interner // made for the first route decoded
	firstRoutes := 0 // every route of a stream's first Config is decoded
	if len(d.fps) == 0 {
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
				rt := &vh.Routes[k]
				if at, ok := parseUint(raw); delta && ok {
					if at >= uint64(len(d.fps)) {
						return nil, nil, fmt.Errorf("config stream: listener %s: route %d: no route %d in the base config", l.Name, k, at)
					}
					*rt = ir.Route{Fingerprint: d.fps[at], Elided: true}
					fps = append(fps, rt.Fingerprint)
					continue
				}
				h := d.hash(raw)
				if same, ok := seen[h]; ok {
					*rt = *same
				} else if n, ok := prev[h]; ok {
					*rt = ir.Route{Fingerprint: d.fps[n], Elided: true}
				} else {
					if err := decMode.Unmarshal(raw, rt); err != nil {
						return nil, nil, fmt.Errorf("config stream: listener %s: route %d: %w", l.Name, k, err)
					}
					rt.Fingerprint = h.String()
					if in == nil {
						in = newInterner(firstRoutes)
					}
					in.route(rt)
				}
				if seen != nil {
					seen[h] = rt
				}
				fps = append(fps, rt.Fingerprint)
			}
			l.VirtualHosts[j] = vh
		}
		snap.Listeners[i] = l
	}
	return snap, fps, nil
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

// DecodeStream decodes frames in order as one stream does: a route of a
// frame that the one before had is elided (ir.Route.Elided), so the Configs
// are to be applied in order, as a data plane does. For tools and
// benchmarks of the data plane's path.
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
