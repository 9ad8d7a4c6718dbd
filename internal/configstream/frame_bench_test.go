package configstream

import (
	"bytes"
	"testing"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/translate"
)

// BenchmarkFrame encodes and decodes one Gateway's configuration of 1,000
// routes (bench/routegen):
//
//   - encode: NewConfig, every route encoded (the frame and its hash);
//   - encode-change: an Encoder after one route changed, as a controller
//     encodes a sync (the other routes' encodings reused);
//   - delta: the delta of a one-route change, as Publish builds it;
//   - decode: a whole frame, every route (readFrame);
//   - decode-stream: whole frames one route apart, as a stream's decoder
//     that did not ask for deltas (routes reused by their encoding's hash);
//   - decode-delta: deltas one route apart, as a stream's decoder does.
func BenchmarkFrame(b *testing.B) {
	key := routegen.GatewayNamespace + "/" + routegen.GatewayName
	res, opts := identified(1000)
	snap := translate.Translate(res, opts).IR
	frame := NewConfig(key, 1, snap).Frame()
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			NewConfig(key, 1, snap)
		}
	})
	// Two configurations one route apart, as translated for a sync each.
	all := res.HTTPRoutes
	res.HTTPRoutes = all[1:]
	fewer := translate.Translate(res, opts).IR
	res.HTTPRoutes = all
	snaps := [2]*ir.Snapshot{snap, fewer}
	var enc Encoder
	configs := [2]Config{enc.NewConfig(key, 1, snap), enc.NewConfig(key, 2, fewer)}
	enc.EndRound()
	b.Run("encode-change", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		i := 0
		for b.Loop() {
			enc.NewConfig(key, int64(i), snaps[i%2])
			enc.EndRound()
			i++
		}
	})
	deltas := [2][]byte{deltaFrame(configs[1], configs[0]), deltaFrame(configs[0], configs[1])}
	b.Run("delta", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			deltaFrame(configs[0], configs[1])
		}
	})
	frames := [2][]byte{configs[0].Frame(), configs[1].Frame()}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if _, err := readFrame(bytes.NewReader(frame), 64<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
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
	b.Run("decode-delta", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		var dec frameDecoder
		if _, err := dec.read(bytes.NewReader(frames[0]), 64<<20); err != nil {
			b.Fatal(err)
		}
		i := 1
		for b.Loop() {
			if _, err := dec.read(bytes.NewReader(deltas[i%2]), 64<<20); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
