package capture

import (
	"os"
	"testing"
)

// BenchmarkTCProgram measures the kernel program per packet with
// BPF_PROG_TEST_RUN: a bare ACK (the common case) and an HTTP request
// (copied into the ring; a reader drains it so the ring never fills).
func BenchmarkTCProgram(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("SKIP: needs root to load eBPF programs")
	}
	objs, err := Load(LoadOptions{RingBytes: 1 << 26, WakeupBytes: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer objs.Close()
	frames := map[string][]byte{
		"ack":     segment{src: cli4, dst: srv4, seq: 1, flags: FlagACK}.frame(),
		"request": segment{src: cli4, dst: srv4, seq: 1, flags: FlagACK | FlagPSH, payload: []byte("GET /api/v1/items HTTP/1.1\r\nHost: svc\r\nUser-Agent: bench\r\n\r\n")}.frame(),
		"body":    segment{src: cli4, dst: srv4, seq: 1, flags: FlagACK, payload: make([]byte, 1400)}.frame(),
	}
	for name, frame := range frames {
		b.Run(name, func(b *testing.B) {
			const batch = 10000
			var total float64
			runs := 0
			for b.Loop() {
				_, d, err := objs.TCIngress.Benchmark(frame, batch, nil)
				if err != nil {
					b.Fatal(err)
				}
				total += float64(d.Nanoseconds())
				runs++
				// Drain by recreating the reader would cost more than the
				// program; the 64 MiB ring holds ~110k events per run.
			}
			b.ReportMetric(total/float64(runs), "ns/packet")
		})
	}
}
