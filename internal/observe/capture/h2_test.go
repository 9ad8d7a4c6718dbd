package capture

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// TestH2cConnectionsAreFollowed: a client segment starting with the
// HTTP/2 client preface marks the connection in both directions; from
// then on every segment with payload (binary frames, a 3-byte remainder,
// a long one with the large window) and FIN is reported as KindH2, until
// that direction's FIN or a RST. Before, the preface and every frame were
// counted as non-HTTP and dropped.
func TestH2cConnectionsAreFollowed(t *testing.T) {
	objs := loadOrSkip(t, LoadOptions{RingBytes: 1 << 16})
	rd := readerOf(t, objs)
	frames := "\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64"
	long := strings.Repeat("\x00", 3000)
	steps := []struct {
		name string
		seg  segment
		want bool // an event of KindH2
	}{
		{"frames before any preface", segment{src: cli4, dst: srv4, seq: 1, flags: FlagACK, payload: []byte(frames)}, false},
		{"preface", segment{src: cli4, dst: srv4, seq: 1, flags: FlagACK | FlagPSH, payload: []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frames)}, true},
		{"server frames", segment{src: srv4, dst: cli4, seq: 100, flags: FlagACK, payload: []byte(frames)}, true},
		{"client 3-byte segment", segment{src: cli4, dst: srv4, seq: 40, flags: FlagACK, payload: []byte{0, 0, 4}}, true},
		{"server long segment", segment{src: srv4, dst: cli4, seq: 115, flags: FlagACK, payload: []byte(long)}, true},
		{"bare ACK", segment{src: cli4, dst: srv4, seq: 43, flags: FlagACK}, false},
		{"client FIN", segment{src: cli4, dst: srv4, seq: 43, flags: FlagACK | FlagFIN}, true},
		{"client after its FIN", segment{src: cli4, dst: srv4, seq: 44, flags: FlagACK, payload: []byte(frames)}, false},
		{"server still followed", segment{src: srv4, dst: cli4, seq: 3115, flags: FlagACK, payload: []byte(frames)}, true},
		{"reset", segment{src: cli4, dst: srv4, seq: 44, flags: FlagACK | FlagRST}, false},
		{"server after the reset", segment{src: srv4, dst: cli4, seq: 3130, flags: FlagACK, payload: []byte(frames)}, false},
	}
	for _, s := range steps {
		before, err := objs.ReadStats()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := objs.TCIngress.Run(&ebpf.RunOptions{Data: s.seg.frame()}); err != nil {
			t.Fatalf("%s: run: %v", s.name, err)
		}
		var ev Event
		rd.SetDeadline(time.Now().Add(50 * time.Millisecond))
		err = rd.Next(&ev)
		if s.seg.flags&FlagRST != 0 {
			if err != nil || ev.Kind != KindReset {
				t.Fatalf("%s: want a reset event, got %+v, %v", s.name, ev, err)
			}
			continue
		}
		if !s.want {
			if err == nil {
				t.Fatalf("%s: unexpected event kind %d", s.name, ev.Kind)
			}
			if !errors.Is(err, ErrTimeout) {
				t.Fatal(err)
			}
			after, _ := objs.ReadStats()
			if len(s.seg.payload) >= 8 && after.NonHTTP != before.NonHTTP+1 {
				t.Errorf("%s: non-HTTP counter %d -> %d, want +1", s.name, before.NonHTTP, after.NonHTTP)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: no event: %v", s.name, err)
		}
		if ev.Kind != KindH2 || ev.Src != s.seg.src || ev.Seq != s.seg.seq || ev.PayloadLen != uint32(len(s.seg.payload)) {
			t.Errorf("%s: event kind %d %v seq %d len %d", s.name, ev.Kind, ev.Src, ev.Seq, ev.PayloadLen)
		}
		if !bytes.Equal(ev.Data, s.seg.payload) {
			t.Errorf("%s: captured %d bytes, want all %d", s.name, len(ev.Data), len(s.seg.payload))
		}
		if ev.TCPFlags != s.seg.flags {
			t.Errorf("%s: flags %#x, want %#x", s.name, ev.TCPFlags, s.seg.flags)
		}
	}
}

