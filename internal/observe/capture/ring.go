package capture

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Layout of a BPF ring buffer map as mmap(2) exposes it (kernel/bpf/ringbuf.c):
// page 0 holds the consumer position (the only page userspace may write),
// page 1 the producer position, and the data pages follow, mapped twice in
// a row so a record that wraps around the end reads as one contiguous slice.
// Each record starts with an 8-byte header: a 32-bit length whose two top
// bits are BUSY (not committed yet) and DISCARD, then a page offset the
// kernel uses for itself. Records are padded to 8 bytes.
const (
	ringHeaderLen = 8
	ringBusyBit   = 1 << 31
	ringDiscard   = 1 << 30
)

// ring is a read-only view of a BPF ring buffer's memory. Records are
// read in place: nothing is copied, and a record stays valid until the
// consumer position is moved past it.
type ring struct {
	consPage []byte // read-write: the consumer position
	prodPage []byte // read-only: the producer position and the data pages twice
	consPos  *uint64
	prodPos  *uint64
	data     []byte // 2*size bytes: the data pages, mapped twice
	mask     uint64
}

func mapRing(fd, size int) (*ring, error) {
	page := os.Getpagesize()
	cons, err := unix.Mmap(fd, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap ring buffer consumer page: %w", err)
	}
	prod, err := unix.Mmap(fd, int64(page), page+2*size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		_ = unix.Munmap(cons)
		return nil, fmt.Errorf("mmap ring buffer data pages: %w", err)
	}
	return &ring{
		consPage: cons,
		prodPage: prod,
		consPos:  (*uint64)(unsafe.Pointer(&cons[0])),
		prodPos:  (*uint64)(unsafe.Pointer(&prod[0])),
		data:     prod[page:],
		mask:     uint64(size - 1),
	}, nil
}

func (r *ring) size() uint64 { return r.mask + 1 }

// producer is how far the kernel has reserved. Records between the
// consumer and the producer position may still be BUSY.
func (r *ring) producer() uint64 { return atomic.LoadUint64(r.prodPos) }

// release hands every record before pos back to the kernel.
func (r *ring) release(pos uint64) { atomic.StoreUint64(r.consPos, pos) }

// recordState says what record() found.
type recordState int

const (
	recordReady   recordState = iota
	recordBusy                // reserved but not committed yet
	recordDiscard             // committed with bpf_ringbuf_discard: skip it
)

// record reads the record header at pos (pos < producer): its state, the
// sample bytes in place, and where the next record starts. The length is
// checked against the ring and prod so that a corrupt header cannot make
// a slice reach past the mapping.
func (r *ring) record(pos, prod uint64) ([]byte, uint64, recordState, error) {
	if prod-pos < ringHeaderLen {
		return nil, 0, 0, fmt.Errorf("ring buffer record at %d: header cut short (producer at %d)", pos, prod)
	}
	off := pos & r.mask
	// The atomic load orders the reads of the sample after the kernel's
	// commit of the header (an xchg that clears BUSY).
	hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[off])))
	if hdr&ringBusyBit != 0 {
		return nil, 0, recordBusy, nil
	}
	n := uint64(hdr &^ (ringBusyBit | ringDiscard))
	next := pos + ringHeaderLen + (n+7)&^7
	if n > r.size()-ringHeaderLen || next > prod {
		return nil, 0, 0, fmt.Errorf("ring buffer record at %d: length %d does not fit (producer at %d, ring %d bytes)", pos, n, prod, r.size())
	}
	if hdr&ringDiscard != 0 {
		return nil, next, recordDiscard, nil
	}
	start := off + ringHeaderLen
	return r.data[start : start+n : start+n], next, recordReady, nil
}

func (r *ring) unmap() error {
	err1 := unix.Munmap(r.prodPage)
	err2 := unix.Munmap(r.consPage)
	r.prodPage, r.consPage, r.data = nil, nil, nil
	if err1 != nil {
		return err1
	}
	return err2
}
