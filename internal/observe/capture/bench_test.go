package capture

import (
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// BenchmarkTCProgram measures the kernel program per packet with
// BPF_PROG_TEST_RUN: a bare ACK, a body segment, an HTTP request and a
// 1 KiB response (copied into the ring; a reader drains it so the ring
// never fills), and a segment of eight pipelined requests (the large
// window).
func BenchmarkTCProgram(b *testing.B) {
	// RAUTA_BENCH_NO_H2=1 measures the programs with h2c following off.
	objs := loadOrSkip(b, LoadOptions{RingBytes: 1 << 26, WakeupBytes: 1 << 20, NoH2: os.Getenv("RAUTA_BENCH_NO_H2") != ""})
	// Drain the ring as the observer does, so that the request case
	// measures a delivered event and not the ring-full path.
	rd, err := NewReader(objs.Events)
	if err != nil {
		b.Fatal(err)
	}
	var read atomic.Uint64
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		var ev Event
		for {
			rd.SetDeadline(time.Now().Add(time.Millisecond))
			err := rd.Next(&ev)
			if err == nil {
				read.Add(1)
			} else if !errors.Is(err, ErrTimeout) {
				return // closed
			}
		}
	}()
	defer func() { rd.Close(); <-drained }()
	frames := map[string][]byte{
		"ack":     segment{src: cli4, dst: srv4, seq: 1, flags: FlagACK}.frame(),
		"request": segment{src: cli4, dst: srv4, seq: 1, flags: FlagACK | FlagPSH, payload: []byte("GET /api/v1/items HTTP/1.1\r\nHost: svc\r\nUser-Agent: bench\r\n\r\n")}.frame(),
		"body":    segment{src: cli4, dst: srv4, seq: 1, flags: FlagACK, payload: make([]byte, 1400)}.frame(),
		// Eight pipelined ~200-byte requests: the large window, 1.6 KB
		// copied through the per-CPU scratch.
		"pipelined8": segment{src: cli4, dst: srv4, seq: 1, flags: FlagACK | FlagPSH, payload: []byte(strings.Repeat("GET /api/v1/items HTTP/1.1\r\nHost: svc\r\nUser-Agent: "+strings.Repeat("u", 140)+"\r\n\r\n", 8))}.frame(),
		// A 1 KiB response: CaptureLen bytes copied.
		"response": segment{src: srv4, dst: cli4, seq: 1, flags: FlagACK | FlagPSH, payload: append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n"), make([]byte, 1024)...)}.frame(),
		// A 1400-byte segment of an h2c connection (marked below): the
		// large window, 1400 bytes copied.
		"h2": segment{src: h2cli, dst: srv4, seq: 1, flags: FlagACK, payload: make([]byte, 1400)}.frame(),
	}
	preface := segment{src: h2cli, dst: srv4, seq: 1, flags: FlagACK, payload: []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")}.frame()
	if _, err := objs.TCIngress.Run(&ebpf.RunOptions{Data: preface}); err != nil {
		b.Fatal(err)
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
				// Let the reader empty the ring between batches (not timed).
				st, err := objs.ReadStats()
				if err != nil {
					b.Fatal(err)
				}
				for read.Load() < st.Events {
					time.Sleep(100 * time.Microsecond)
				}
			}
			st, err := objs.ReadStats()
			if err != nil {
				b.Fatal(err)
			}
			if st.RingbufFull != 0 {
				b.Fatalf("ring full %d times: the reader did not keep up, the numbers mix in the drop path", st.RingbufFull)
			}
			b.ReportMetric(total/float64(runs), "ns/packet")
		})
	}
}

// BenchmarkReader measures reading and decoding records in place: a
// request and a 1 KiB response per exchange, 10,000 records written by
// the kernel program before each timed pass.
func BenchmarkReader(b *testing.B) {
	objs := loadOrSkip(b, LoadOptions{RingBytes: 1 << 23})
	rd := readerOf(b, objs)
	req := segment{src: cli4, dst: srv4, seq: 1, flags: FlagACK | FlagPSH, payload: []byte("GET /api/v1/items HTTP/1.1\r\nHost: svc\r\nUser-Agent: bench\r\n\r\n")}.frame()
	resp := segment{src: srv4, dst: cli4, seq: 1, flags: FlagACK | FlagPSH, payload: append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n"), make([]byte, 1024)...)}.frame()
	const each = 5000
	var ev Event
	var sum int
	for b.Loop() {
		b.StopTimer()
		for _, f := range [][]byte{req, resp} {
			if _, err := objs.TCIngress.Run(&ebpf.RunOptions{Data: f, Repeat: each}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		rd.SetDeadline(time.Now().Add(time.Second))
		for range 2 * each {
			if err := rd.Next(&ev); err != nil {
				b.Fatal(err)
			}
			sum += int(ev.Data[0]) + int(ev.Data[len(ev.Data)-1])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*each), "ns/record")
	if sum == 0 {
		b.Fatal("read nothing")
	}
}
