package proxy

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func newHpackDecoder() *hpack.Decoder { return hpack.NewDecoder(4096, nil) }

// writeHeaders opens a GET stream with a raw HTTP/2 framer.
func writeHeaders(t *testing.T, fr *http2.Framer, stream uint32, path, authority string) {
	t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", path}, {":authority", authority}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
}

// readStreams reads frames until every listed stream ended, acknowledging
// SETTINGS, and returns each stream's body.
func readStreams(t *testing.T, fr *http2.Framer, streams ...uint32) map[uint32]string {
	t.Helper()
	bodies := map[uint32]string{}
	open := map[uint32]bool{}
	for _, s := range streams {
		open[s] = true
	}
	for len(open) > 0 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if st := f.PseudoValue("status"); st != "200" {
				t.Errorf("stream %d status %s", f.StreamID, st)
			}
			if f.StreamEnded() {
				delete(open, f.StreamID)
			}
		case *http2.DataFrame:
			bodies[f.StreamID] += string(f.Data())
			if f.StreamEnded() {
				delete(open, f.StreamID)
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			t.Fatalf("RST_STREAM on %d: %v", f.StreamID, f.ErrCode)
		}
	}
	return bodies
}
