package capture

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// TestReaderInPlaceWrapsAndReleases drives ~40 laps of a 32 KiB ring with
// fixed-size records (up to 512 bytes captured) and records sized to the
// capture (longer requests), of changing sizes, so records start at every
// offset and many straddle the end of the data pages, where only the
// double mapping keeps them contiguous. Each record must read back exactly,
// and the consumer position must be handed back: if it were not, the
// kernel would count the ring full.
func TestReaderInPlaceWrapsAndReleases(t *testing.T) {
	objs := loadOrSkip(t, LoadOptions{RingBytes: 1 << 15})
	rd := readerOf(t, objs)

	const batches, perBatch = 120, 20
	seq := uint32(1000)
	var ev Event
	for b := range batches {
		want := make([]string, perBatch)
		for i := range perBatch {
			// 18..~700 bytes: small records (up to 512) and large ones.
			payload := fmt.Sprintf("GET /%d/%d HTTP/1.1\r\n%s\r\n", b, i, strings.Repeat("x", (b*37+i*53)%700))
			want[i] = payload
			frame := segment{src: cli4, dst: srv4, seq: seq + uint32(i), flags: FlagACK | FlagPSH, payload: []byte(payload)}.frame()
			if _, err := objs.TCIngress.Run(&ebpf.RunOptions{Data: frame}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range perBatch {
			rd.SetDeadline(time.Now().Add(time.Second))
			if err := rd.Next(&ev); err != nil {
				t.Fatalf("batch %d record %d: %v", b, i, err)
			}
			w := want[i]
			if len(w) > CaptureMax {
				w = w[:CaptureMax]
			}
			if ev.Seq != seq+uint32(i) || !bytes.Equal(ev.Data, []byte(w)) || int(ev.PayloadLen) != len(want[i]) {
				t.Fatalf("batch %d record %d: seq %d len %d data %.40q..., want seq %d len %d data %.40q...", b, i, ev.Seq, ev.PayloadLen, ev.Data, seq+uint32(i), len(want[i]), w)
			}
		}
		seq += perBatch
		// Drained: the next read times out and hands every record back.
		rd.SetDeadline(time.Now().Add(time.Millisecond))
		if err := rd.Next(&ev); !errors.Is(err, ErrTimeout) {
			t.Fatalf("batch %d: read past the end: %v, want ErrTimeout", b, err)
		}
		if cons, prod := atomic.LoadUint64(rd.ring.consPos), rd.ring.producer(); cons != prod {
			t.Fatalf("batch %d: consumer at %d, producer at %d: records not handed back", b, cons, prod)
		}
	}
	if laps := rd.pos / rd.ring.size(); laps < 20 {
		t.Fatalf("only %d laps of the ring, the test does not wrap enough", laps)
	}
	st, err := objs.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	if st.RingbufFull != 0 || st.Events != batches*perBatch {
		t.Fatalf("kernel counters %+v, want %d events and no ring-full", st, batches*perBatch)
	}
}

// TestReaderReleasesWhileReading: a reader that never runs dry still hands
// records back every releaseEvery records, so a long busy stretch does not
// fill the ring behind it.
func TestReaderReleasesWhileReading(t *testing.T) {
	objs := loadOrSkip(t, LoadOptions{RingBytes: 1 << 16})
	rd := readerOf(t, objs)
	frame := segment{src: cli4, dst: srv4, seq: 5, flags: FlagACK, payload: []byte("GET / HTTP/1.1\r\n\r\n")}.frame()
	if _, err := objs.TCIngress.Run(&ebpf.RunOptions{Data: frame, Repeat: 100}); err != nil {
		t.Fatal(err)
	}
	var ev Event
	rd.SetDeadline(time.Now().Add(time.Second))
	for i := range releaseEvery + 1 {
		if err := rd.Next(&ev); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	cons := atomic.LoadUint64(rd.ring.consPos)
	if cons == 0 || cons >= rd.pos {
		t.Fatalf("after %d records the consumer is at %d (reader at %d): want records handed back, the current one kept", releaseEvery+1, cons, rd.pos)
	}
}

func TestReaderCloseUnblocksNext(t *testing.T) {
	objs := loadOrSkip(t, LoadOptions{RingBytes: 1 << 16})
	rd, err := NewReader(objs.Events)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var ev Event
		done <- rd.Next(&ev) // no deadline: blocks until Close
	}()
	time.Sleep(50 * time.Millisecond)
	if err := rd.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Next returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still blocked 5s after Close")
	}
	var ev Event
	if err := rd.Next(&ev); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
	if err := rd.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestNewReaderRejectsOtherMaps(t *testing.T) {
	objs := loadOrSkip(t, LoadOptions{RingBytes: 1 << 16})
	if _, err := NewReader(objs.Stats); err == nil || !strings.Contains(err.Error(), "not a ring buffer") {
		t.Fatalf("NewReader(stats array): %v, want a not-a-ring-buffer error", err)
	}
}

// TestReaderWakesOnKernelWakeup: a reader parked in the poller with a far
// deadline is woken by the kernel's wakeup (WakeupBytes 0: every record
// wakes), not by the deadline.
func TestReaderWakesOnKernelWakeup(t *testing.T) {
	objs := loadOrSkip(t, LoadOptions{RingBytes: 1 << 16})
	rd := readerOf(t, objs)
	type result struct {
		seq uint32
		err error
	}
	done := make(chan result, 1)
	rd.SetDeadline(time.Now().Add(30 * time.Second))
	go func() {
		var ev Event
		err := rd.Next(&ev)
		done <- result{ev.Seq, err}
	}()
	time.Sleep(50 * time.Millisecond) // let it park
	frame := segment{src: cli4, dst: srv4, seq: 4242, flags: FlagACK, payload: []byte("GET /wake HTTP/1.1\r\n\r\n")}.frame()
	if _, err := objs.TCIngress.Run(&ebpf.RunOptions{Data: frame}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || r.seq != 4242 {
			t.Fatalf("Next: seq %d, %v; want seq 4242", r.seq, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader not woken by the kernel within 5s")
	}
}

// TestWakeupWhenQueueCrossesThreshold: below the threshold the kernel lets
// the reader sleep (it would pick records up at its poll); once the queue
// crosses it, the reader is woken although its deadline is far away.
func TestWakeupWhenQueueCrossesThreshold(t *testing.T) {
	const threshold = 32 << 10
	objs := loadOrSkip(t, LoadOptions{RingBytes: 1 << 18, WakeupBytes: threshold})
	rd := readerOf(t, objs)
	frame := segment{src: cli4, dst: srv4, seq: 9, flags: FlagACK, payload: []byte("GET /w HTTP/1.1\r\n\r\n")}.frame()
	record := (EventSize + 8 + 7) &^ 7
	woken := make(chan error, 1)
	rd.SetDeadline(time.Now().Add(time.Minute))
	go func() {
		var ev Event
		woken <- rd.Next(&ev) // parks on an empty ring until woken
	}()
	time.Sleep(50 * time.Millisecond)
	// Queued below the threshold: the reader is left asleep.
	below := threshold/record - 1
	if _, err := objs.TCIngress.Run(&ebpf.RunOptions{Data: frame, Repeat: uint32(below)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-woken:
		t.Fatalf("reader woken below the threshold (%d bytes queued): %v", below*record, err)
	default:
	}
	more := threshold / record
	if _, err := objs.TCIngress.Run(&ebpf.RunOptions{Data: frame, Repeat: uint32(more)}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woken:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("queue crossed the wakeup threshold and the reader was not woken")
	}
}
