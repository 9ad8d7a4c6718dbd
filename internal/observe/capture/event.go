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
)

// TCP flag bits as found in Event.TCPFlags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

// CaptureLen is the number of payload bytes the kernel copies per event
// (CAPTURE_LEN in bpf/observer.c).
const CaptureLen = 512

// eventHeaderLen is the offset of data[] in struct event.
const eventHeaderLen = 64

// EventSize is sizeof(struct event).
const EventSize = eventHeaderLen + CaptureLen

// Event is one ring-buffer record, decoded. Data aliases the reader's
// buffer and is valid only until the next read.
type Event struct {
	TimestampNS uint64 // CLOCK_MONOTONIC, from bpf_ktime_get_ns
	Src, Dst    netip.AddrPort
	Ifindex     uint32
	Seq         uint32
	PayloadLen  uint32 // length of the segment's TCP payload
	Family      uint8
	Direction   Direction
	Kind        Kind
	TCPFlags    uint8
	Data        []byte // captured payload prefix, len <= CaptureLen
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
	e.PayloadLen = le.Uint32(raw[48:52])
	sport := le.Uint16(raw[52:54])
	dport := le.Uint16(raw[54:56])
	captured := int(le.Uint16(raw[56:58]))
	e.Family = raw[58]
	e.Direction = Direction(raw[59])
	e.Kind = Kind(raw[60])
	e.TCPFlags = raw[61]
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
	if captured > CaptureLen || eventHeaderLen+captured > len(raw) {
		return fmt.Errorf("decode event: captured length %d exceeds record", captured)
	}
	e.Data = raw[eventHeaderLen : eventHeaderLen+captured]
	return nil
}
