package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/false-systems/rauta/internal/observe/detect"
	"github.com/false-systems/rauta/internal/observe/pair"
)

// JSON writes events, and optionally every exchange, as one JSON object
// per line. Made by NewAsyncJSON it never blocks its caller: lines go
// through a bounded queue to a writer goroutine, and when the queue is
// full (a slow stdout reader, a stalled log pipe) they are dropped and
// counted instead of stalling the pipeline, whose stall would fill the
// kernel's ring buffer and drop events for every output.
type JSON struct {
	w    io.Writer
	buf  bytes.Buffer
	enc  *json.Encoder
	q    chan []byte // nil: synchronous
	done chan struct{}

	dropped atomic.Uint64
	werr    atomic.Uint64
}

// NewJSON writes synchronously to w (tests, tools).
func NewJSON(w io.Writer) *JSON {
	j := &JSON{w: w}
	j.enc = json.NewEncoder(&j.buf)
	return j
}

// NewAsyncJSON writes to w (typically os.Stdout) from its own goroutine,
// queueing at most queue lines; Close flushes it.
func NewAsyncJSON(w io.Writer, queue int) *JSON {
	j := NewJSON(w)
	j.q = make(chan []byte, queue)
	j.done = make(chan struct{})
	go j.writer()
	return j
}

func (j *JSON) writer() {
	defer close(j.done)
	for line := range j.q {
		if _, err := j.w.Write(line); err != nil {
			j.werr.Add(1)
		}
	}
}

// Dropped counts lines dropped because the queue was full.
func (j *JSON) Dropped() uint64 { return j.dropped.Load() }

// Close stops the writer after the queued lines are written, or when ctx
// ends (a writer blocked for good is left behind).
func (j *JSON) Close(ctx context.Context) error {
	if j.q == nil {
		return nil
	}
	close(j.q)
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("json output not flushed: %w", ctx.Err())
	}
}

// emit encodes v as one line and writes or queues it.
func (j *JSON) emit(v any) error {
	j.buf.Reset()
	if err := j.enc.Encode(v); err != nil {
		return err
	}
	if j.q == nil {
		_, err := j.w.Write(j.buf.Bytes())
		return err
	}
	select {
	case j.q <- bytes.Clone(j.buf.Bytes()):
	default:
		j.dropped.Add(1)
	}
	return nil
}

// Event writes a processor event ("type":"event").
func (j *JSON) Event(e *detect.Event) error {
	if err := j.emit(struct {
		Type string `json:"type"`
		*detect.Event
	}{"event", e}); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return nil
}

// ExchangeRecord is the JSON form of one observed exchange.
type ExchangeRecord struct {
	Type      string    `json:"type"` // "exchange"
	Time      time.Time `json:"time"`
	Service   string    `json:"service"`
	Namespace string    `json:"namespace,omitempty"`
	Pod       string    `json:"pod,omitempty"`
	Client    string    `json:"client"`
	Server    string    `json:"server"`
	Method    string    `json:"method"`
	Target    string    `json:"target"`
	// TargetTruncated: Target is a prefix (cut by the end of the capture
	// window or at 256 bytes).
	TargetTruncated bool   `json:"target_truncated,omitempty"`
	Route           string `json:"route"`
	Host            string `json:"host,omitempty"`
	UserAgent       string `json:"user_agent,omitempty"`
	Status          int    `json:"status"`
	Outcome         string `json:"outcome"`
	LatencyNS       int64  `json:"latency_ns"`
	StartKernelNS   uint64 `json:"start_kernel_ns"`
	// Scheme is "https" for plaintext from inside TLS (library probes),
	// with the process that read and wrote it; "http" from packets.
	Scheme  string `json:"scheme"`
	PID     uint32 `json:"pid,omitempty"`
	Process string `json:"process,omitempty"`
	// ProcessPod and ProcessNamespace: the pod of that process, by its
	// cgroup (TLS only, when the enrichment knows the pod).
	ProcessPod       string `json:"process_pod,omitempty"`
	ProcessNamespace string `json:"process_namespace,omitempty"`
	// Version is the HTTP version ("1.0", "1.1", "2"); GRPCStatus the
	// gRPC status of a complete gRPC exchange (absent otherwise).
	Version    string `json:"version,omitempty"`
	GRPCStatus *int   `json:"grpc_status,omitempty"`
}

// Exchange writes one observed exchange ("type":"exchange").
func (j *JSON) Exchange(o *detect.Observation) error {
	rec := ExchangeRecord{
		Type: "exchange", Time: o.Time,
		Service: o.Service, Namespace: o.Namespace, Pod: o.Pod,
		Client: o.Client.String(), Server: o.Server.String(),
		Method: o.Method, Target: o.Target, TargetTruncated: o.TargetTruncated, Route: o.Route,
		Host: o.Host, UserAgent: o.UserAgent,
		Status: o.Status, Outcome: o.Outcome.String(),
		LatencyNS: int64(o.Latency()), StartKernelNS: o.StartNS,
		Scheme: schemeOf(o), PID: o.PID, Process: o.Process,
		ProcessPod: o.ProcessPod, ProcessNamespace: o.ProcessNamespace,
		Version: o.Version,
	}
	if o.GRPC && o.Outcome == pair.Complete {
		code := int(o.GRPCStatus)
		rec.GRPCStatus = &code
	}
	if err := j.emit(&rec); err != nil {
		return fmt.Errorf("write exchange: %w", err)
	}
	return nil
}