// TestNoH2LeavesPrefaceUnfollowed: with NoH2 the preface and the frames
// after it are counted as non-HTTP, as before h2c was followed.
func TestNoH2LeavesPrefaceUnfollowed(t *testing.T) {
	objs := loadOrSkip(t, LoadOptions{RingBytes: 1 << 16, NoH2: true})
	rd := readerOf(t, objs)
	for _, seg := range []segment{
		{src: cli4, dst: srv4, seq: 1, flags: FlagACK, payload: []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")},
		{src: srv4, dst: cli4, seq: 1, flags: FlagACK, payload: []byte("\x00\x00\x00\x04\x00\x00\x00\x00\x00")},
	} {
		if _, err := objs.TCIngress.Run(&ebpf.RunOptions{Data: seg.frame()}); err != nil {
			t.Fatal(err)
		}
	}
	var ev Event
	rd.SetDeadline(time.Now().Add(50 * time.Millisecond))
	if err := rd.Next(&ev); !errors.Is(err, ErrTimeout) {
		t.Fatalf("want no event, got %+v, %v", ev, err)
	}
	if st, _ := objs.ReadStats(); st.NonHTTP != 2 {
		t.Fatalf("non-HTTP %d, want 2", st.NonHTTP)
	}
}

// h2frame builds an HTTP/2 frame header and a payload of n bytes.
func h2frame(typ, flags byte, stream uint32, n int) []byte {
	b := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream)}
	return append(b, bytes.Repeat([]byte{0xab}, n)...)
}

