package observe

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/false-systems/rauta/internal/observe/capture"
	"github.com/false-systems/rauta/internal/observe/detect"
	"github.com/false-systems/rauta/internal/observe/enrich"
	"github.com/false-systems/rauta/internal/observe/export"
	"github.com/false-systems/rauta/internal/observe/h2parse"
	"github.com/false-systems/rauta/internal/observe/httpparse"
	"github.com/false-systems/rauta/internal/observe/join"
	"github.com/false-systems/rauta/internal/observe/pair"
	"github.com/false-systems/rauta/internal/observe/route"
)

// pipeline turns kernel events into exchanges, observations and events.
// One goroutine drives it (handle, tick); exporters read counters() from
// others.
type pipeline struct {
	ctx      context.Context
	pairer   *pair.Pairer
	h2       *h2parse.Tracker // h2c connections (KindH2 segments)
	h2seg    h2parse.Segment
	resolver enrich.Resolver
	// routes, when the resolver knows services' routes (HTTPRoute path
	// prefixes), labels matching targets with them ahead of templates.
	routes  enrich.RouteSource
	limiter *route.Limiter
	slow    *detect.Slow
	spike   *detect.Spike
	probe   *detect.Probe
	clock   wallClock

	prom          *export.Prom   // may be nil
	otlp          *export.OTLP   // may be nil
	traces        *export.Tracer // may be nil
	json          *export.JSON   // may be nil
	jsonEvents    bool
	jsonExchanges bool
	// own: scrapes of our own /metrics are not recorded (nil: none).
	own *ownAddrs
	// ifaces: the attacher's counters and deleted interfaces (nil in
	// tests); gone is reused to take the deletions.
	ifaces *ifaceStats
	gone   []uint32
	// tls feeds plaintext from TLS library probes (nil: -tls-uprobes off).
	tls *tlsSource
	// pods, when the resolver knows pods by UID: the pods of TLS
	// exchanges' processes (tlspods.go).
	pods enrich.PodIndex
	// join joins gateways' timing records with exchanges (nil: off).
	join *join.Joiner

	// Caches bounded by cacheLimit: the service label of a server address
	// and the template of a request-target are recomputed otherwise for
	// every exchange.
	serverLabels map[netip.AddrPort]string
	templates    map[string]string
	// strings shares the Host, User-Agent and target strings of requests
	// so that steady traffic parses without allocating.
	strings *httpparse.Interner

	req  httpparse.Request
	resp httpparse.Response
	obs  detect.Observation
	// spanService is obs's service before the label limit: a span's
	// resource names the real service, spans keep no per-service state.
	spanService string

	// Owned by the driving goroutine, published into box by publish().
	local export.Counters
	box   *counterBox
}

// counterBox hands counter snapshots from the pipeline goroutine to
// exporters. It exists before the pipeline so that a scrape arriving
// during start-up reads zeros instead of racing the construction.
type counterBox struct {
	mu   sync.Mutex
	snap export.Counters
	// ifaces, when set, are read live: an attachment shows in the next
	// scrape, not a pipeline tick later.
	ifaces *ifaceStats
	// spans, when set, are read live too (atomics of the span exporter).
	spans *export.Tracer
}

func (b *counterBox) store(c export.Counters) {
	b.mu.Lock()
	b.snap = c
	b.mu.Unlock()
}

// load is safe to call from any goroutine.
func (b *counterBox) load() export.Counters {
	b.mu.Lock()
	c := b.snap
	b.mu.Unlock()
	if b.ifaces != nil {
		c.Interfaces = b.ifaces.snapshot()
	}
	if b.spans != nil {
		c.Spans = b.spans.Stats()
	}
	return c
}

type pipelineOptions struct {
	cfg      Config
	box      *counterBox // nil: the pipeline makes its own
	resolver enrich.Resolver
	prom     *export.Prom
	otlp     *export.OTLP
	traces   *export.Tracer
	json     *export.JSON
	own      *ownAddrs
	// ifaces are Run's attacher's counters and deleted interfaces; nil
	// in tests.
	ifaces *ifaceStats
	tls    *tlsSource   // nil: -tls-uprobes off
	join   *join.Joiner // nil: no -gateway-admin
}

