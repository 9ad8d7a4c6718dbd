package configstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"sync"

	"github.com/fxamacker/cbor/v2"

	"github.com/false-systems/rauta/internal/ir"
)

// Encoder makes the Configs a controller publishes. It keeps the encoding of
// every route that has a Fingerprint (the translator sets one on routes it
// did not translate again) from one round of configurations to the next, so
// a change at a thousand routes encodes the changed route, not a thousand:
// a frame is composed of the routes' encodings, byte for byte what
// encoding the whole Config at once gives (the encoding is deterministic and
// CBOR arrays are their elements side by side). The zero Encoder is ready
// to use; it is safe for concurrent use.
type Encoder struct {
	mu     sync.Mutex
	routes map[string]encodedRoute // by ir.Route.Fingerprint
	round  uint64
}

type encodedRoute struct {
	raw    cbor.RawMessage
	digest routeDigest
	round  uint64 // the last round that used it
}

// routeDigest is the SHA-256 of a route's encoding: what a Config's Version
// is computed from (versionOf), and how a delta finds the routes its base
// has (deltaFrame), without hashing the encodings again.
type routeDigest [sha256.Size]byte

// NewConfig builds the Config of one Gateway from its snapshot, moving key
// material into Keys, and computes its Version. snap is not modified.
func NewConfig(gateway string, generation int64, snap *ir.Snapshot) Config {
	var e Encoder
	return e.NewConfig(gateway, generation, snap)
}

// NewConfig is the package's NewConfig, reusing the encodings of routes
// this Encoder encoded before.
//
// The frame that carries the whole Config is composed when a stream first
// needs it (Config.Frame): a stream that holds the previous Config gets a
// delta, so a route change does not wait for the whole encoding.
func (e *Encoder) NewConfig(gateway string, generation int64, snap *ir.Snapshot) Config {
	c := Config{Gateway: gateway, Generation: generation, Snapshot: snap, Keys: keysOf(snap)}
	w := &wireConfig{Config: c, Snapshot: e.wireSnapshot(snap)}
	w.Version = versionOf(w)
	c.Version = w.Version
	c.wire = w
	c.frame = &lazyFrame{w: w}
	return c
}

// lazyFrame is a Config's whole frame, composed once on first use.
type lazyFrame struct {
	once  sync.Once
	w     *wireConfig
	frame []byte
}

func (f *lazyFrame) get() []byte {
	if f == nil {
		return nil
	}
	f.once.Do(func() {
		if f.frame == nil {
			f.frame = composeFrame(wireMessage{Config: f.w})
		}
	})
	return f.frame
}

// composeFrame encodes m, whose routes are encoded already, as a frame. The
// codec checks that every pre-encoded value it writes is well formed,
// which parses each route again and cost as much as encoding it; so each
// virtual host's routes are encoded as a placeholder (a one-element array
// holding a byte string unique to this call), and the placeholders are
// replaced by the route arrays afterwards. The result is byte for byte
// what encoding m with its routes in place gives
// (TestEncoderComposesTheWholeEncoding).
func composeFrame(m wireMessage) []byte {
	ws := m.Config.Snapshot
	if ws == nil {
		return encodeFrame(m)
	}
	var marker [16]byte
	binary.LittleEndian.PutUint64(marker[:8], rand.Uint64())
	var routes [][]cbor.RawMessage // per placeholder, in order
	skeleton := &wireSnapshot{Listeners: make([]wireListener, len(ws.Listeners))}
	for i, wl := range ws.Listeners {
		vhs := make([]wireVirtualHost, len(wl.VirtualHosts))
		for j, wv := range wl.VirtualHosts {
			if len(wv.Routes) > 0 {
				binary.LittleEndian.PutUint64(marker[8:], uint64(len(routes)))
				routes = append(routes, wv.Routes)
				wv.Routes = []cbor.RawMessage{append([]byte{0x50}, marker[:]...)} // a 16-byte string
			}
			vhs[j] = wv
		}
		wl.VirtualHosts = vhs
		skeleton.Listeners[i] = wl
	}
	if len(skeleton.Listeners) == 0 {
		skeleton.Listeners = nil
	}
	cfg := *m.Config
	cfg.Snapshot = skeleton
	m.Config = &cfg
	body, _ := encMode.Marshal(m) // plain data always encodes
	size := len(body)
	for _, rs := range routes {
		for _, r := range rs {
			size += len(r)
		}
		size += 9 // at most an array head longer than the placeholder
	}
	frame := make([]byte, frameHeader, frameHeader+size)
	rest := body
	for n, rs := range routes {
		binary.LittleEndian.PutUint64(marker[8:], uint64(n))
		placeholder := append([]byte{0x81, 0x50}, marker[:]...)
		at := bytes.Index(rest, placeholder)
		frame = append(frame, rest[:at]...)
		frame = appendArrayHead(frame, len(rs))
		for _, r := range rs {
			frame = append(frame, r...)
		}
		rest = rest[at+len(placeholder):]
	}
	frame = append(frame, rest...)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-frameHeader))
	return frame
}

