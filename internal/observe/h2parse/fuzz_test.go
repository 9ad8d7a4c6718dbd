package h2parse

import (
	"testing"

	"github.com/false-systems/rauta/internal/observe/pair"
)

// FuzzTracker feeds arbitrary client and server bytes after a preface, cut
// into segments at arbitrary points: the tracker must not panic, must
// report only streams the client opened, and must keep its bounds.
func FuzzTracker(f *testing.F) {
	c, s := newSide(true), newSide(false)
	c.headers(f, 1, true, 3, reqFields(1, "content-type", "application/grpc")...)
	s.headers(f, 1, false, 0, ":status", "200")
	s.data(f, 1, false, 5)
	s.headers(f, 1, true, 0, "grpc-status", "0")
	f.Add(c.buf.Bytes()[len(Preface):], s.buf.Bytes(), uint8(7))
	f.Add([]byte("\x00\x00\x05\x01\x2d\x00\x00\x00\x01\x01\x00\x00\x00\x00"), []byte("\x00\x00\x08\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), uint8(3))
	f.Fuzz(func(t *testing.T, client, server []byte, cut uint8) {
		opened := map[string]bool{}
		tr := New(Limits{MaxStreams: 4, MaxHeaderBlock: 4096, MaxString: 1024}, func(ex *pair.Exchange) {
			if ex.Version != "2" || ex.Client != cli || ex.Server != srv {
				t.Fatalf("exchange %+v", ex)
			}
			opened[ex.Method+" "+ex.Target] = true
		})
		step := int(cut%64) + 1
		segs := []seg{{client: true, data: []byte(Preface), ts: 1}}
		for off := 0; off < len(client) || off < len(server); off += step {
			if off < len(client) {
				segs = append(segs, seg{client: true, off: len(Preface) + off, data: client[off:min(off+step, len(client))]})
			}
			if off < len(server) {
				segs = append(segs, seg{off: off, data: server[off:min(off+step, len(server))]})
			}
		}
		feed(tr, segs)
		tr.Expire(1 << 62)
		st := tr.Stats()
		if st.Exchanges > st.Requests || st.Tracked > 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}