func newPipeline(ctx context.Context, o pipelineOptions) *pipeline {
	p := &pipeline{
		ctx:           ctx,
		resolver:      o.resolver,
		limiter:       route.NewLimiter(o.cfg.MaxServices, o.cfg.MaxRoutesPerService, uint64(o.cfg.LabelIdle)),
		slow:          detect.NewSlow(o.cfg.Slow),
		spike:         detect.NewSpike(withMaxServices(o.cfg.Spike, o.cfg.MaxServices+1)),
		probe:         detect.NewProbe(o.cfg.Probe),
		clock:         newWallClock(),
		prom:          o.prom,
		otlp:          o.otlp,
		traces:        o.traces,
		json:          o.json,
		jsonEvents:    o.cfg.JSONEvents,
		jsonExchanges: o.cfg.JSONExchanges,
		own:           o.own,
		ifaces:        o.ifaces,
		tls:           o.tls,
		join:          o.join,
	}
	if p.resolver == nil {
		p.resolver = enrich.None{}
	}
	p.routes, _ = p.resolver.(enrich.RouteSource)
	p.pods, _ = p.resolver.(enrich.PodIndex)
	if p.prom != nil {
		p.limiter.OnEvict = p.prom.Forget
	}
	p.box = o.box
	if p.box == nil {
		p.box = &counterBox{}
	}
	p.serverLabels = make(map[netip.AddrPort]string)
	p.templates = make(map[string]string)
	p.strings = httpparse.NewInterner(cacheLimit)
	p.pairer = pair.New(pair.Config{
		MaxConns: o.cfg.MaxConns, MaxPending: o.cfg.MaxPending, RequestTimeout: o.cfg.RequestTimeout,
		Overdue: p.onOverdue, OverdueAfter: overdueAfter(o.cfg),
	}, p.onExchange)
	p.h2 = newH2(o.cfg, p)
	return p
}

// overdueAfter is the youngest age at which a pending request can matter
// to a processor: the slow floor (no slow threshold is below it) or the
// probe timeout, whichever is shorter.
func overdueAfter(cfg Config) time.Duration {
	d := 50 * time.Millisecond
	if cfg.Slow.Floor > 0 {
		d = cfg.Slow.Floor
	}
	if cfg.Probe.Timeout > 0 {
		d = min(d, cfg.Probe.Timeout)
	}
	return d
}

func withMaxServices(c detect.SpikeConfig, n int) detect.SpikeConfig {
	c.MaxServices = n
	return c
}

var httpPrefix = []byte("HTTP/")

// maxPerSegment bounds how many pipelined messages are read from one
// captured segment (the kernel captures up to capture.CaptureMax bytes:
// twenty 200-byte requests).
const maxPerSegment = 64

// handle consumes one kernel event. A segment can carry several pipelined
// messages; the ones after the first are read when the capture holds them
// and the previous message's length is known from its head.
func (p *pipeline) handle(ev *capture.Event) {
	if ev.Kind == capture.KindH2 {
		p.h2Segment(ev)
		return
	}
	if ev.Kind == capture.KindReset {
		p.pairer.Reset(ev.TimestampNS, ev.Src, ev.Dst)
		p.h2.Reset(ev.TimestampNS, ev.Src, ev.Dst)
		if isRefusal(ev) {
			p.refused(ev)
		}
		return
	}
	data, off := ev.Data, 0
	for i := 0; i < maxPerSegment && len(data) > off; i++ {
		msg := data[off:]
		isResp := bytes.HasPrefix(msg, httpPrefix)
		if i > 0 && !isResp && !startsWithMethod(msg) {
			return // body bytes, not another message
		}
		// Each message's own sequence number: pipelined messages stay
		// distinct for duplicate detection, and responses pair by it.
		seg := pair.Seg{Seq: ev.Seq + uint32(off), Ack: ev.Ack, HasAck: ev.TCPFlags&capture.FlagACK != 0, Ifindex: ev.Ifindex, Stream: ev.Stream, PID: ev.PID}
		var n int
		if isResp {
			n = p.response(ev, msg, seg)
		} else {
			n = p.request(ev, msg, seg)
		}
		if n <= 0 {
			return
		}
		off += n
	}
}

