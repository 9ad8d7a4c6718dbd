package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"net"
	"testing"
)

// clientHelloBytes is the first flight of a real crypto/tls client.
func clientHelloBytes(t testing.TB, sni string) []byte {
	t.Helper()
	c1, c2 := net.Pipe()
	defer c2.Close()
	go func() {
		tls.Client(c1, &tls.Config{ServerName: sni, InsecureSkipVerify: true}).Handshake() //nolint:errcheck // ends when c2 closes
		c1.Close()
	}()
	raw, got, err := readClientHello(c2)
	if err != nil || got != sni {
		t.Fatalf("reading crypto/tls's hello: sni %q, %v", got, err)
	}
	return raw
}

func TestReadClientHello(t *testing.T) {
	hello := clientHelloBytes(t, "a.example.com")
	raw, sni, err := readClientHello(bytes.NewReader(append(append([]byte{}, hello...), "after"...)))
	if err != nil || sni != "a.example.com" {
		t.Fatalf("sni %q, %v", sni, err)
	}
	// What was read is the hello and nothing more: it is replayed.
	if !bytes.Equal(raw, hello) {
		t.Fatalf("read %d bytes, the hello has %d", len(raw), len(hello))
	}

	// The same handshake message split over two records.
	body := hello[recordHeaderLen:]
	cut := 40
	var split []byte
	for _, part := range [][]byte{body[:cut], body[cut:]} {
		split = append(split, recordHandshake, 3, 1, 0, 0)
		binary.BigEndian.PutUint16(split[len(split)-2:], uint16(len(part)))
		split = append(split, part...)
	}
	raw, sni, err = readClientHello(bytes.NewReader(split))
	if err != nil || sni != "a.example.com" || !bytes.Equal(raw, split) {
		t.Fatalf("split hello: sni %q, %v, %d of %d bytes", sni, err, len(raw), len(split))
	}

	// No server name: routed as "".
	c1, c2 := net.Pipe()
	go func() {
		tls.Client(c1, &tls.Config{InsecureSkipVerify: true}).Handshake() //nolint:errcheck // ends when c2 closes
		c1.Close()
	}()
	_, sni, err = readClientHello(c2)
	c2.Close()
	if err != nil || sni != "" {
		t.Fatalf("hello without SNI: %q, %v", sni, err)
	}
}

func TestReadClientHelloRefuses(t *testing.T) {
	hello := clientHelloBytes(t, "a.example.com")
	bad := func(mut func([]byte) []byte) []byte { return mut(append([]byte{}, hello...)) }
	cases := map[string][]byte{
		"plain HTTP":      []byte("GET / HTTP/1.1\r\n\r\n"),
		"truncated":       hello[:len(hello)-10],
		"empty record":    {recordHandshake, 3, 1, 0, 0},
		"oversized":       {recordHandshake, 3, 1, 0xff, 0xff},
		"not a hello":     bad(func(b []byte) []byte { b[recordHeaderLen] = 2; return b }),
		"server name NUL": bytes.Replace(hello, []byte("a.example.com"), []byte("a.exam\x00e.com"), 1),
		"huge message": func() []byte {
			b := bad(func(b []byte) []byte { return b })
			b[recordHeaderLen+1] = 0x10 // 1 MiB and more
			return b
		}(),
	}
	for name, in := range cases {
		if _, sni, err := readClientHello(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: accepted with SNI %q", name, sni)
		}
	}
}

func FuzzClientHello(f *testing.F) {
	f.Add(clientHelloBytes(f, "a.example.com"))
	f.Add(clientHelloBytes(f, ""))
	f.Add([]byte{recordHandshake, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		raw, sni, err := readClientHello(bytes.NewReader(in))
		if !bytes.HasPrefix(in, raw) {
			t.Fatalf("raw is not a prefix of the input")
		}
		if err == nil && sni != "" {
			if _, herr := hostName([]byte(sni)); herr != nil {
				t.Fatalf("invalid server name %q passed", sni)
			}
		}
	})
}
