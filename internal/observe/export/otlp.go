package export

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/false-systems/rauta/internal/observe/detect"
)

// OTLPOptions configure OTLP/HTTP export.
type OTLPOptions struct {
	// Endpoint is the base URL (OTEL_EXPORTER_OTLP_ENDPOINT), e.g.
	// http://collector:4318; /v1/metrics and /v1/logs are appended.
	Endpoint string
	// Interval between metric exports (default 10s).
	Interval time.Duration
	// NodeName is added to the resource (k8s.node.name) when set.
	NodeName string
}

// OTLP exports metrics (the same instruments as Prometheus, with dotted
// semantic-convention names) and processor events as log records; spans
// go through Tracer (traces.go).
type OTLP struct {
	mp         *sdkmetric.MeterProvider
	lp         *sdklog.LoggerProvider
	duration   metric.Float64Histogram
	detections metric.Int64Counter
	logger     otellog.Logger
}

// NewOTLP starts the exporters. counters feeds the observable counters.
func NewOTLP(opts OTLPOptions, counters func() Counters) (*OTLP, error) {
	base, err := url.Parse(opts.Endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("otlp endpoint %q: want an http(s) URL such as http://collector:4318", opts.Endpoint)
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	root := strings.TrimSuffix(opts.Endpoint, "/")

	attrs := []attribute.KeyValue{attribute.String("service.name", "rauta-observer")}
	if opts.NodeName != "" {
		attrs = append(attrs, attribute.String("k8s.node.name", opts.NodeName))
	}
	res := resource.NewSchemaless(attrs...)

	mexp, err := otlpmetrichttp.New(context.Background(), otlpmetrichttp.WithEndpointURL(root+"/v1/metrics"))
	if err != nil {
		return nil, fmt.Errorf("otlp metric exporter: %w", err)
	}
	lexp, err := otlploghttp.New(context.Background(), otlploghttp.WithEndpointURL(root+"/v1/logs"))
	if err != nil {
		return nil, fmt.Errorf("otlp log exporter: %w", err)
	}
	o := &OTLP{
		mp: sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(opts.Interval)))),
		lp: sdklog.NewLoggerProvider(sdklog.WithResource(res),
			sdklog.WithProcessor(sdklog.NewBatchProcessor(lexp, sdklog.WithExportInterval(opts.Interval)))),
	}
	meter := o.mp.Meter("github.com/false-systems/rauta/observe")
	o.logger = o.lp.Logger("github.com/false-systems/rauta/observe")
	if o.duration, err = meter.Float64Histogram("http.server.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP server requests observed by eBPF."),
		metric.WithExplicitBucketBoundaries(DurationBuckets...)); err != nil {
		return nil, fmt.Errorf("otlp instrument: %w", err)
	}
	if o.detections, err = meter.Int64Counter("rauta.observer.detections", metric.WithDescription("Events emitted by the processors.")); err != nil {
		return nil, fmt.Errorf("otlp instrument: %w", err)
	}
	if err := registerObservables(meter, counters); err != nil {
		return nil, err
	}
	return o, nil
}

