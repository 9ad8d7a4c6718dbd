package observe

import (
	"sync"
	"sync/atomic"

	"github.com/false-systems/rauta/internal/observe/export"
)

// ifaceStats are the attacher's counters, read by the pipeline when it
// publishes, and the deleted interfaces it hands to the pipeline so that
// their connections are released.
type ifaceStats struct {
	attached     atomic.Int64
	attaches     atomic.Uint64
	detaches     atomic.Uint64
	attachErrors atomic.Uint64
	refused      atomic.Uint64
	reattached   atomic.Uint64
	gone         goneLinks
}

func (s *ifaceStats) snapshot() export.InterfaceStats {
	return export.InterfaceStats{
		Attached:     int(s.attached.Load()),
		Attaches:     s.attaches.Load(),
		Detaches:     s.detaches.Load(),
		AttachErrors: s.attachErrors.Load(),
		Refused:      s.refused.Load(),
		Reattached:   s.reattached.Load(),
	}
}

// maxGoneQueued bounds the deletions waiting for the pipeline's next tick
// (250 ms). Past it a deletion is not queued: its connections end by the
// idle timeout instead, as they did before interfaces were released.
const maxGoneQueued = 4096

// goneLinks passes deleted ifindexes from the attacher's goroutine to the
// pipeline's, which alone may touch the pairer.
type goneLinks struct {
	mu  sync.Mutex
	idx []uint32
}

func (g *goneLinks) push(idx int) {
	g.mu.Lock()
	if len(g.idx) < maxGoneQueued {
		g.idx = append(g.idx, uint32(idx))
	}
	g.mu.Unlock()
}

// take appends the queued ifindexes to buf and empties the queue.
func (g *goneLinks) take(buf []uint32) []uint32 {
	g.mu.Lock()
	buf = append(buf, g.idx...)
	g.idx = g.idx[:0]
	g.mu.Unlock()
	return buf
}
