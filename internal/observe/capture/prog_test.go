package capture

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/false-systems/rauta/bpf"
)

// These tests load the real programs and run them on synthetic frames with
// BPF_PROG_TEST_RUN. They need root (CAP_BPF + CAP_NET_ADMIN) and skip
// loudly without it.

const (
	tcActUnspec = 0xffffffff // TC_ACT_UNSPEC (-1)
	xdpPass     = 2
)

func TestEventLayoutMatchesKernelStruct(t *testing.T) {
	var ev bpf.ObserverEvent
	if got := int(unsafe.Sizeof(ev)); got != EventSize {
		t.Fatalf("sizeof(struct event) = %d, decoder assumes %d", got, EventSize)
	}
	if got := int(unsafe.Offsetof(ev.Data)); got != eventHeaderLen {
		t.Fatalf("offsetof(data) = %d, decoder assumes %d", got, eventHeaderLen)
	}
	if got := len(ev.Data); got != CaptureLen {
		t.Fatalf("CAPTURE_LEN = %d, decoder assumes %d", got, CaptureLen)
	}
	var large bpf.ObserverEventLarge
	if got := int(unsafe.Sizeof(large)); got != EventLargeSize {
		t.Fatalf("sizeof(struct event_large) = %d, decoder assumes %d", got, EventLargeSize)
	}
	if got := int(unsafe.Offsetof(large.Data)); got != eventHeaderLen || len(large.Data) != CaptureMax {
		t.Fatalf("event_large: data at %d, %d bytes; decoder assumes %d, %d", got, len(large.Data), eventHeaderLen, CaptureMax)
	}
	checks := map[string][2]uintptr{
		"ifindex":     {unsafe.Offsetof(ev.Ifindex), 40},
		"seq":         {unsafe.Offsetof(ev.Seq), 44},
		"ack":         {unsafe.Offsetof(ev.Ack), 48},
		"payload_len": {unsafe.Offsetof(ev.PayloadLen), 52},
		"sport":       {unsafe.Offsetof(ev.Sport), 56},
		"captured":    {unsafe.Offsetof(ev.Captured), 60},
		"family":      {unsafe.Offsetof(ev.Family), 62},
		"kind":        {unsafe.Offsetof(ev.Kind), 64},
		"large ack":   {unsafe.Offsetof(large.Ack), 48},
		"large kind":  {unsafe.Offsetof(large.Kind), 64},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("offsetof(%s) = %d, decoder assumes %d", name, c[0], c[1])
		}
	}
}

var (
	cli4 = netip.MustParseAddrPort("192.0.2.10:40000")
	srv4 = netip.MustParseAddrPort("192.0.2.20:8080")
	// h2cli: a client port of its own, so the h2c mark it gets in the
	// benchmark stays off cli4's connection.
	h2cli = netip.MustParseAddrPort("192.0.2.10:40002")
	cli6  = netip.MustParseAddrPort("[2001:db8::10]:40001")
	srv6  = netip.MustParseAddrPort("[2001:db8::20]:80")
)