// appendUint appends the CBOR encoding of u, in its shortest form.
func appendUint(b []byte, u uint64) []byte {
	return appendHead(b, 0, u)
}

// appendArrayHead appends the head of a CBOR array of n elements, in its
// shortest form (RFC 8949 §4.2.1).
func appendArrayHead(b []byte, n int) []byte {
	return appendHead(b, 4, uint64(n))
}

// appendHead appends a CBOR head of major type major and argument u.
func appendHead(b []byte, major byte, u uint64) []byte {
	t := major << 5
	switch {
	case u < 24:
		return append(b, t|byte(u))
	case u <= 0xff:
		return append(b, t|24, byte(u))
	case u <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, t|25), uint16(u))
	case u <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, t|26), uint32(u))
	default:
		return binary.BigEndian.AppendUint64(append(b, t|27), u)
	}
}

// EndRound forgets the encodings no Config has used since the last
// EndRound: a controller calls it after building every Gateway's Config,
// so the Encoder holds only the routes that are served.
func (e *Encoder) EndRound() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for fp, er := range e.routes {
		if er.round != e.round {
			delete(e.routes, fp)
		}
	}
	e.round++
}

// wireSnapshot mirrors snap with every route encoded.
func (e *Encoder) wireSnapshot(snap *ir.Snapshot) *wireSnapshot {
	if snap == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.routes == nil {
		e.routes = map[string]encodedRoute{}
	}
	ws := &wireSnapshot{}
	if len(snap.Listeners) > 0 {
		ws.Listeners = make([]wireListener, len(snap.Listeners))
	}
	for i, l := range snap.Listeners {
		wl := wireListener{Listener: l}
		wl.Listener.VirtualHosts = nil
		if len(l.VirtualHosts) > 0 {
			wl.VirtualHosts = make([]wireVirtualHost, len(l.VirtualHosts))
		}
		for j, vh := range l.VirtualHosts {
			wv := wireVirtualHost{VirtualHost: vh}
			wv.VirtualHost.Routes = nil
			if len(vh.Routes) > 0 {
				wv.Routes = make([]cbor.RawMessage, len(vh.Routes))
				wv.digests = make([]routeDigest, len(vh.Routes))
			}
			for k := range vh.Routes {
				wv.Routes[k], wv.digests[k] = e.route(&vh.Routes[k])
			}
			wl.VirtualHosts[j] = wv
		}
		ws.Listeners[i] = wl
	}
	return ws
}

// route returns rt's encoding and its digest, from the cache when rt has a
// Fingerprint. Callers hold e.mu.
func (e *Encoder) route(rt *ir.Route) (cbor.RawMessage, routeDigest) {
	if rt.Fingerprint == "" {
		raw, _ := encMode.Marshal(rt) // plain data always encodes
		return raw, sha256.Sum256(raw)
	}
	er, ok := e.routes[rt.Fingerprint]
	if !ok {
		er.raw, _ = encMode.Marshal(rt)
		er.digest = sha256.Sum256(er.raw)
	}
	er.round = e.round
	e.routes[rt.Fingerprint] = er
	return er.raw, er.digest
}

// keysOf collects the key pairs of snap's certificates, once per name.
func keysOf(snap *ir.Snapshot) []KeyPair {
	var keys []KeyPair
	seen := map[string]bool{}
	for _, l := range snap.Listeners {
		certs := l.Certificates
		if l.BackendClientCertificate != nil {
			// The certificate presented to TLS backends travels the same
			// way (a Secret name names one key pair).
			certs = append(certs[:len(certs):len(certs)], *l.BackendClientCertificate)
		}
		for _, cert := range certs {
			if seen[cert.Name] {
				continue
			}
			seen[cert.Name] = true
			keys = append(keys, KeyPair{Name: cert.Name, CertPEM: cert.CertPEM, KeyPEM: cert.KeyPEM})
		}
	}
	return keys
}

