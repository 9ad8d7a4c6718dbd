package dataplane

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/configstream"
	"github.com/false-systems/rauta/internal/gateway"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/translate"
)

// BenchmarkConfigPath times each step of a route change between the
// controller's cache and the data plane serving it, at 1,000 routes
// (bench/routegen): what issue 13 point 9's propagation is made of. Each
// step runs on two configurations that differ by one route, alternately, as
// a stream of route changes does.
//
//	go test -run '^$' -bench BenchmarkConfigPath -benchmem ./internal/dataplane/
func BenchmarkConfigPath(b *testing.B) {
	res := routegen.Resources(1000)
	fewer := *res
	fewer.HTTPRoutes = res.HTTPRoutes[1:]
	opts := translate.Options{Provisioned: true}
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	snaps := [2]*ir.Snapshot{translate.Translate(res, opts).IR, translate.Translate(&fewer, opts).IR}
	var configs [2]configstream.Config
	var lines [2][]byte
	for i, s := range snaps {
		configs[i] = configstream.NewConfig(key, int64(i), s)
		line, err := json.Marshal(struct {
			Config *configstream.Config `json:"config"`
		}{&configs[i]})
		if err != nil {
			b.Fatal(err)
		}
		lines[i] = line
	}
	b.Logf("a configuration is %d bytes on the stream", len(lines[0]))

	b.Run("translate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			translate.Translate(res, opts)
		}
	})
	b.Run("encode", func(b *testing.B) { // NewConfig: the stream message and its hash
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			configstream.NewConfig(key, 1, snaps[i%2])
			i++
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var m struct {
				Config *configstream.Config `json:"config"`
			}
			if err := json.Unmarshal(lines[i%2], &m); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := gateway.New(gateway.Options{Address: "127.0.0.1", PortOffset: 30000, AdminAddr: "127.0.0.1:0"}, logger)
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
