package export

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/false-systems/rauta/internal/observe/detect"
	"github.com/false-systems/rauta/internal/tracecontext"
)

// ScopeName is the instrumentation scope of the observer's spans.
const ScopeName = "rauta-observer"

// TraceOptions configure span export (docs/observer.md, "Traces").
type TraceOptions struct {
	// Endpoint is the OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT);
	// spans are POSTed to <Endpoint>/v1/traces as protobuf.
	Endpoint string
	// SampleRatio is the share of exchanges without a valid traceparent
	// that start a trace of their own (0 to 1; 0: never). Exchanges with
	// one follow its sampled flag.
	SampleRatio float64
	// QueueSize bounds the spans waiting for export; past it spans are
	// dropped and counted, never waited for. 0 means 2048.
	QueueSize int
	// BatchSize is the most spans per export request; 0 means 512.
	BatchSize int
	// FlushInterval is the longest a span waits for its batch; 0 means 1s.
	FlushInterval time.Duration
	// NodeName is added to every resource (k8s.node.name) when set.
	NodeName string
	// Timeout bounds one export request; 0 means 10s.
	Timeout time.Duration
}

// SpanStats count what became of the spans.
type SpanStats struct {
	Exported uint64 // accepted by the endpoint
	Failed   uint64 // lost to a failed export (not retried)
	Dropped  uint64 // dropped because the queue was full
}

