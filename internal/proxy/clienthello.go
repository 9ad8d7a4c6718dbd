package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// TLS passthrough routes a connection by the server name of its
// ClientHello (RFC 8446 4.1.2, RFC 6066 3) without terminating TLS: the
// records carrying the hello are read, parsed for the name, and replayed
// to the backend byte for byte.

// maxClientHello bounds the ClientHello handshake message. Hellos with
// post-quantum key shares are about 1.8 KiB and rarely over 4 KiB; 64 KiB
// is what crypto/tls accepts for any handshake message.
const maxClientHello = 64 << 10

const (
	recordHandshake   = 22
	handshakeHello    = 1
	extServerName     = 0
	serverNameHost    = 0
	recordHeaderLen   = 5
	maxRecordLen      = 1<<14 + 256 // TLSPlaintext plus what a peer may pad
	handshakeHeader   = 4
	maxServerNameSize = 255
)

var errNotTLS = errors.New("not a TLS handshake")

// readClientHello reads the TLS records that carry the ClientHello from r.
// raw is every byte read (to be replayed), sni the host_name of the
// server_name extension, "" when the client sent none.
func readClientHello(r io.Reader) (raw []byte, sni string, err error) {
	var msg []byte // the handshake message, reassembled across records
	var hdr [recordHeaderLen]byte
	for {
		if got, err := io.ReadFull(r, hdr[:]); err != nil {
			return append(raw, hdr[:got]...), "", err
		}
		raw = append(raw, hdr[:]...)
		if hdr[0] != recordHandshake || hdr[1] != 3 {
			return raw, "", errNotTLS
		}
		n := int(binary.BigEndian.Uint16(hdr[3:]))
		if n == 0 || n > maxRecordLen {
			return raw, "", fmt.Errorf("TLS record of %d bytes", n)
		}
		start := len(raw)
		raw = append(raw, make([]byte, n)...)
		if got, err := io.ReadFull(r, raw[start:]); err != nil {
			return raw[:start+got], "", err
		}
		msg = append(msg, raw[start:]...)
		if len(msg) < handshakeHeader {
			continue
		}
		if msg[0] != handshakeHello {
			return raw, "", fmt.Errorf("handshake message %d is not a ClientHello", msg[0])
		}
		size := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
		if size > maxClientHello {
			return raw, "", fmt.Errorf("ClientHello of %d bytes is over %d", size, maxClientHello)
		}
		if len(msg) >= handshakeHeader+size {
			sni, err := serverName(msg[handshakeHeader : handshakeHeader+size])
			return raw, sni, err
		}
	}
}

// serverName returns the host_name of a ClientHello body's server_name
// extension, "" when there is none.
func serverName(b []byte) (string, error) {
	p := parser{b: b}
	p.skip(2 + 32)      // legacy_version, random
	p.skip(int(p.u8())) // legacy_session_id
	p.skip(int(p.u16()))
	p.skip(int(p.u8())) // legacy_compression_methods
	if p.bad {
		return "", errors.New("truncated ClientHello")
	}
	if len(p.b) == 0 {
		return "", nil // no extensions
	}
	exts := parser{b: p.take(int(p.u16()))}
	for len(exts.b) > 0 && !exts.bad {
		typ := exts.u16()
		data := exts.take(int(exts.u16()))
		if typ != extServerName || exts.bad {
			continue
		}
		list := parser{b: data}
		names := parser{b: list.take(int(list.u16()))}
		for len(names.b) > 0 && !names.bad {
			kind := names.u8()
			name := names.take(int(names.u16()))
			if kind == serverNameHost && !names.bad {
				return hostName(name)
			}
		}
		if list.bad || names.bad {
			break
		}
		return "", nil
	}
	if exts.bad {
		return "", errors.New("truncated ClientHello extensions")
	}
	return "", nil
}

// hostName validates an SNI host_name: a DNS name in ASCII (RFC 6066: no
// trailing dot, no IP literal needed here) of letters, digits, '-', '_'
// and '.', so that nothing else reaches routing, logs or metrics.
func hostName(b []byte) (string, error) {
	if len(b) == 0 || len(b) > maxServerNameSize {
		return "", fmt.Errorf("server name of %d bytes", len(b))
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		default:
			return "", fmt.Errorf("server name with byte %#x", c)
		}
	}
	return string(b), nil
}

// parser reads big-endian fields; a read past the end sets bad and yields
// zeros, so callers check once.
type parser struct {
	b   []byte
	bad bool
}

func (p *parser) take(n int) []byte {
	if n > len(p.b) {
		p.bad = true
		p.b = nil
		return nil
	}
	out := p.b[:n]
	p.b = p.b[n:]
	return out
}

func (p *parser) skip(n int) { p.take(n) }

func (p *parser) u8() uint8 {
	b := p.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (p *parser) u16() uint16 {
	b := p.take(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}
