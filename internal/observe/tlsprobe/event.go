package tlsprobe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// Direction of a library call, seen from the process that made it.
type Direction uint8

const (
	Read  Direction = 0 // plaintext the peer sent
	Write Direction = 1 // plaintext sent to the peer
)

// Library that carried the plaintext.
type Library uint8

const (
	LibOpenSSL Library = 1
	LibGo      Library = 2 // Go's crypto/tls
)

// headerLen is the offset of data[] in struct tls_event.
const headerLen = 104

// CaptureMax is the most plaintext bytes an event carries
// (TLS_CAPTURE_MAX in bpf/tlsprobe.c).
const CaptureMax = 4096

// Event is one record: an HTTP-looking read or write. Data aliases the
// reader's buffer and is valid until the next read.
type Event struct {
	TimestampNS uint64 // CLOCK_MONOTONIC at the call's return
	Conn        uint64 // the library's connection object (SSL *)
	Cgroup      uint64
	// Src and Dst: the sender and receiver of these bytes (a write goes
	// from the process's socket to the peer). Invalid when the socket was
	// not seen yet.
	Src, Dst  netip.AddrPort
	PID       uint32
	Seq, Ack  uint32 // plaintext offsets, as TCP sequence/ack numbers
	Len       uint32 // bytes of the call
	Direction Direction
	Library   Library
	Comm      string
	Data      []byte
}

var errShort = errors.New("short tls record")

// Decode decodes a struct tls_event. Comm is the only allocation, and
// only when it differs from e.Comm already.
func Decode(raw []byte, e *Event) error {
	if len(raw) < headerLen {
		return fmt.Errorf("decode tls event: %w: %d bytes", errShort, len(raw))
	}
	le := binary.LittleEndian
	e.TimestampNS = le.Uint64(raw[0:8])
	e.Conn = le.Uint64(raw[8:16])
	e.Cgroup = le.Uint64(raw[16:24])
	e.PID = le.Uint32(raw[56:60])
	e.Seq = le.Uint32(raw[60:64])
	e.Ack = le.Uint32(raw[64:68])
	e.Len = le.Uint32(raw[68:72])
	sport := le.Uint16(raw[72:74])
	dport := le.Uint16(raw[74:76])
	captured := int(le.Uint16(raw[76:78]))
	family := raw[78]
	e.Direction = Direction(raw[79])
	e.Library = Library(raw[80])
	switch family {
	case 4:
		e.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[24:28])), sport)
		e.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[40:44])), dport)
	case 6:
		e.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(raw[24:40])), sport)
		e.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(raw[40:56])), dport)
	default:
		e.Src, e.Dst = netip.AddrPort{}, netip.AddrPort{}
	}
	comm := raw[88:104]
	for i, b := range comm {
		if b == 0 {
			comm = comm[:i]
			break
		}
	}
	if string(comm) != e.Comm {
		e.Comm = string(comm)
	}
	if captured > CaptureMax || headerLen+captured > len(raw) {
		return fmt.Errorf("decode tls event: captured length %d exceeds record", captured)
	}
	e.Data = raw[headerLen : headerLen+captured]
	return nil
}

// Reader drains the ring without blocking: the observer's loop calls
// Drain between packet batches (the kernel never wakes it; records wait
// in the ring until the next drain).
type Reader struct {
	rd  *ringbuf.Reader
	rec ringbuf.Record
	ev  Event
	bad uint64
}

// NewReader reads the probe's ring.
func NewReader(p *Probe) (*Reader, error) {
	rd, err := ringbuf.NewReader(p.Events())
	if err != nil {
		return nil, fmt.Errorf("tls ring reader: %w", err)
	}
	return &Reader{rd: rd}, nil
}

// Drain hands up to max waiting events to fn (the *Event is reused) and
// returns how many it read.
func (r *Reader) Drain(max int, fn func(*Event)) (int, error) {
	r.rd.SetDeadline(time.Now())
	n := 0
	for n < max {
		if err := r.rd.ReadInto(&r.rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return n, nil
			}
			return n, fmt.Errorf("read tls ring: %w", err)
		}
		n++
		if err := Decode(r.rec.RawSample, &r.ev); err != nil {
			r.bad++
			continue
		}
		fn(&r.ev)
	}
	return n, nil
}

// Malformed counts records that did not decode.
func (r *Reader) Malformed() uint64 { return r.bad }

// Close releases the reader.
func (r *Reader) Close() error { return r.rd.Close() }
