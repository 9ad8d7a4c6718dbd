package h1

import "testing"

// TestAmbiguousFramingSeenThroughFallback: a request with both
// Content-Length and Transfer-Encoding must be flagged however it is shaped
// for net/http, which unfolds obs-fold, accepts a repeated identical
// Content-Length and bare LF line ends, and would serve such a request as
// chunked on a connection it keeps (found by bench/probes h1-te-obs-fold:
// the bytes after the chunked end were served as a second request).
func TestAmbiguousFramingSeenThroughFallback(t *testing.T) {
	for name, head := range map[string]string{
		"plain":                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"obs-fold TE":          "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
		"obs-fold CL":          "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length:\r\n\t5\r\n\r\n",
		"repeated CL first":    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"bare LF before TE":    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\nTransfer-Encoding: chunked\r\n\r\n",
		"Expect before TE":     "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"absolute-form target": "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.0":             "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	} {
		var rh RequestHead
		if ParseRequestHead(head, &rh) || !rh.Ambiguous {
			t.Errorf("%s: not flagged ambiguous: %q", name, head)
		}
	}
	for name, head := range map[string]string{
		"CL only":             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
		"TE only, folded":     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
		"TE inside a fold":    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-A: b\r\n Transfer-Encoding: chunked\r\n\r\n",
		"names in the body":   "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nTransfer-Encoding: chunked\r\n\r\n",
		"TE in a field value": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-A: Transfer-Encoding: chunked\r\n\r\n",
	} {
		var rh RequestHead
		ParseRequestHead(head, &rh)
		if rh.Ambiguous {
			t.Errorf("%s: flagged ambiguous: %q", name, head)
		}
	}
}
