package h2parse

import (
	"bytes"
	"fmt"
	"math/rand"
	"net/netip"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/false-systems/rauta/internal/observe/pair"
)

var (
	cli = netip.MustParseAddrPort("10.0.0.1:40000")
	srv = netip.MustParseAddrPort("10.0.0.2:8080")
)

// side writes one direction's frames with a real HPACK encoder, and
// records where each write ends so that tests can cut segments at frame
// boundaries or anywhere.
type side struct {
	buf bytes.Buffer
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

func newSide(client bool) *side {
	s := &side{}
	if client {
		s.buf.WriteString(Preface)
	}
	s.fr = http2.NewFramer(&s.buf, nil)
	s.fr.SetMaxReadFrameSize(1 << 20)
	s.enc = hpack.NewEncoder(&s.hb)
	if err := s.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 250}); err != nil {
		panic(err)
	}
	return s
}

// headers writes a header block, split into CONTINUATIONs of at most
// frag bytes when frag > 0.
func (s *side) headers(t testing.TB, stream uint32, end bool, frag int, kv ...string) {
	t.Helper()
	s.hb.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := s.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}); err != nil {
			t.Fatal(err)
		}
	}
	block := s.hb.Bytes()
	first := block
	if frag > 0 && len(block) > frag {
		first = block[:frag]
	}
	rest := block[len(first):]
	if err := s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: first, EndStream: end, EndHeaders: len(rest) == 0}); err != nil {
		t.Fatal(err)
	}
	for len(rest) > 0 {
		n := min(frag, len(rest))
		if err := s.fr.WriteContinuation(stream, n == len(rest), rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
}

func (s *side) data(t testing.TB, stream uint32, end bool, n int) {
	t.Helper()
	if err := s.fr.WriteData(stream, end, bytes.Repeat([]byte{'x'}, n)); err != nil {
		t.Fatal(err)
	}
}

// seg is a segment to deliver: a direction's bytes [off, off+len).
type seg struct {
	client bool
	off    int
	data   []byte
	ts     uint64
}

// cutRandom cuts b into segments of 1..max bytes.
func cutRandom(rng *rand.Rand, b []byte, maxLen int, client bool) []seg {
	var out []seg
	for off := 0; off < len(b); {
		n := min(len(b)-off, 1+rng.Intn(maxLen))
		out = append(out, seg{client: client, off: off, data: b[off : off+n]})
		off += n
	}
	return out
}

const (
	cliISN = 1000
	srvISN = 5000
)

// feed delivers segments to a tracker: client seq from cliISN, server
// from srvISN; the first client segment acknowledges srvISN.
func feed(tr *Tracker, segs []seg) {
	for _, s := range segs {
		sg := Segment{TS: s.ts, HasAck: true, PayloadLen: uint32(len(s.data)), Data: s.data}
		if s.client {
			sg.Src, sg.Dst, sg.Seq, sg.Ack = cli, srv, cliISN+uint32(s.off), srvISN
		} else {
			sg.Src, sg.Dst, sg.Seq, sg.Ack = srv, cli, srvISN+uint32(s.off), cliISN
		}
		tr.Segment(&sg)
	}
}

// collect returns a tracker that appends copies of its exchanges.
func collect(lim Limits) (*Tracker, *[]pair.Exchange) {
	var out []pair.Exchange
	tr := New(lim, func(ex *pair.Exchange) { out = append(out, *ex) })
	return tr, &out
}

func reqFields(id int, extra ...string) []string {
	return append([]string{":method", "POST", ":scheme", "http", ":authority", "svc.example:8080", ":path", fmt.Sprintf("/item/%d", id), "user-agent", "test/1", "x-same", "repeated-value-for-the-dynamic-table"}, extra...)
}

// statusFor is the status the server of the tests answers stream id with.
func statusFor(id int) int { return 200 + id%5*100 }
