package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Direction says on which hook a segment was seen.
type Direction uint8

const (
	Ingress Direction = 0
	Egress  Direction = 1
)

func (d Direction) String() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}

// Kind mirrors enum event_kind in bpf/observer.c.
type Kind uint8

const (
	// KindPayload: the segment's payload starts with an HTTP/1.x request or
	// status line; Data holds its first bytes.
	KindPayload Kind = 1
	// KindReset: the segment has RST set; Data is empty.
	KindReset Kind = 2
	// KindH2: a segment of an h2c connection, from the client preface
	// on (every segment with payload, and FIN); Data holds its first
	// bytes (up to CaptureMax for segments longer than CaptureLen).
	KindH2 Kind = 3
)

// TCP flag bits as found in Event.TCPFlags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

// CaptureLen is the window of the small record: segments with at most
// this many payload bytes (CAPTURE_LEN in bpf/observer.c).
const CaptureLen = 512

// CaptureMax is the window of the large record, used for longer segments
// (CAPTURE_MAX): the most payload bytes an event carries.
const CaptureMax = 4096

// eventHeaderLen is the offset of data[] in struct event.
const eventHeaderLen = 72

// EventSize is sizeof(struct event); EventLargeSize is sizeof(struct
// event_large).
const (
	EventSize      = eventHeaderLen + CaptureLen
	EventLargeSize = eventHeaderLen + CaptureMax
)

// Event is one ring-buffer record, decoded. Data aliases the reader's
// buffer and is valid only until the next read.
type Event struct {
	TimestampNS uint64 // CLOCK_MONOTONIC, from bpf_ktime_get_ns
	Src, Dst    netip.AddrPort
	Ifindex     uint32
	Seq         uint32
	Ack         uint32 // acknowledgment number; valid when TCPFlags has FlagACK
	PayloadLen  uint32 // length of the segment's TCP payload
	Family      uint8
	Direction   Direction
	Kind        Kind
	TCPFlags    uint8
	Data        []byte // captured payload prefix, len <= CaptureMax
	// Stream and PID are 0 for segments from the packet programs.
	// Plaintext from inside TLS (internal/observe/tlsprobe) is handed to
	// the pipeline as an Event too, with its TLS connection (library
	// object, process) here and plaintext offsets as Seq and Ack.
	Stream uint64
	PID    uint32
}

// Truncated reports whether the segment carried more payload than was
// captured.
func (e *Event) Truncated() bool { return int(e.PayloadLen) > len(e.Data) }

var errShortRecord = errors.New("short ring buffer record")

// DecodeEvent decodes a raw struct event into e without allocating; e.Data
// aliases raw.
func DecodeEvent(raw []byte, e *Event) error {
	if len(raw) < eventHeaderLen {
		return fmt.Errorf("decode event: %w: %d bytes", errShortRecord, len(raw))
	}
	le := binary.LittleEndian
	e.TimestampNS = le.Uint64(raw[0:8])
	e.Ifindex = le.Uint32(raw[40:44])
	e.Seq = le.Uint32(raw[44:48])
	e.Ack = le.Uint32(raw[48:52])
	e.PayloadLen = le.Uint32(raw[52:56])
	sport := le.Uint16(raw[56:58])
	dport := le.Uint16(raw[58:60])
	captured := int(le.Uint16(raw[60:62]))
	e.Family = raw[62]
	e.Direction = Direction(raw[63])
	e.Kind = Kind(raw[64])
	e.TCPFlags = raw[65]
	e.Stream, e.PID = 0, 0
	switch e.Family {
	case 4:
		e.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[8:12])), sport)
		e.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[24:28])), dport)
	case 6:
		e.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(raw[8:24])), sport)
		e.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(raw[24:40])), dport)
	default:
		return fmt.Errorf("decode event: unknown address family %d", e.Family)
	}
	if captured > CaptureMax || eventHeaderLen+captured > len(raw) {
		return fmt.Errorf("decode event: captured length %d exceeds record", captured)
	}
	e.Data = raw[eventHeaderLen : eventHeaderLen+captured]
	return nil
}
