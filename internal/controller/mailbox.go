package controller

import (
	"context"
	"sync"

	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/translate"
)

// statusJob is one translation's status and the snapshot it came from.
type statusJob struct {
	res    *resources.Resources
	status *translate.Status
}

// mailbox holds only the newest job: a writer that falls behind skips the
// statuses that were superseded meanwhile instead of writing each in turn.
type mailbox struct {
	mu     sync.Mutex
	job    *statusJob
	signal chan struct{}
}

func newMailbox() *mailbox { return &mailbox{signal: make(chan struct{}, 1)} }

// put replaces any waiting job. It never blocks.
func (m *mailbox) put(j statusJob) {
	m.mu.Lock()
	m.job = &j
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

// take waits for a job; ok is false when ctx ended.
func (m *mailbox) take(ctx context.Context) (statusJob, bool) {
	for {
		m.mu.Lock()
		j := m.job
		m.job = nil
		m.mu.Unlock()
		if j != nil {
			return *j, true
		}
		select {
		case <-ctx.Done():
			return statusJob{}, false
		case <-m.signal:
		}
	}
}