// request parses and records one request; it returns the bytes it spans
// (head and body) when known, else 0.
func (p *pipeline) request(ev *capture.Event, msg []byte, seg pair.Seg) int {
	if err := p.strings.ParseRequest(msg, &p.req); err != nil {
		p.countParse(err, &p.local.RequestMalformed, &p.local.RequestTruncated)
		p.pairer.RequestSeg(ev.TimestampNS, ev.Src, ev.Dst, seg, nil)
		return 0
	}
	p.pairer.RequestSeg(ev.TimestampNS, ev.Src, ev.Dst, seg, &p.req)
	body, ok := p.req.BodyLen()
	if !ok || body > int64(len(msg)) {
		return 0
	}
	return p.req.HeadLen + int(body)
}

func (p *pipeline) response(ev *capture.Event, msg []byte, seg pair.Seg) int {
	if err := httpparse.ParseResponse(msg, &p.resp); err != nil {
		p.countParse(err, &p.local.ResponseMalformed, &p.local.ResponseTruncated)
		p.pairer.ResponseSeg(ev.TimestampNS, ev.Src, ev.Dst, seg, nil)
		return 0
	}
	// The span comes from the pairer: a response to HEAD has no body
	// whatever its Content-Length says, and only the pairer knows the
	// request it answers.
	n := p.pairer.ResponseSeg(ev.TimestampNS, ev.Src, ev.Dst, seg, &p.resp)
	if n > len(msg) {
		return 0
	}
	return n
}

// isRefusal: a RST answering a SYN. A SYN carries no ACK, so the reset
// that refuses it has sequence number 0 and ACK set (RFC 9293 3.10.7.1);
// a reset inside a connection carries the sender's sequence number, which
// is 0 only by a 1-in-2^32 chance.
func isRefusal(ev *capture.Event) bool {
	return ev.Seq == 0 && ev.TCPFlags&capture.FlagACK != 0
}

// refused hands a refused connection to the probe processor: the server
// (the RST's sender) refused the client.
func (p *pipeline) refused(ev *capture.Event) {
	ex := pair.Exchange{Client: ev.Dst, Server: ev.Src, StartNS: ev.TimestampNS, EndNS: ev.TimestampNS, Outcome: pair.Reset, ReqContentLength: -1, RespContentLength: -1}
	o := p.observe(&ex)
	if o == nil {
		return
	}
	p.probe.Refused(o, p.onEvent)
}

var methods = [][]byte{[]byte("GET "), []byte("POST "), []byte("PUT "), []byte("HEAD "), []byte("DELETE "), []byte("PATCH "), []byte("OPTIONS "), []byte("CONNECT "), []byte("TRACE ")}

// startsWithMethod mirrors the kernel's request check.
func startsWithMethod(b []byte) bool {
	for _, m := range methods {
		if bytes.HasPrefix(b, m) {
			return true
		}
	}
	return false
}

func (p *pipeline) countParse(err error, malformed, truncated *uint64) {
	if errors.Is(err, httpparse.ErrTruncated) {
		*truncated++
		return
	}
	*malformed++
}

// onExchange enriches a paired exchange and runs outputs and processors.
func (p *pipeline) onExchange(ex *pair.Exchange) {
	if p.join != nil && ex.Outcome == pair.Complete {
		p.join.AddLeg(join.Leg{Client: ex.Client, Server: ex.Server, Stream: ex.H2Stream, Start: ex.StartNS, End: ex.EndNS, IDHash: ex.RequestIDHash, Status: ex.Status})
	}
	o := p.observe(ex)
	if o == nil {
		return
	}
	if ex.TargetTruncated {
		p.local.TargetsTruncated++
	}
	if p.prom != nil {
		p.prom.Record(o)
	}
	if p.otlp != nil {
		p.otlp.Record(p.ctx, o)
	}
	if p.traces != nil {
		p.traces.Record(o, p.spanService)
	}
	if p.json != nil && p.jsonExchanges {
		_ = p.json.Exchange(o) // stdout gone: nothing better to do with it
	}
	p.slow.Observe(o, p.onEvent)
	p.spike.Observe(o, p.onEvent)
	p.probe.Observe(o, p.onEvent)
}

// onOverdue runs the processors that judge requests still unanswered
// (the pairer's sweep); nothing is recorded in the outputs until the
// exchange ends.
func (p *pipeline) onOverdue(ex *pair.Exchange) {
	o := p.observe(ex)
	if o == nil {
		return
	}
	p.slow.Observe(o, p.onEvent)
	p.probe.Observe(o, p.onEvent)
}