func TestProgramsOnSyntheticPackets(t *testing.T) {
	longBody := "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n" + strings.Repeat("x", 2000)
	hugeBody := "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 9000\r\n\r\n" + strings.Repeat("x", 9000)
	longResp := "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("x", 1024)
	var pipelined strings.Builder // eight ~200-byte requests in one segment
	for i := range 8 {
		fmt.Fprintf(&pipelined, "GET /items/%d HTTP/1.1\r\nHost: svc\r\nUser-Agent: %s\r\n\r\n", i, strings.Repeat("u", 150))
	}
	cases := []struct {
		name      string
		seg       segment
		wantEvent bool
		wantKind  Kind
		wantData  string // expected captured bytes when wantEvent
		wantStat  func(KernelStats) uint64
		// xdpOnly: BPF_PROG_TEST_RUN takes frames above a page only for
		// multi-buffer XDP programs.
		xdpOnly bool
	}{
		{
			name:      "ipv4 request",
			seg:       segment{src: cli4, dst: srv4, seq: 100, flags: FlagACK | FlagPSH, payload: []byte("GET /healthz HTTP/1.1\r\nHost: svc\r\nUser-Agent: kube-probe/1.36\r\n\r\n")},
			wantEvent: true, wantKind: KindPayload,
			wantData: "GET /healthz HTTP/1.1\r\nHost: svc\r\nUser-Agent: kube-probe/1.36\r\n\r\n",
			wantStat: func(s KernelStats) uint64 { return s.Events },
		},
		{
			name:      "ipv4 response",
			seg:       segment{src: srv4, dst: cli4, seq: 7, flags: FlagACK | FlagPSH, payload: []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")},
			wantEvent: true, wantKind: KindPayload,
			wantData: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
			wantStat: func(s KernelStats) uint64 { return s.Events },
		},
		{
			name:      "ipv6 request",
			seg:       segment{src: cli6, dst: srv6, seq: 1, flags: FlagACK, payload: []byte("DELETE /items/42 HTTP/1.1\r\nHost: [2001:db8::20]\r\n\r\n")},
			wantEvent: true, wantKind: KindPayload,
			wantData: "DELETE /items/42 HTTP/1.1\r\nHost: [2001:db8::20]\r\n\r\n",
			wantStat: func(s KernelStats) uint64 { return s.Events },
		},
		{
			name:      "ipv6 response",
			seg:       segment{src: srv6, dst: cli6, seq: 2, flags: FlagACK, payload: []byte("HTTP/1.0 200 OK\r\n\r\n")},
			wantEvent: true, wantKind: KindPayload,
			wantData: "HTTP/1.0 200 OK\r\n\r\n",
			wantStat: func(s KernelStats) uint64 { return s.Events },
		},
		{
			name:      "longer than the small window: large record",
			seg:       segment{src: cli4, dst: srv4, seq: 5, ack: 77, flags: FlagACK, payload: []byte(longBody)},
			wantEvent: true, wantKind: KindPayload,
			wantData: longBody,
			wantStat: func(s KernelStats) uint64 { return s.Events },
		},
		{
			name:      "eight pipelined requests in one segment",
			seg:       segment{src: cli4, dst: srv4, seq: 5, ack: 0xfffffff0, flags: FlagACK | FlagPSH, payload: []byte(pipelined.String())},
			wantEvent: true, wantKind: KindPayload,
			wantData: pipelined.String(),
			wantStat: func(s KernelStats) uint64 { return s.Events },
		},
		{
			name:      "long response keeps the small window",
			seg:       segment{src: srv4, dst: cli4, seq: 5, flags: FlagACK, payload: []byte(longResp)},
			wantEvent: true, wantKind: KindPayload,
			wantData: longResp[:CaptureLen],
			wantStat: func(s KernelStats) uint64 { return s.Truncated },
		},
		{
			name:      "truncated to the large window",
			seg:       segment{src: cli4, dst: srv4, seq: 5, flags: FlagACK, payload: []byte(hugeBody)},
			wantEvent: true, wantKind: KindPayload,
			wantData: hugeBody[:CaptureMax],
			wantStat: func(s KernelStats) uint64 { return s.Truncated },
			xdpOnly:  true,
		},
		{
			name:     "non-HTTP payload",
			seg:      segment{src: cli4, dst: srv4, seq: 9, flags: FlagACK, payload: []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS client hello")},
			wantStat: func(s KernelStats) uint64 { return s.NonHTTP },
		},
		{
			name:     "lowercase method is not HTTP",
			seg:      segment{src: cli4, dst: srv4, seq: 9, flags: FlagACK, payload: []byte("get / HTTP/1.1\r\n\r\n")},
			wantStat: func(s KernelStats) uint64 { return s.NonHTTP },
		},
		{
			name: "payload shorter than any line prefix",
			seg:  segment{src: cli4, dst: srv4, seq: 9, flags: FlagACK, payload: []byte("GET ")},
		},
		{
			name: "bare ACK",
			seg:  segment{src: cli4, dst: srv4, seq: 9, flags: FlagACK},
		},
		{
			name:      "reset",
			seg:       segment{src: srv4, dst: cli4, seq: 11, flags: FlagRST | FlagACK},
			wantEvent: true, wantKind: KindReset, wantData: "",
			wantStat: func(s KernelStats) uint64 { return s.Events },
		},
		{
			name: "non-first IPv4 fragment",
			seg:  segment{src: cli4, dst: srv4, seq: 9, flags: FlagACK, fragOff: 100, payload: []byte("GET / HTTP/1.1\r\n\r\n")},
		},
		{
			name: "IPv4 header length below minimum",
			seg:  segment{src: cli4, dst: srv4, seq: 9, flags: FlagACK, ihl: 4, payload: []byte("GET / HTTP/1.1\r\n\r\n")},
		},
	}

	for _, mode := range []struct {
		name string
		xdp  bool
		want uint32
	}{{"tc", false, tcActUnspec}, {"xdp", true, xdpPass}} {
		t.Run(mode.name, func(t *testing.T) {
			objs := loadOrSkip(t, LoadOptions{XDP: mode.xdp, RingBytes: 1 << 16})
			rd := readerOf(t, objs)
			progs := []*ebpf.Program{objs.TCIngress, objs.TCEgress}
			if mode.xdp {
				progs = []*ebpf.Program{objs.XDPIngress}
			}
			for _, tc := range cases {
				if tc.xdpOnly && !mode.xdp {
					continue
				}
				for pi, prog := range progs {
					before, err := objs.ReadStats()
					if err != nil {
						t.Fatal(err)
					}
					frame := tc.seg.frame()
					ret, err := prog.Run(&ebpf.RunOptions{Data: frame})
					if err != nil {
						t.Fatalf("%s: run: %v", tc.name, err)
					}
					if ret != mode.want {
						t.Errorf("%s: program returned %#x, want %#x (always pass)", tc.name, ret, mode.want)
					}
					after, err := objs.ReadStats()
					if err != nil {
						t.Fatal(err)
					}
					if tc.wantStat != nil {
						if d := tc.wantStat(after) - tc.wantStat(before); d != 1 {
							t.Errorf("%s: counter moved by %d, want 1 (before %+v after %+v)", tc.name, d, before, after)
						}
					}

					var ev Event
					rd.SetDeadline(time.Now().Add(50 * time.Millisecond))
					err = rd.Next(&ev)
					if !tc.wantEvent {
						if err == nil {
							t.Errorf("%s: unexpected event %+v", tc.name, ev)
						} else if !errors.Is(err, ErrTimeout) {
							t.Errorf("%s: read: %v", tc.name, err)
						}
						if after.Events != before.Events {
							t.Errorf("%s: events counter moved", tc.name)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%s: no event: %v", tc.name, err)
					}
					if ev.Kind != tc.wantKind {
						t.Errorf("%s: kind %d, want %d", tc.name, ev.Kind, tc.wantKind)
					}
					if ev.Src != tc.seg.src || ev.Dst != tc.seg.dst {
						t.Errorf("%s: tuple %v -> %v, want %v -> %v", tc.name, ev.Src, ev.Dst, tc.seg.src, tc.seg.dst)
					}
					if ev.Seq != tc.seg.seq {
						t.Errorf("%s: seq %d, want %d", tc.name, ev.Seq, tc.seg.seq)
					}
					if wantAck := max(tc.seg.ack, 1); ev.Ack != wantAck {
						t.Errorf("%s: ack %d, want %d", tc.name, ev.Ack, wantAck)
					}
					if !bytes.Equal(ev.Data, []byte(tc.wantData)) {
						t.Errorf("%s: data %q, want %q", tc.name, ev.Data, tc.wantData)
					}
					wantLen := uint32(len(tc.seg.payload))
					if tc.wantKind == KindReset {
						wantLen = 0
					}
					if ev.PayloadLen != wantLen {
						t.Errorf("%s: payload_len %d, want %d", tc.name, ev.PayloadLen, wantLen)
					}
					if ev.Truncated() != (len(tc.seg.payload) > len(tc.wantData)) {
						t.Errorf("%s: truncated = %v", tc.name, ev.Truncated())
					}
					if ev.TimestampNS == 0 {
						t.Errorf("%s: zero timestamp", tc.name)
					}
					wantDir := Ingress
					if !mode.xdp && pi == 1 {
						wantDir = Egress
					}
					if ev.Direction != wantDir {
						t.Errorf("%s: direction %v, want %v", tc.name, ev.Direction, wantDir)
					}
				}
			}
		})
	}
}

func TestRingFullIsCountedAndPacketsStillPass(t *testing.T) {
	objs := loadOrSkip(t, LoadOptions{RingBytes: 1 << 16})
	// 64 KiB ring holds ~110 events of 584 bytes; nobody reads it.
	frame := segment{src: cli4, dst: srv4, seq: 1, flags: FlagACK, payload: []byte("GET / HTTP/1.1\r\n\r\n")}.frame()
	const runs = 300
	ret, err := objs.TCIngress.Run(&ebpf.RunOptions{Data: frame, Repeat: runs})
	if err != nil {
		t.Fatal(err)
	}
	if ret != tcActUnspec {
		t.Fatalf("returned %#x with a full ring, want TC_ACT_UNSPEC", ret)
	}
	st, err := objs.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Events+st.RingbufFull != runs {
		t.Fatalf("events %d + ring full %d != %d runs", st.Events, st.RingbufFull, runs)
	}
	if st.RingbufFull == 0 || st.Events == 0 {
		t.Fatalf("want both delivered and dropped events, got %+v", st)
	}
	if st.Events > (1<<16)/EventSize {
		t.Fatalf("delivered %d events, more than a 64 KiB ring holds", st.Events)
	}
}

func TestLoadRejectsBadRingSize(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root to reach the ring size check after the feature probes")
	}
	if _, err := Load(LoadOptions{RingBytes: 10000}); err == nil || !strings.Contains(err.Error(), "power of two") {
		t.Fatalf("want power-of-two error, got %v", err)
	}
}

// TestBatchedWakeupStillDelivers: below the wakeup threshold the kernel
// does not wake the reader, and a reader polling with a deadline still
// gets the event.
func TestBatchedWakeupStillDelivers(t *testing.T) {
	objs := loadOrSkip(t, LoadOptions{RingBytes: 1 << 16, WakeupBytes: 1 << 15})
	rd := readerOf(t, objs)
	frame := segment{src: cli4, dst: srv4, seq: 77, flags: FlagACK, payload: []byte("GET /batched HTTP/1.1\r\n\r\n")}.frame()
	if _, err := objs.TCIngress.Run(&ebpf.RunOptions{Data: frame}); err != nil {
		t.Fatal(err)
	}
	var ev Event
	rd.SetDeadline(time.Now().Add(20 * time.Millisecond))
	for {
		err := rd.Next(&ev)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrTimeout) {
			t.Fatal(err)
		}
		t.Fatal("event below the wakeup threshold not delivered at the poll deadline")
	}
	if ev.Seq != 77 || !bytes.HasPrefix(ev.Data, []byte("GET /batched")) {
		t.Fatalf("event %+v", ev)
	}
	if _, err := Load(LoadOptions{RingBytes: 1 << 16, WakeupBytes: 1 << 16}); err == nil {
		t.Fatal("wakeup threshold equal to the ring size accepted")
	}
}
