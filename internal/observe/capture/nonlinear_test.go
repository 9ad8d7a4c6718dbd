package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// xdpMD builds a struct xdp_md test context whose data_end makes only the
// first linear bytes of the frame directly readable; BPF_PROG_TEST_RUN puts
// the rest in fragments (multi-buffer XDP).
func xdpMD(linear int) []byte {
	ctx := make([]byte, 24) // data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
	binary.LittleEndian.PutUint32(ctx[4:], uint32(linear))
	return ctx
}

// TestHeadersOutsideLinearPart: the programs read headers straight from
// the packet's linear part and fall back to bpf_xdp_load_bytes /
// bpf_skb_load_bytes when a header crosses its end. Every cut must give
// the same event as a linear frame.
func TestHeadersOutsideLinearPart(t *testing.T) {
	objs := loadOrSkip(t, LoadOptions{XDP: true, RingBytes: 1 << 16})
	rd := readerOf(t, objs)

	segs := map[string]segment{
		"ipv4 request":  {src: cli4, dst: srv4, seq: 100, flags: FlagACK | FlagPSH, payload: []byte("GET /healthz HTTP/1.1\r\nHost: svc\r\n\r\n")},
		"ipv6 response": {src: srv6, dst: cli6, seq: 200, flags: FlagACK | FlagPSH, payload: []byte("HTTP/1.1 204 No Content\r\n\r\n")},
	}
	for name, seg := range segs {
		frame := seg.frame()
		payloadOff := len(frame) - len(seg.payload)
		// Cuts: inside Ethernet, inside the IP header, inside TCP, inside
		// the first 8 payload bytes, after them, and none.
		for _, linear := range []int{14, 20, 14 + 19, payloadOff - 3, payloadOff + 4, payloadOff + 12, len(frame)} {
			t.Run(fmt.Sprintf("%s linear %d of %d", name, linear, len(frame)), func(t *testing.T) {
				out := make([]byte, 24)
				ret, err := objs.XDPIngress.Run(&ebpf.RunOptions{Data: frame, Context: xdpMD(linear), ContextOut: out})
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				if ret != xdpPass {
					t.Fatalf("returned %d, want XDP_PASS", ret)
				}
				if got := binary.LittleEndian.Uint32(out[4:]); got != uint32(linear) {
					t.Fatalf("kernel made %d bytes linear, want %d: the fallback is not exercised", got, linear)
				}
				var ev Event
				rd.SetDeadline(time.Now().Add(100 * time.Millisecond))
				if err := rd.Next(&ev); err != nil {
					t.Fatalf("no event: %v", err)
				}
				if ev.Src != seg.src || ev.Dst != seg.dst || ev.Seq != seg.seq || ev.Kind != KindPayload {
					t.Fatalf("event %v -> %v seq %d kind %d, want %v -> %v seq %d", ev.Src, ev.Dst, ev.Seq, ev.Kind, seg.src, seg.dst, seg.seq)
				}
				if !bytes.Equal(ev.Data, seg.payload) || ev.PayloadLen != uint32(len(seg.payload)) {
					t.Fatalf("data %q (payload_len %d), want %q", ev.Data, ev.PayloadLen, seg.payload)
				}
			})
		}
	}
}
