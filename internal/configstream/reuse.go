package configstream

import (
	"bytes"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"

	"github.com/false-systems/rauta/internal/ir"
)

// A route change at a thousand routes sends the Gateway's whole snapshot
// again; decoding every route of it was most of what the change cost a data
// plane. The wire types below mirror a message down to the routes, which
// they keep raw: a route whose encoding is the same as in the previous
// Config is taken from it, already decoded, and carries its encoding as
// ir.Route.Fingerprint, so the router reuses its compiled form with a
// string comparison instead of a deep one. The encoding is deterministic
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
type frameDecoder struct {
	routes map[string]ir.Route // by encoding
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
		next := make(map[string]ir.Route, len(d.routes))
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
func (d *frameDecoder) snapshot(ws *wireSnapshot, next map[string]ir.Route) (*ir.Snapshot, error) {
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
				rt, ok := next[string(raw)]
				if !ok {
					rt, ok = d.routes[string(raw)]
				}
				if !ok {
					if err := decMode.Unmarshal(raw, &rt); err != nil {
						return nil, fmt.Errorf("config stream: listener %s: route %d: %w", l.Name, k, err)
					}
					rt.Fingerprint = string(raw)
				}
				next[rt.Fingerprint] = rt
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
