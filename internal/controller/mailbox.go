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

// mailbox carries statuses to the status writer.
type mailbox = latest[statusJob]

func newMailbox() *mailbox { return newLatest[statusJob]() }

// latest holds only the newest job: a worker that falls behind skips the
// jobs that were superseded meanwhile instead of doing each in turn.
type latest[T any] struct {
	mu     sync.Mutex
	job    *T
	signal chan struct{}
}

func newLatest[T any]() *latest[T] { return &latest[T]{signal: make(chan struct{}, 1)} }

// put replaces any waiting job. It never blocks.
func (m *latest[T]) put(j T) {
	m.mu.Lock()
	m.job = &j
	m.mu.Unlock()
	m.wake()
}

// putIfEmpty puts j back unless a newer job is waiting (a retry must not
// replace what superseded it).
func (m *latest[T]) putIfEmpty(j T) {
	m.mu.Lock()
	if m.job == nil {
		m.job = &j
	}
	m.mu.Unlock()
	m.wake()
}

func (m *latest[T]) wake() {
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

// take waits for a job; ok is false when ctx ended.
func (m *latest[T]) take(ctx context.Context) (T, bool) {
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
			var zero T
			return zero, false
		case <-m.signal:
		}
	}
}