// observe enriches an exchange into p.obs; nil for one that is not
// recorded (scrapes of the observer's own metrics).
func (p *pipeline) observe(ex *pair.Exchange) *detect.Observation {
	if p.own.is(ex.Server) && isMetricsPath(ex.Target) {
		return nil
	}
	info, _ := p.resolver.Lookup(ex.Server.Addr())
	service := info.Service
	if service == "" {
		service = info.Pod
	}
	if service == "" {
		service = p.serverLabel(ex.Server)
	}
	tmpl := route.Other
	known := false
	if !ex.Unparsed {
		if p.routes != nil {
			tmpl, known = route.Match(p.routes.Routes(service), ex.Target)
		}
		if !known {
			tmpl = p.template(ex.Target)
		}
	}
	p.spanService = service
	if known {
		service, tmpl = p.limiter.LimitKnown(service, tmpl, ex.EndNS)
	} else {
		service, tmpl = p.limiter.Limit(service, tmpl, ex.EndNS)
	}
	p.obs = detect.Observation{
		Exchange:  ex,
		Time:      p.clock.at(ex.EndNS),
		Service:   service,
		Namespace: info.Namespace,
		Pod:       info.Pod,
		Route:     tmpl,
		Process:   p.process(ex.PID),
	}
	if ex.PID != 0 {
		pp := p.processPod(ex.PID)
		p.obs.ProcessPod, p.obs.ProcessNamespace = pp.Pod, pp.Namespace
	}
	return &p.obs
}

func (p *pipeline) onEvent(e *detect.Event) {
	if p.prom != nil {
		p.prom.Detection(e)
	}
	if p.otlp != nil {
		p.otlp.Detection(p.ctx, e)
	}
	if p.json != nil && p.jsonEvents {
		_ = p.json.Event(e)
	}
}

func isMetricsPath(target string) bool {
	return target == "/metrics" || strings.HasPrefix(target, "/metrics?")
}

const cacheLimit = 4096

func (p *pipeline) serverLabel(ap netip.AddrPort) string {
	if s, ok := p.serverLabels[ap]; ok {
		return s
	}
	if len(p.serverLabels) >= cacheLimit {
		clear(p.serverLabels)
	}
	s := ap.String()
	p.serverLabels[ap] = s
	return s
}

func (p *pipeline) template(target string) string {
	if s, ok := p.templates[target]; ok {
		return s
	}
	if len(p.templates) >= cacheLimit {
		clear(p.templates)
	}
	s := route.Template(target)
	p.templates[target] = s
	return s
}

// tick runs periodic work: request timeouts and counter publication.
func (p *pipeline) tick(now uint64, kernel capture.KernelStats, decodeErrors uint64) {
	// TLS records up to now first: Expire must not judge a request whose
	// response waits in the TLS ring.
	p.drainTLS()
	p.tlsStats()
	p.pairer.Expire(now)
	p.h2.Expire(now)
	if p.join != nil {
		p.join.Tick(now)
	}
	if p.ifaces != nil {
		// Connections of deleted interfaces (pods gone) are released
		// here: only this goroutine touches the pairer.
		p.gone = p.ifaces.gone.take(p.gone[:0])
		p.pairer.ForgetInterfaces(p.gone)
	}
	p.own.refresh(time.Now())
	p.local.Kernel = kernel
	p.local.DecodeErrors = decodeErrors
	p.publish()
}

func (p *pipeline) publish() {
	p.local.Pair = p.pairer.Stats()
	p.local.H2 = p.h2.Stats()
	p.local.LabelOverflows = p.limiter.Overflows()
	p.local.LabelEvictions = p.limiter.Evictions()
	if p.json != nil {
		p.local.JSONDropped = p.json.Dropped()
	}
	p.box.store(p.local)
}

// counters is safe to call from any goroutine.
func (p *pipeline) counters() export.Counters { return p.box.load() }

// oneWay reports traffic seen in one direction only: requests and no
// response at all, or responses and no request. In XDP mode that means
// the observed interfaces do not carry both directions into the host.
func (p *pipeline) oneWay() bool {
	s := p.pairer.Stats()
	const enough = 20
	return (s.Requests >= enough && s.Responses == 0) || (s.Requests == 0 && s.UnmatchedResponses >= enough)
}
