package tlsprobe

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/false-systems/rauta/bpf"
)

// The Go decoder's offsets must match the C struct bpf2go saw.
func TestHeaderMatchesKernelStruct(t *testing.T) {
	var e bpf.TlsprobeTlsEvent
	if off := unsafe.Offsetof(e.Data); off != headerLen {
		t.Fatalf("data at %d in struct tls_event, decoder reads %d", off, headerLen)
	}
	if unsafe.Offsetof(e.Tgid) != 56 || unsafe.Offsetof(e.Sport) != 72 || unsafe.Offsetof(e.Comm) != 88 {
		t.Fatalf("struct tls_event layout changed: tgid %d sport %d comm %d", unsafe.Offsetof(e.Tgid), unsafe.Offsetof(e.Sport), unsafe.Offsetof(e.Comm))
	}
}

func record(family byte, captured int, data string) []byte {
	raw := make([]byte, headerLen+len(data))
	le := binary.LittleEndian
	le.PutUint64(raw[0:], 1234)
	le.PutUint64(raw[8:], 0x7f0000001000)
	copy(raw[24:28], []byte{10, 0, 0, 1})
	copy(raw[40:44], []byte{10, 0, 0, 2})
	le.PutUint32(raw[56:], 42)
	le.PutUint32(raw[60:], 100)
	le.PutUint32(raw[64:], 200)
	le.PutUint32(raw[68:], uint32(len(data)))
	le.PutUint16(raw[72:], 5000)
	le.PutUint16(raw[74:], 443)
	le.PutUint16(raw[76:], uint16(captured))
	raw[78], raw[79], raw[80] = family, byte(Write), byte(LibOpenSSL)
	copy(raw[88:], "curl")
	copy(raw[headerLen:], data)
	return raw
}

func TestDecode(t *testing.T) {
	var e Event
	data := "GET / HTTP/1.1\r\n"
	if err := Decode(record(4, len(data), data), &e); err != nil {
		t.Fatal(err)
	}
	if e.TimestampNS != 1234 || e.Conn != 0x7f0000001000 || e.PID != 42 || e.Seq != 100 || e.Ack != 200 ||
		e.Src != netip.MustParseAddrPort("10.0.0.1:5000") || e.Dst != netip.MustParseAddrPort("10.0.0.2:443") ||
		e.Direction != Write || e.Library != LibOpenSSL || e.Comm != "curl" || string(e.Data) != data {
		t.Fatalf("decoded %+v", e)
	}
	// Family 0: the socket was not seen yet; no addresses.
	if err := Decode(record(0, len(data), data), &e); err != nil || e.Src.IsValid() || e.Dst.IsValid() {
		t.Fatalf("family 0: %v %+v", err, e)
	}
	if err := Decode(record(4, len(data)+1, data), &e); err == nil {
		t.Fatal("captured length past the record accepted")
	}
	if err := Decode(make([]byte, headerLen-1), &e); err == nil {
		t.Fatal("short record accepted")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(record(4, 3, "GET"))
	f.Add(record(6, 0, ""))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var e Event
		if Decode(raw, &e) == nil && len(e.Data) > CaptureMax {
			t.Fatalf("%d bytes of data", len(e.Data))
		}
	})
}
