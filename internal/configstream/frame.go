package configstream

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// The stream carries frames: a 4-byte big-endian length, then one message in
// CBOR (RFC 8949) with the JSON field names. CBOR rather than JSON because a
// data plane decodes a thousand routes' configuration about five times
// faster (BenchmarkConfigPath), which is most of what a route change costs
// it; the encoding is core deterministic, so equal configurations hash
// equal.
const frameHeader = 4

// ContentType is the stream's media type; a data plane refuses any other (a
// controller of an older version streams JSON at /v1/config).
const ContentType = "application/vnd.rauta.config-frames+cbor"

// encMode and decMode are immutable codec settings. Decoding is bounded
// beyond the frame's length limit: no indefinite lengths or tags (the
// controller sends neither), duplicate keys refused.
var (
	encMode = mustEncMode()
	decMode = mustDecMode()
)

func mustEncMode() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // constant options
	}
	return m
}

func mustDecMode() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxArrayElements: 1 << 20,
		MaxMapPairs:      1 << 16,
		MaxNestedLevels:  32,
	}.DecMode()
	if err != nil {
		panic(err) // constant options
	}
	return m
}

// encodeFrame encodes one message (a message or a wireMessage) as a frame.
func encodeFrame(m any) []byte {
	// Plain data always encodes.
	body, _ := encMode.Marshal(m)
	frame := make([]byte, frameHeader, frameHeader+len(body))
	binary.BigEndian.PutUint32(frame, uint32(len(body)))
	return append(frame, body...)
}

// readFrame reads and decodes one frame of at most limit bytes, every
// route of it (a stream decodes with a frameDecoder, which reuses routes).
func readFrame(r io.Reader, limit int) (message, error) {
	var m message
	body, err := readFrameBody(r, limit)
	if err != nil {
		return m, err
	}
	if err := decMode.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("config stream: %w", err)
	}
	return m, nil
}

// readFrameBody reads one frame's message bytes, at most limit of them.
func readFrameBody(r io.Reader, limit int) ([]byte, error) {
	var head [frameHeader]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(head[:])
	if uint64(n) > uint64(limit) {
		return nil, fmt.Errorf("config stream: a message of %d bytes exceeds %d", n, limit)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("config stream: message cut short: %w", err)
	}
	return body, nil
}