func registerObservables(meter metric.Meter, counters func() Counters) error {
	type obs struct {
		name string
		get  func(*Counters) uint64
	}
	list := []obs{
		{"rauta.observer.kernel.events", func(c *Counters) uint64 { return c.Kernel.Events }},
		{"rauta.observer.ringbuf.dropped", func(c *Counters) uint64 { return c.Kernel.RingbufFull }},
		{"rauta.observer.non_http_segments", func(c *Counters) uint64 { return c.Kernel.NonHTTP }},
		{"rauta.observer.unmatched_responses", func(c *Counters) uint64 { return c.Pair.UnmatchedResponses }},
		{"rauta.observer.connection_evictions", func(c *Counters) uint64 { return c.Pair.Evictions }},
		{"rauta.observer.unpaired_requests", func(c *Counters) uint64 { return c.Pair.Unpaired }},
		{"rauta.observer.ambiguous_responses", func(c *Counters) uint64 { return c.Pair.Ambiguous }},
		{"rauta.observer.truncated_targets", func(c *Counters) uint64 { return c.TargetsTruncated }},
		{"rauta.observer.interface.attach_errors", func(c *Counters) uint64 { return c.Interfaces.AttachErrors }},
		{"rauta.observer.interface.refusals", func(c *Counters) uint64 { return c.Interfaces.Refused }},
		{"rauta.observer.spans.exported", func(c *Counters) uint64 { return c.Spans.Exported }},
		{"rauta.observer.spans.failed", func(c *Counters) uint64 { return c.Spans.Failed }},
		{"rauta.observer.spans.dropped", func(c *Counters) uint64 { return c.Spans.Dropped }},
		{"rauta.observer.h2.connections", func(c *Counters) uint64 { return c.H2.Conns }},
		{"rauta.observer.h2.dropped_streams", func(c *Counters) uint64 { return c.H2.Dropped }},
		{"rauta.observer.h2.desyncs", func(c *Counters) uint64 {
			var n uint64
			for _, v := range c.H2.Desyncs {
				n += v
			}
			return n
		}},
	}
	insts := make([]metric.Int64ObservableCounter, len(list))
	var ptrs []metric.Observable
	for i, l := range list {
		c, err := meter.Int64ObservableCounter(l.name)
		if err != nil {
			return fmt.Errorf("otlp instrument %s: %w", l.name, err)
		}
		insts[i] = c
		ptrs = append(ptrs, c)
	}
	parse, err := meter.Int64ObservableCounter("rauta.observer.parse_failures")
	if err != nil {
		return fmt.Errorf("otlp instrument: %w", err)
	}
	ptrs = append(ptrs, parse)
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		snap := counters()
		for i, l := range list {
			o.ObserveInt64(insts[i], int64(l.get(&snap)))
		}
		for _, p := range []struct {
			msg, reason string
			v           uint64
		}{
			{"request", "malformed", snap.RequestMalformed}, {"request", "truncated", snap.RequestTruncated},
			{"response", "malformed", snap.ResponseMalformed}, {"response", "truncated", snap.ResponseTruncated},
		} {
			o.ObserveInt64(parse, int64(p.v), metric.WithAttributes(attribute.String("message", p.msg), attribute.String("reason", p.reason)))
		}
		return nil
	}, ptrs...)
	if err != nil {
		return fmt.Errorf("otlp callback: %w", err)
	}
	return nil
}

// Record adds an observation to the duration histogram.
func (o *OTLP) Record(ctx context.Context, obs *detect.Observation) {
	l := labelsOf(obs)
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", l.method),
		attribute.String("http.route", l.route),
		attribute.String("service.name", l.service),
		attribute.String("url.scheme", l.scheme),
	}
	if l.status != "" {
		attrs = append(attrs, attribute.Int("http.response.status_code", obs.Status))
	}
	if l.namespace != "" {
		attrs = append(attrs, attribute.String("k8s.namespace.name", l.namespace))
	}
	if l.errorType != "" {
		attrs = append(attrs, attribute.String("error.type", l.errorType))
	}
	if l.version != "" {
		attrs = append(attrs, attribute.String("network.protocol.version", l.version))
	}
	if l.grpcStatus != "" {
		attrs = append(attrs, attribute.String("rpc.system", "grpc"), attribute.Int("rpc.grpc.status_code", int(obs.GRPCStatus)))
	}
	o.duration.Record(ctx, obs.Latency().Seconds(), metric.WithAttributes(attrs...))
}

// Detection exports a processor event as a log record and counts it.
func (o *OTLP) Detection(ctx context.Context, e *detect.Event) {
	o.detections.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", e.Kind), attribute.String("service.name", e.Service)))
	var r otellog.Record
	r.SetTimestamp(e.Time)
	r.SetEventName("rauta.observer." + e.Kind)
	r.SetSeverity(otellog.SeverityWarn)
	r.SetBody(attribute.StringValue(e.Kind))
	r.AddAttributes(
		attribute.String("service.name", e.Service),
		attribute.String("k8s.namespace.name", e.Namespace),
		attribute.String("k8s.pod.name", e.Pod),
		attribute.String("http.request.method", e.Method),
		attribute.String("http.route", e.Route),
		attribute.Int("http.response.status_code", e.Status),
		attribute.Float64("rauta.latency_ms", e.LatencyMS),
		attribute.String("rauta.outcome", e.Outcome),
	)
	if e.Reason != "" {
		r.AddAttributes(attribute.String("rauta.reason", e.Reason))
	}
	if e.BaselineP99MS > 0 {
		r.AddAttributes(attribute.Float64("rauta.baseline_p99_ms", e.BaselineP99MS))
	}
	if e.Kind == detect.KindErrorSpike {
		r.AddAttributes(attribute.Float64("rauta.error_rate", e.ErrorRate), attribute.Float64("rauta.baseline_error_rate", e.BaselineErrorRate))
	}
	o.logger.Emit(ctx, r)
}

// Flush pushes everything buffered now.
func (o *OTLP) Flush(ctx context.Context) error {
	return errors.Join(o.mp.ForceFlush(ctx), o.lp.ForceFlush(ctx))
}

// Shutdown flushes and stops both providers.
func (o *OTLP) Shutdown(ctx context.Context) error {
	return errors.Join(o.mp.Shutdown(ctx), o.lp.Shutdown(ctx))
}
