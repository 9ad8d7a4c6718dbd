package proxy

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// accessLog writes one JSON object per line. Lines are written whole under
// a mutex, so concurrent requests never interleave.
type accessLog struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

type accessEntry struct {
	Time       string  `json:"time"`
	Gateway    string  `json:"gateway"`
	Route      string  `json:"route"`
	Method     string  `json:"method"`
	Host       string  `json:"host"`
	Path       string  `json:"path"`
	Status     int     `json:"status"`
	Bytes      int64   `json:"bytes"`
	DurationMS float64 `json:"duration_ms"`
	Upstream   string  `json:"upstream"`
	Client     string  `json:"client"`
}

func (l *accessLog) write(start time.Time, e *accessEntry) {
	e.Time = start.UTC().Format(time.RFC3339Nano)
	line, err := json.Marshal(e)
	if err != nil {
		return // every field is a plain string or number: cannot fail
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(append(l.buf[:0], line...), '\n')
	_, _ = l.w.Write(l.buf) // a failing log sink must not fail requests
}
