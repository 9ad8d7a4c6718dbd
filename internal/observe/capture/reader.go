package capture

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// ErrClosed is returned by Reader.Next after Close.
var ErrClosed = ringbuf.ErrClosed

// ErrTimeout is returned by Reader.Next when the deadline passed with no
// record available.
var ErrTimeout = os.ErrDeadlineExceeded

// Reader reads events from the ring buffer, reusing one record buffer: the
// Event it fills is valid until the next call.
type Reader struct {
	rb  *ringbuf.Reader
	rec ringbuf.Record
	bad uint64
}

// NewReader opens a reader on the events ring buffer.
func NewReader(events *ebpf.Map) (*Reader, error) {
	rb, err := ringbuf.NewReader(events)
	if err != nil {
		return nil, fmt.Errorf("open ring buffer reader: %w", explainPerm(err))
	}
	return &Reader{rb: rb}, nil
}

// SetDeadline makes Next return ErrTimeout once t passes with no record.
func (r *Reader) SetDeadline(t time.Time) { r.rb.SetDeadline(t) }

// Next blocks for the next well-formed record and decodes it into e.
// Malformed records (which a matching kernel object never writes) are
// skipped and counted in Malformed.
func (r *Reader) Next(e *Event) error {
	for {
		if err := r.rb.ReadInto(&r.rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return ErrTimeout
			}
			return err
		}
		if err := DecodeEvent(r.rec.RawSample, e); err != nil {
			r.bad++
			continue
		}
		return nil
	}
}

// Malformed is the number of records skipped because they did not decode.
// Only the goroutine calling Next may read it.
func (r *Reader) Malformed() uint64 { return r.bad }

// Close unblocks Next and releases the reader.
func (r *Reader) Close() error { return r.rb.Close() }
