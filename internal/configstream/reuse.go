package configstream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"

	"github.com/fxamacker/cbor/v2"

	"github.com/false-systems/rauta/internal/ir"
)

// A route change at a thousand routes sends the Gateway's whole snapshot
// again; decoding every route of it was most of what the change cost a data
// plane. The wire types below mirror a message down to the routes, which
// they keep raw: a route whose encoding is the same as in the previous
// Config is taken from it, already decoded, and carries a hash of its
// encoding as ir.Route.Fingerprint, so the router reuses its compiled form
// with a comparison of 16 bytes instead of a deep one. The encoding is deterministic
// (frame.go), so equal routes have equal encodings.
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
	routes map[routeHash]ir.Route
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
	if w.Config.Snapshot != nil {
		next := make(map[routeHash]ir.Route, len(d.routes))
		snap, err := d.snapshot(w.Config.Snapshot, next)
		if err != nil {
			return message{}, err
		}
		c.Snapshot = snap
		d.routes = next
	}
	m.Config = &c
	return m, nil
}

// snapshot builds the IR of ws, decoding only routes not in d.routes, and
// records every route in next.
func (d *frameDecoder) snapshot(ws *wireSnapshot, next map[routeHash]ir.Route) (*ir.Snapshot, error) {
	snap := &ir.Snapshot{}
	if len(ws.Listeners) > 0 {
		snap.Listeners = make([]ir.Listener, len(ws.Listeners))
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
				h := d.hash(raw)
				rt, ok := next[h]
				if !ok {
					rt, ok = d.routes[h]
				}
				if !ok {
					if err := decMode.Unmarshal(raw, &rt); err != nil {
						return nil, fmt.Errorf("config stream: listener %s: route %d: %w", l.Name, k, err)
					}
					rt.Fingerprint = h.String()
				}
				next[h] = rt
				vh.Routes[k] = rt
			}
			l.VirtualHosts[j] = vh
		}
		snap.Listeners[i] = l
	}
	return snap, nil
}

// Frame returns the stream frame that carries c (NewConfig's encoding).
func (c Config) Frame() []byte { return c.frame }

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
