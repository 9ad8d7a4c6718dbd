package tracecontext

import (
	"strings"
	"testing"
)

const (
	tidHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	sidHex = "00f067aa0ba902b7"
)

func TestParse(t *testing.T) {
	valid := "00-" + tidHex + "-" + sidHex + "-01"
	cases := []struct {
		name    string
		in      string
		ok      bool
		sampled bool
	}{
		{"version 00 sampled", valid, true, true},
		{"version 00 not sampled", "00-" + tidHex + "-" + sidHex + "-00", true, false},
		{"other flags kept", "00-" + tidHex + "-" + sidHex + "-09", true, true},
		{"future version, same length", "01-" + tidHex + "-" + sidHex + "-01", true, true},
		{"future version, extra field", "cc-" + tidHex + "-" + sidHex + "-01-what-the-future-holds", true, true},
		{"future version, extra without dash", "cc-" + tidHex + "-" + sidHex + "-01x", false, false},
		{"version 00 with extra field", valid + "-00", false, false},
		{"version ff", "ff-" + tidHex + "-" + sidHex + "-01", false, false},
		{"version not hex", "0g-" + tidHex + "-" + sidHex + "-01", false, false},
		{"uppercase version", "0A-" + tidHex + "-" + sidHex + "-01", false, false},
		{"uppercase trace id", "00-" + strings.ToUpper(tidHex) + "-" + sidHex + "-01", false, false},
		{"uppercase span id", "00-" + tidHex + "-" + "00F067AA0BA902B7" + "-01", false, false},
		{"uppercase flags", "00-" + tidHex + "-" + sidHex + "-0A", false, false},
		{"all-zero trace id", "00-" + strings.Repeat("0", 32) + "-" + sidHex + "-01", false, false},
		{"all-zero span id", "00-" + tidHex + "-" + strings.Repeat("0", 16) + "-01", false, false},
		{"short", valid[:54], false, false},
		{"empty", "", false, false},
		{"short trace id", "00-" + tidHex[:31] + "-" + sidHex + "-01-", false, false},
		{"wrong separator", "00_" + tidHex + "-" + sidHex + "-01", false, false},
		{"space inside", "00-" + tidHex + " " + sidHex + "-01", false, false},
	}
	for _, c := range cases {
		p, ok := Parse(c.in)
		pb, okb := Parse([]byte(c.in))
		if ok != c.ok || okb != ok || p != pb {
			t.Errorf("%s: Parse(%q) ok %v (bytes %v), want %v", c.name, c.in, ok, okb, c.ok)
			continue
		}
		if !ok {
			if p != (Parent{}) {
				t.Errorf("%s: invalid value returned %+v, want zero", c.name, p)
			}
			continue
		}
		if got := string(AppendHex(nil, p.TraceID[:])); got != tidHex {
			t.Errorf("%s: trace id %s, want %s", c.name, got, tidHex)
		}
		if got := string(AppendHex(nil, p.SpanID[:])); got != sidHex {
			t.Errorf("%s: span id %s, want %s", c.name, got, sidHex)
		}
		if p.Sampled() != c.sampled || !p.Valid() {
			t.Errorf("%s: sampled %v valid %v, want %v true", c.name, p.Sampled(), p.Valid(), c.sampled)
		}
	}
}

func TestAppendRoundTrip(t *testing.T) {
	tid, sid := NewTraceID(), NewSpanID()
	s := Append(nil, tid, sid)
	if len(s) != Len {
		t.Fatalf("%q: length %d, want %d", s, len(s), Len)
	}
	p, ok := Parse(s)
	if !ok || p.TraceID != tid || p.SpanID != sid || !p.Sampled() {
		t.Fatalf("Parse(Append) = %+v %v", p, ok)
	}
}

func TestParseAllocatesNothing(t *testing.T) {
	b := []byte("00-" + tidHex + "-" + sidHex + "-01")
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse(b) }); n != 0 {
		t.Fatalf("%v allocations per Parse", n)
	}
}

func TestRatio(t *testing.T) {
	if !NewRatio(0).Off() || NewRatio(0.5).Off() {
		t.Fatal("Off wrong")
	}
	all, none, half := NewRatio(1), NewRatio(0), NewRatio(0.25)
	n := 0
	const trials = 20000
	for range trials {
		tid := NewTraceID()
		if !all.Sampled(tid) || none.Sampled(tid) {
			t.Fatal("ratio 1 must sample all, ratio 0 none")
		}
		if half.Sampled(tid) {
			n++
		}
	}
	// 0.25 of 20000 is 5000, sd ~61: 10 sd either way.
	if n < 4400 || n > 5600 {
		t.Fatalf("ratio 0.25 sampled %d of %d", n, trials)
	}
}

func BenchmarkParse(b *testing.B) {
	v := []byte("00-" + tidHex + "-" + sidHex + "-01")
	for b.Loop() {
		if _, ok := Parse(v); !ok {
			b.Fatal("invalid")
		}
	}
}

// FuzzParse: Parse never panics, agrees between string and []byte, and
// whatever it accepts names non-zero IDs that print back as the value's
// own (lowercase) hex.
func FuzzParse(f *testing.F) {
	f.Add("00-" + tidHex + "-" + sidHex + "-01")
	f.Add("cc-" + tidHex + "-" + sidHex + "-01-future")
	f.Add("ff-" + tidHex + "-" + sidHex + "-01")
	f.Add("00-" + strings.Repeat("0", 32) + "-" + sidHex + "-01")
	f.Fuzz(func(t *testing.T, v string) {
		p, ok := Parse(v)
		pb, okb := Parse([]byte(v))
		if ok != okb || p != pb {
			t.Fatalf("%q: string and []byte disagree", v)
		}
		if !ok {
			return
		}
		if !p.Valid() || p.SpanID == ([8]byte{}) || v[:2] == "ff" {
			t.Fatalf("%q accepted with %+v", v, p)
		}
		if got := string(Append(nil, p.TraceID, p.SpanID)); got[3:52] != v[3:52] {
			t.Fatalf("%q: IDs print as %q", v, got)
		}
	})
}
