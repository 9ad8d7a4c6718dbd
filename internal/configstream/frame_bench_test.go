package configstream

import (
	"bytes"
	"testing"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/translate"
)

// BenchmarkFrame encodes (NewConfig: the frame and its hash) and decodes
// (readFrame) one Gateway's configuration of 1,000 routes (bench/routegen).
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
