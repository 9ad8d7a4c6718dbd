package dataplane

import (
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/configstream"
	"github.com/false-systems/rauta/internal/gateway"
	"github.com/false-systems/rauta/internal/translate"
)

// BenchmarkDataPlaneRoutes is what a data plane holds once it serves
// 10,000 HTTPRoutes (bench/routegen) received as the controller sends
// them: the frame decoded as a stream does (configstream.DecodeStream),
// applied to a real gateway (router compile, metrics, listener bound).
// held-MiB is the live heap the gateway keeps after a full collection,
// everything else dropped; frame-MiB the size of the Config frame. The
// loop times decoding the frame (the first Config of a stream).
//
//	go test -run '^$' -bench BenchmarkDataPlaneRoutes -benchmem -benchtime 3x ./internal/dataplane/
func BenchmarkDataPlaneRoutes(b *testing.B) {
	const n = 10000
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	frame := configstream.NewConfig(key, 1, translate.Translate(routegen.Resources(n), translate.Options{Provisioned: true}).IR).Frame()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	before := liveHeap()
	gw, err := newGateway(gateway.Options{Address: "127.0.0.1", PortOffset: 30000, AdminAddr: "127.0.0.1:0"}, logger)
	if err != nil {
		b.Fatal(err)
	}
	applyFrame(b, gw, frame, logger)
	held := liveHeap() - min(before, liveHeap())
	runtime.KeepAlive(gw)

	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := configstream.DecodeStream(frame); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(held)/(1<<20), "held-MiB")
	b.ReportMetric(float64(len(frame))/(1<<20), "frame-MiB")
}

func applyFrame(b *testing.B, gw *gateway.Gateway, frame []byte, logger *slog.Logger) {
	b.Helper()
	decoded, err := configstream.DecodeStream(frame)
	if err != nil {
		b.Fatal(err)
	}
	if rep := apply(gw, decoded[0], logger); rep.Error != "" || len(rep.Unbound) > 0 {
		b.Fatalf("%+v", rep)
	}
}

// liveHeap is the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkDataPlaneFirstConfig is what a data plane does with a stream's
// first Config at 10,000 HTTPRoutes (bench/routegen): decode every route
// and compile all of them. Each loop decodes with a new stream's decoder,
// whose route fingerprints are its own, so the gateway reuses no compiled
// route, as at start.
//
//	go test -run '^$' -bench BenchmarkDataPlaneFirstConfig -benchmem -benchtime 5x ./internal/dataplane/
func BenchmarkDataPlaneFirstConfig(b *testing.B) {
	const n = 10000
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	frame := configstream.NewConfig(key, 1, translate.Translate(routegen.Resources(n), translate.Options{Provisioned: true}).IR).Frame()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := newGateway(gateway.Options{Address: "127.0.0.1", PortOffset: 30000, AdminAddr: "127.0.0.1:0"}, logger)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		applyFrame(b, gw, frame, logger)
	}
}
