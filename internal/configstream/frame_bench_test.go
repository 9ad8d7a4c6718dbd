package configstream

import (
	"bytes"
	"testing"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/translate"
)

// BenchmarkFrame encodes (NewConfig: the frame and its hash) and decodes
// one Gateway's configuration of 1,000 routes (bench/routegen): whole
// (readFrame), and as a stream's decoder does, each frame one route away
// from the last (frameDecoder).
func BenchmarkFrame(b *testing.B) {
	snap := translate.Translate(routegen.Resources(1000), translate.Options{Provisioned: true}).IR
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	frame := NewConfig(key, 1, snap).frame
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			NewConfig(key, 1, snap)
		}
	})
	// What a stream does: each frame differs from the last by a route.
	res := routegen.Resources(1000)
	res.HTTPRoutes = res.HTTPRoutes[1:]
	frames := [2][]byte{frame, NewConfig(key, 2, translate.Translate(res, translate.Options{Provisioned: true}).IR).frame}
	b.Run("decode-stream", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		var dec frameDecoder
		i := 0
		for b.Loop() {
			if _, err := dec.read(bytes.NewReader(frames[i%2]), 64<<20); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if _, err := readFrame(bytes.NewReader(frame), 64<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
}
