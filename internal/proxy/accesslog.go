package proxy

import (
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// accessLog writes one JSON object per request and line. A request encodes
// its line into a pooled buffer (sync.Pool: per-P, no lock) and hands it to
// one writer goroutine over a bounded queue; the writer batches the lines
// it finds queued into one write. Requests never wait for the sink: when
// the queue is full the line is dropped and counted
// (rauta_access_log_dropped_total). The old shape, a mutex held across
// json.Marshal and the write, made every request queue behind a slow
// stdout.
type accessLog struct {
	w       io.Writer
	queue   chan *[]byte
	bufs    sync.Pool
	dropped prometheus.Counter
	// flushes asks the writer to write everything queued before it and
	// then close the channel (flush, close).
	flushes chan chan struct{}
	done    chan struct{}
	stop    sync.Once
	quit    chan struct{}
}

// accessLogQueue bounds the lines waiting for the writer: at 1 KiB a line,
// 4 MiB at most.
const accessLogQueue = 4096

// maxAccessBatch is the most bytes the writer gathers into one write.
const maxAccessBatch = 64 << 10

func newAccessLog(w io.Writer, dropped prometheus.Counter) *accessLog {
	l := &accessLog{
		w:       w,
		queue:   make(chan *[]byte, accessLogQueue),
		dropped: dropped,
		flushes: make(chan chan struct{}),
		done:    make(chan struct{}),
		quit:    make(chan struct{}),
	}
	l.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	go l.run()
	return l
}

type accessEntry struct {
	Gateway        string
	Route          string
	Method         string
	Host           string
	Path           string
	Protocol       string // "HTTP/1.1", "HTTP/2"
	UserAgent      string
	RequestID      string
	TraceID        [16]byte
	HasTrace       bool
	Status         int
	UpstreamStatus int // the backend's status, 0 when none came
	Error          string
	Bytes          int64
	DurationMS     float64
	Upstream       string
	Client         string
}

func (l *accessLog) write(start time.Time, e *accessEntry) {
	bp := l.bufs.Get().(*[]byte)
	*bp = appendAccessLine((*bp)[:0], start, e)
	select {
	case l.queue <- bp:
	default:
		l.dropped.Inc()
		l.bufs.Put(bp)
	}
}

// appendAccessLine encodes e as one JSON line without reflection; the keys
// are those of docs/telemetry.md, "Access log".
func appendAccessLine(b []byte, start time.Time, e *accessEntry) []byte {
	b = append(b, `{"time":"`...)
	b = start.UTC().AppendFormat(b, time.RFC3339Nano)
	b = appendJSONField(b, `","gateway":`, e.Gateway)
	b = appendJSONField(b, `,"route":`, e.Route)
	b = appendJSONField(b, `,"method":`, e.Method)
	b = appendJSONField(b, `,"host":`, e.Host)
	b = appendJSONField(b, `,"path":`, e.Path)
	b = appendJSONField(b, `,"protocol":`, e.Protocol)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, e.DurationMS, 'f', -1, 64)
	b = appendJSONField(b, `,"upstream":`, e.Upstream)
	b = append(b, `,"upstream_status":`...)
	b = strconv.AppendInt(b, int64(e.UpstreamStatus), 10)
	b = appendJSONField(b, `,"error":`, e.Error)
	b = appendJSONField(b, `,"client":`, e.Client)
	b = appendJSONField(b, `,"user_agent":`, e.UserAgent)
	b = appendJSONField(b, `,"request_id":`, e.RequestID)
	b = append(b, `,"trace_id":"`...)
	if e.HasTrace {
		b = appendHex(b, e.TraceID[:])
	}
	return append(b, "\"}\n"...)
}

func appendJSONField(b []byte, key, v string) []byte {
	return appendJSONString(append(b, key...), v)
}

// appendJSONString appends v quoted as a JSON string, as encoding/json
// would: quotes, backslashes and control bytes escaped, <, > and & as
// \u00XX (logs get pasted into HTML tools), invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, v string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, v[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, v[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, v[start:]...)
	return append(b, '"')
}

// run writes queued lines, gathering what is queued into one write.
func (l *accessLog) run() {
	defer close(l.done)
	batch := make([]byte, 0, maxAccessBatch)
	take := func(bp *[]byte) {
		batch = append(batch, *bp...)
		if cap(*bp) <= 4<<10 {
			l.bufs.Put(bp)
		}
	}
	// drain takes what is queued now, writing whenever the batch is full.
	drain := func() {
		for {
			select {
			case bp := <-l.queue:
				take(bp)
				if len(batch) >= maxAccessBatch {
					l.flushBatch(&batch)
				}
				continue
			default:
			}
			l.flushBatch(&batch)
			return
		}
	}
	for {
		select {
		case bp := <-l.queue:
			take(bp)
			drain()
		case ch := <-l.flushes:
			drain()
			close(ch)
		case <-l.quit:
			drain()
			return
		}
	}
}

func (l *accessLog) flushBatch(batch *[]byte) {
	if len(*batch) == 0 {
		return
	}
	_, _ = l.w.Write(*batch) // a failing log sink must not fail requests
	*batch = (*batch)[:0]
}

// flush returns once every line written before the call is written to the
// sink (tests, shutdown).
func (l *accessLog) flush() {
	ch := make(chan struct{})
	select {
	case l.flushes <- ch:
		<-ch
	case <-l.done:
	}
}

// close writes what is queued and stops the writer, waiting at most
// timeout: a sink that no longer takes writes (a stalled stdout pipe) must
// not hold up shutdown.
func (l *accessLog) close(timeout time.Duration) {
	l.stop.Do(func() { close(l.quit) })
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-l.done:
	case <-t.C:
	}
}