// TestH2cFrameWalkPastWindow: a segment longer than the window holds
// frame headers past it (GSO hands TC segments of up to 64 KB). The
// kernel follows the direction's frame headers and reports, after the
// first 4096 bytes, a record per header past them: the header alone for
// DATA, the frame for HEADERS, the first bytes of a header split by the
// segment's end; each record's payload_len runs to the next one's start.
// The split header is completed from the next segment; a segment seen
// again is not reported twice; after a gap the walk gives up and
// segments are reported plainly. Before, everything past byte 4096 was
// lost and userspace lost the connection's HPACK state.
func TestH2cFrameWalkPastWindow(t *testing.T) {
	// XDP: BPF_PROG_TEST_RUN takes frames longer than a page only as
	// multi-buffer XDP; the walk is the same code for TC.
	objs := loadOrSkip(t, LoadOptions{RingBytes: 1 << 20, XDP: true})
	rd := readerOf(t, objs)
	run := func(s segment) {
		t.Helper()
		if _, err := objs.XDPIngress.Run(&ebpf.RunOptions{Data: s.frame()}); err != nil {
			t.Fatal(err)
		}
	}
	type rec struct {
		seq, plen uint32
		data      []byte
	}
	read := func() []rec {
		t.Helper()
		var out []rec
		for {
			var ev Event
			rd.SetDeadline(time.Now().Add(50 * time.Millisecond))
			if err := rd.Next(&ev); err != nil {
				if !errors.Is(err, ErrTimeout) {
					t.Fatal(err)
				}
				return out
			}
			if ev.Kind != KindH2 {
				t.Fatalf("kind %d", ev.Kind)
			}
			out = append(out, rec{ev.Seq, ev.PayloadLen, append([]byte(nil), ev.Data...)})
		}
	}
	const srvSeq = 100
	run(segment{src: cli4, dst: srv4, seq: 1, ack: srvSeq, flags: FlagACK, payload: []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")})
	read()

	next := h2frame(3, 0, 1, 4) // RST_STREAM, split 5 | 4+4 across segments
	var big []byte
	big = append(big, h2frame(4, 0, 0, 0)...)    // SETTINGS at 0
	big = append(big, h2frame(0, 0, 1, 6000)...) // DATA at 9, runs past the window
	headersAt := len(big)
	big = append(big, h2frame(1, 4, 3, 20)...) // HEADERS at 6018
	dataAt := len(big)
	big = append(big, h2frame(0, 1, 3, 5000)...) // DATA END_STREAM at 6047
	splitAt := len(big)
	big = append(big, next[:5]...)
	run(segment{src: srv4, dst: cli4, seq: srvSeq, flags: FlagACK, payload: big})
	got := read()
	want := []rec{
		{srvSeq, uint32(headersAt), big[:CaptureMax]},
		{srvSeq + uint32(headersAt), uint32(dataAt - headersAt), big[headersAt:dataAt]},
		{srvSeq + uint32(dataAt), uint32(splitAt - dataAt), big[dataAt : dataAt+9]},
		{srvSeq + uint32(splitAt), 5, next[:5]},
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].seq != want[i].seq || got[i].plen != want[i].plen || !bytes.Equal(got[i].data, want[i].data) {
			t.Errorf("record %d: seq %d len %d captured %d bytes, want seq %d len %d %d bytes", i, got[i].seq, got[i].plen, len(got[i].data), want[i].seq, want[i].plen, len(want[i].data))
		}
	}

	// The same segment again (the router's other hook): not reported.
	run(segment{src: srv4, dst: cli4, seq: srvSeq, flags: FlagACK, payload: big})
	if got := read(); len(got) != 0 {
		t.Fatalf("duplicate reported: %+v", got)
	}

	// The split header completes; then a long segment whose first
	// header past the window is found from it.
	seq2 := srvSeq + uint32(len(big))
	tail := append(append([]byte(nil), next[5:]...), h2frame(0, 0, 5, 5000)...)
	after := len(tail)
	tail = append(tail, h2frame(1, 5, 5, 10)...)
	run(segment{src: srv4, dst: cli4, seq: seq2, flags: FlagACK, payload: tail})
	got = read()
	if len(got) != 2 || got[0].plen != uint32(after) || got[1].seq != seq2+uint32(after) || !bytes.Equal(got[1].data, tail[after:]) {
		t.Fatalf("after the split header: %+v", got)
	}

	// A gap: the walk gives up, the segment is reported plainly.
	seq3 := seq2 + uint32(len(tail)) + 1000
	run(segment{src: srv4, dst: cli4, seq: seq3, flags: FlagACK, payload: big})
	got = read()
	if len(got) != 1 || got[0].seq != seq3 || got[0].plen != uint32(len(big)) || len(got[0].data) != CaptureMax {
		t.Fatalf("after a gap: %+v", got)
	}
}

// TestH2cServerStartPastMissedSettings: the server's SETTINGS went by
// before the client's preface marked the connection (gRPC servers send
// it as they accept). A first server segment that starts with a control
// frame on stream 0 starts the direction's walk; one that starts with
// anything else makes the direction plain.
func TestH2cServerStartPastMissedSettings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first []byte
		walk  bool
	}{
		{"settings ack", h2frame(4, 1, 0, 0), true},
		{"window update", h2frame(8, 0, 0, 4), true},
		{"headers", h2frame(1, 4, 1, 4), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := loadOrSkip(t, LoadOptions{RingBytes: 1 << 20, XDP: true})
			rd := readerOf(t, objs)
			run := func(s segment) {
				t.Helper()
				if _, err := objs.XDPIngress.Run(&ebpf.RunOptions{Data: s.frame()}); err != nil {
					t.Fatal(err)
				}
			}
			run(segment{src: cli4, dst: srv4, seq: 1, ack: 100, flags: FlagACK, payload: []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")})
			// 30 bytes of the server (its SETTINGS) were not seen.
			seq := uint32(130)
			run(segment{src: srv4, dst: cli4, seq: seq, flags: FlagACK, payload: tc.first})
			long := append(h2frame(0, 0, 1, 5000), h2frame(1, 5, 1, 10)...)
			run(segment{src: srv4, dst: cli4, seq: seq + uint32(len(tc.first)), flags: FlagACK, payload: long})
			var n int
			for {
				var ev Event
				rd.SetDeadline(time.Now().Add(50 * time.Millisecond))
				if err := rd.Next(&ev); err != nil {
					break
				}
				n++
			}
			// preface, first, long (+ one record for the HEADERS past
			// the window when the walk is alive).
			want := 3
			if tc.walk {
				want = 4
			}
			if n != want {
				t.Fatalf("%d records, want %d", n, want)
			}
		})
	}
}