// Tracer samples exchanges and exports their spans: Record never blocks
// the pipeline goroutine (a bounded queue, drops counted), and one
// goroutine batches and POSTs them.
type Tracer struct {
	opts   TraceOptions
	url    string
	ratio  tracecontext.Ratio
	queue  chan span
	client *http.Client

	exported, failed, dropped atomic.Uint64

	// bufs are the encoding buffers of the export goroutine.
	bufs struct {
		rs, res, ss, sp []byte
		reqSize         int
	}

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// NewTracer validates the endpoint and starts the export goroutine; Close
// stops it.
func NewTracer(o TraceOptions) (*Tracer, error) {
	base, err := url.Parse(o.Endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("otlp endpoint %q: want an http(s) URL such as http://collector:4318", o.Endpoint)
	}
	if o.SampleRatio < 0 || o.SampleRatio > 1 {
		return nil, fmt.Errorf("trace sample ratio %v: want 0 to 1", o.SampleRatio)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 2048
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 512
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	t := &Tracer{
		opts:   o,
		url:    strings.TrimSuffix(o.Endpoint, "/") + "/v1/traces",
		ratio:  tracecontext.NewRatio(o.SampleRatio),
		queue:  make(chan span, o.QueueSize),
		client: &http.Client{Timeout: o.Timeout},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go t.run()
	return t, nil
}

// Record makes the span of an exchange when its trace is sampled:
// parent-based (a valid traceparent's sampled flag decides), else by the
// sample ratio, which is 0 by default so that the observer starts no trace
// of its own. service names the resource (the service before the label
// limit: spans hold no per-service state). Only the pipeline goroutine
// calls it; it does not allocate.
func (t *Tracer) Record(o *detect.Observation, service string) {
	var tid [16]byte
	var parent [8]byte
	switch {
	case o.Trace.Valid():
		if !o.Trace.Sampled() {
			return
		}
		tid, parent = o.Trace.TraceID, o.Trace.SpanID
	case t.ratio.Off() || o.Unparsed:
		return
	default:
		tid = tracecontext.NewTraceID()
		if !t.ratio.Sampled(tid) {
			return
		}
	}
	select {
	case t.queue <- spanOf(o, tid, parent, service):
	default:
		t.dropped.Add(1)
	}
}

// Stats is safe to call from any goroutine.
func (t *Tracer) Stats() SpanStats {
	return SpanStats{Exported: t.exported.Load(), Failed: t.failed.Load(), Dropped: t.dropped.Load()}
}

// Close exports what is queued, waiting until ctx ends at most, and stops.
func (t *Tracer) Close(ctx context.Context) error {
	t.stopOnce.Do(func() { close(t.stop) })
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("span export: %w (%d queued spans not sent)", ctx.Err(), len(t.queue))
	}
}

func (t *Tracer) run() {
	defer close(t.done)
	batch := make([]span, 0, t.opts.BatchSize)
	tick := time.NewTicker(t.opts.FlushInterval)
	defer tick.Stop()
	flush := func() {
		t.export(batch)
		clear(batch) // let the strings go
		batch = batch[:0]
	}
	for {
		select {
		case s := <-t.queue:
			batch = append(batch, s)
			if len(batch) < t.opts.BatchSize {
				continue
			}
		case <-tick.C:
		case <-t.stop:
			for {
				select {
				case s := <-t.queue:
					if batch = append(batch, s); len(batch) == t.opts.BatchSize {
						flush()
					}
					continue
				default:
				}
				break
			}
			flush()
			return
		}
		flush()
	}
}

// export POSTs one batch. A failed batch is counted and dropped: retrying
// would only grow the backlog behind it.
func (t *Tracer) export(batch []span) {
	if len(batch) == 0 {
		return
	}
	if err := t.post(t.request(batch)); err != nil {
		t.failed.Add(uint64(len(batch)))
		return
	}
	t.exported.Add(uint64(len(batch)))
}

func (t *Tracer) post(body []byte) error {
	return tracecontext.PostOTLP(t.client, t.url, t.opts.Timeout, body)
}

// request encodes the ExportTraceServiceRequest of a batch
// (resource_spans = 1): one ResourceSpans (resource = 1, scope_spans = 2)
// per observed service (service.name, k8s.namespace.name, k8s.pod.name),
// in the order first seen, holding one ScopeSpans (scope = 1, spans = 2).
// The buffers are the exporter goroutine's, reused from batch to batch.
func (t *Tracer) request(batch []span) []byte {
	var order []resourceKey
	groups := make(map[resourceKey][]int)
	for i := range batch {
		k := batch[i].res
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	// A fresh request buffer per batch: net/http may still read a
	// request body after Do returns (an early answer), so it is not
	// reused; the others are.
	req := make([]byte, 0, t.bufs.reqSize)
	for _, k := range order {
		ss := protowire.AppendTag(t.bufs.ss[:0], 1, protowire.BytesType) // scope
		ss = protowire.AppendVarint(ss, uint64(protowire.SizeTag(1)+protowire.SizeBytes(len(ScopeName))))
		ss = protowire.AppendTag(ss, 1, protowire.BytesType) // name
		ss = protowire.AppendString(ss, ScopeName)
		for _, i := range groups[k] {
			sp := batch[i].appendOTLP(t.bufs.sp[:0])
			ss = protowire.AppendTag(ss, 2, protowire.BytesType)
			ss = protowire.AppendBytes(ss, sp)
			t.bufs.sp = sp
		}
		res := t.resource(t.bufs.res[:0], k)
		rs := protowire.AppendTag(t.bufs.rs[:0], 1, protowire.BytesType)
		rs = protowire.AppendBytes(rs, res)
		rs = protowire.AppendTag(rs, 2, protowire.BytesType)
		rs = protowire.AppendBytes(rs, ss)
		req = protowire.AppendTag(req, 1, protowire.BytesType)
		req = protowire.AppendBytes(req, rs)
		t.bufs.ss, t.bufs.res, t.bufs.rs = ss, res, rs
	}
	t.bufs.reqSize = len(req)
	return req
}

// resource appends a Resource message's fields (attributes = 1).
func (t *Tracer) resource(b []byte, k resourceKey) []byte {
	b = appendStrAttr(b, 1, "service.name", k.service)
	b = appendStrAttr(b, 1, "k8s.namespace.name", k.namespace)
	b = appendStrAttr(b, 1, "k8s.pod.name", k.pod)
	return appendStrAttr(b, 1, "k8s.node.name", t.opts.NodeName)
}
