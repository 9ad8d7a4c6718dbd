package httpparse

import "testing"

// TestRequestIDHash: the one X-Request-Id of a request is hashed (any
// header case); none, or several, leave 0, so that a request cannot be
// joined by an ID that is not the gateway's.
func TestRequestIDHash(t *testing.T) {
	for name, c := range map[string]struct {
		head string
		want uint64
	}{
		"one":     {"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc-1\r\n\r\n", HashRequestID([]byte("abc-1"))},
		"case":    {"GET / HTTP/1.1\r\nx-request-id:  abc-1 \r\n\r\n", HashRequestID([]byte("abc-1"))},
		"none":    {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		"several": {"GET / HTTP/1.1\r\nX-Request-Id: a\r\nX-Request-Id: b\r\n\r\n", 0},
	} {
		var r Request
		if err := ParseRequest([]byte(c.head), &r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.RequestIDHash != c.want {
			t.Errorf("%s: hash %x, want %x", name, r.RequestIDHash, c.want)
		}
	}
	if HashRequestID([]byte("abc-1")) == HashRequestID([]byte("abc-2")) || HashRequestID([]byte(nil)) != 0 {
		t.Error("HashRequestID: distinct IDs must hash apart, none to 0")
	}
	// HPACK fields are strings: the same hash as the bytes.
	if HashRequestID("abc-1") != HashRequestID([]byte("abc-1")) || HashRequestID("") != 0 {
		t.Error("HashRequestID of a string differs from that of its bytes")
	}
}
