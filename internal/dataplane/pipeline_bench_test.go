package dataplane

import (
	"io"
	"log/slog"
	"testing"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/configstream"
	"github.com/false-systems/rauta/internal/gateway"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/translate"
)

// BenchmarkConfigPath times the controller's translation and the data
// plane's apply (compare, compile, swap) of a route change at 1,000 routes
// (bench/routegen): with configstream's BenchmarkFrame (encode, decode),
// what issue 13 point 9's propagation is made of. Each step runs on two
// configurations that differ by one route, alternately, as a stream of route
// changes does.
//
//	go test -run '^$' -bench 'BenchmarkConfigPath|BenchmarkFrame' -benchmem ./internal/dataplane/ ./internal/configstream/
func BenchmarkConfigPath(b *testing.B) {
	res := routegen.Resources(1000)
	fewer := *res
	fewer.HTTPRoutes = res.HTTPRoutes[1:]
	opts := translate.Options{Provisioned: true}
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	snaps := [2]*ir.Snapshot{translate.Translate(res, opts).IR, translate.Translate(&fewer, opts).IR}
	// As the data plane gets them: decoded by one stream, so routes carry
	// fingerprints and the second elides the first's unchanged routes,
	// which the gateway then takes from what it compiled.
	decoded, err := configstream.DecodeStream(configstream.NewConfig(key, 0, snaps[0]).Frame(), configstream.NewConfig(key, 1, snaps[1]).Frame())
	if err != nil {
		b.Fatal(err)
	}
	configs := [2]configstream.Config{decoded[0], decoded[1]}

	b.Run("translate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			translate.Translate(res, opts)
		}
	})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := newGateway(gateway.Options{Address: "127.0.0.1", PortOffset: 30000, AdminAddr: "127.0.0.1:0"}, logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("apply", func(b *testing.B) { // compare, compile and swap
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if rep := apply(gw, configs[i%2], logger); rep.Error != "" || len(rep.Unbound) > 0 {
				b.Fatalf("%+v", rep)
			}
			i++
		}
	})
}