// versionLen is the length of a Version: 12 bytes of SHA-256, in hex.
const versionLen = 24

// versionOf hashes w's content: the encoding of w with each virtual host's
// routes replaced by their number (and no Version), then the digest of
// every route in order. Equal content gives equal versions, whichever
// controller computes them, and a route change hashes a few kilobytes
// instead of the whole encoding (about a megabyte at a thousand routes,
// half of what building a Config cost).
func versionOf(w *wireConfig) string {
	skel := *w
	skel.Version = ""
	h := sha256.New()
	if ws := w.Snapshot; ws != nil {
		s := &wireSnapshot{}
		if len(ws.Listeners) > 0 {
			s.Listeners = make([]wireListener, len(ws.Listeners))
		}
		for i, wl := range ws.Listeners {
			vhs := make([]wireVirtualHost, len(wl.VirtualHosts))
			for j, wv := range wl.VirtualHosts {
				vhs[j] = wireVirtualHost{VirtualHost: wv.VirtualHost, Routes: []cbor.RawMessage{appendUint(nil, uint64(len(wv.Routes)))}}
			}
			wl.VirtualHosts = vhs
			s.Listeners[i] = wl
		}
		skel.Snapshot = s
	}
	body, _ := encMode.Marshal(wireMessage{Config: &skel}) // plain data always encodes
	h.Write(body)
	if ws := w.Snapshot; ws != nil {
		for _, wl := range ws.Listeners {
			for _, wv := range wl.VirtualHosts {
				for k := range wv.Routes {
					d := wv.digest(k)
					h.Write(d[:])
				}
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:versionLen/2])
}

// deltaFrame encodes next as a delta against base, the Config the stream
// sent before: each route that base has too travels as its position in
// base (routes numbered in order across listeners and virtual hosts), the
// others whole. A data plane that holds base rebuilds next exactly; one
// that does not refuses the frame and reconnects, and a new stream starts
// with the whole Config. nil when either Config was not built by an
// Encoder.
func deltaFrame(base, next Config) []byte {
	if base.wire == nil || next.wire == nil || base.wire.Snapshot == nil || next.wire.Snapshot == nil {
		return nil
	}
	total := 0
	for _, wl := range base.wire.Snapshot.Listeners {
		for _, wv := range wl.VirtualHosts {
			total += len(wv.Routes)
		}
	}
	at := make(map[routeDigest]int, total)
	n := 0
	for _, wl := range base.wire.Snapshot.Listeners {
		for _, wv := range wl.VirtualHosts {
			for k := range wv.Routes {
				if _, dup := at[wv.digest(k)]; !dup { // the first of equal routes
					at[wv.digest(k)] = n
				}
				n++
			}
		}
	}
	// The positions' encodings, side by side in one buffer (at most 9
	// bytes each): a route change at a thousand routes writes thousands.
	var positions []byte
	d := *next.wire
	d.Base = base.Version
	ws := &wireSnapshot{Listeners: make([]wireListener, len(next.wire.Snapshot.Listeners))}
	for i, wl := range next.wire.Snapshot.Listeners {
		vhs := make([]wireVirtualHost, len(wl.VirtualHosts))
		for j, wv := range wl.VirtualHosts {
			routes := make([]cbor.RawMessage, len(wv.Routes))
			for k, raw := range wv.Routes {
				routes[k] = raw
				if n, ok := at[wv.digest(k)]; ok {
					if cap(positions)-len(positions) < 9 {
						positions = make([]byte, 0, 9*max(total, 1))
					}
					start := len(positions)
					positions = appendUint(positions, uint64(n))
					routes[k] = positions[start:len(positions):len(positions)]
				}
			}
			wv.Routes = routes
			vhs[j] = wv
		}
		wl.VirtualHosts = vhs
		ws.Listeners[i] = wl
	}
	if len(ws.Listeners) == 0 {
		ws.Listeners = nil
	}
	d.Snapshot = ws
	return composeFrame(wireMessage{Config: &d})
}
