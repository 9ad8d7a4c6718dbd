package h2client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/false-systems/rauta/internal/h1"
)

// ---- 1. plain requests ----

// seenRequest is what a handler saw of a request.
type seenRequest struct {
	Method        string
	RequestURI    string
	Host          string
	Header        http.Header
	ContentLength int64
	Body          []byte
	BodyErr       error
	ProtoMajor    int
}

func recordRequest(r *http.Request) seenRequest {
	b, err := io.ReadAll(r.Body)
	return seenRequest{
		Method:        r.Method,
		RequestURI:    r.RequestURI,
		Host:          r.Host,
		Header:        r.Header.Clone(),
		ContentLength: r.ContentLength,
		Body:          b,
		BodyErr:       err,
		ProtoMajor:    r.ProtoMajor,
	}
}

// TestRequestAndResponse pins what reaches an h2c server of a request
// (method, escaped path and query, :authority, multi-valued headers, body of
// known and unknown length) and what the response carries back (status,
// canonical multi-valued headers, ContentLength, exact body).
func TestRequestAndResponse(t *testing.T) {
	seen := make(chan seenRequest, 1)
	srv := startH2C(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := recordRequest(r)
		seen <- s
		h := w.Header()
		h.Add("X-Resp-Multi", "a")
		h.Add("X-Resp-Multi", "b")
		h["x-lower-case-key"] = []string{"v"}
		h.Set("X-Echo-Method", r.Method)
		switch r.URL.Query().Get("mode") {
		case "cl":
			h.Set("Content-Length", "10")
			w.WriteHeader(203)
			io.WriteString(w, "hello, get")
		case "nocl":
			w.WriteHeader(201)
			w.(http.Flusher).Flush() // headers go out without content-length
			w.Write(s.Body)
		}
	}))
	tr := newTransport(t, Options{})

	body := pattern(1, 1000)
	tests := []struct {
		name          string
		method        string
		path          string // request URI, with escapes and query
		host          string // req.Host; "" means URL.Host
		body          func() io.Reader
		contentLength int64 // req.ContentLength to set
		wantStatus    int
		wantCL        int64 // resp.ContentLength
		wantBody      []byte
		wantServerCL  int64 // r.ContentLength at the server; -2: don't check
	}{
		{
			name: "GET with escaped path and Host", method: "GET",
			path: "/a%2Fb/c%20d/%E2%82%AC?mode=cl&y=%26z&x=1&x=2", host: "example.test:8443",
			wantStatus: 203, wantCL: 10, wantBody: []byte("hello, get"), wantServerCL: 0,
		},
		{
			name: "GET authority from URL", method: "GET", path: "/plain?mode=cl",
			wantStatus: 203, wantCL: 10, wantBody: []byte("hello, get"), wantServerCL: 0,
		},
		{
			name: "POST known length", method: "POST", path: "/post?mode=nocl", host: "svc.ns:50051",
			body: func() io.Reader { return bytes.NewReader(body) }, contentLength: int64(len(body)),
			wantStatus: 201, wantCL: -1, wantBody: body, wantServerCL: int64(len(body)),
		},
		{
			name: "POST unknown length", method: "POST", path: "/post?mode=nocl",
			body:          func() io.Reader { return io.MultiReader(bytes.NewReader(body[:300]), bytes.NewReader(body[300:])) },
			contentLength: -1,
			wantStatus:    201, wantCL: -1, wantBody: body, wantServerCL: -2,
		},
		{
			name: "PUT empty known length", method: "PUT", path: "/put?mode=nocl",
			body: func() io.Reader { return http.NoBody }, contentLength: 0,
			wantStatus: 201, wantCL: -1, wantBody: []byte{}, wantServerCL: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rb io.Reader
			if tc.body != nil {
				rb = tc.body()
			}
			req := newRequest(t, tc.method, srv.url+tc.path, rb)
			if tc.body != nil {
				req.ContentLength = tc.contentLength
			}
			req.Host = tc.host
			req.Header.Add("X-Multi", "1")
			req.Header.Add("X-Multi", "2")
			req.Header.Set("User-Agent", "h2client-test")
			resp := mustRoundTrip(t, tr, req)
			s := recv(t, seen, waitShort, "the handler to see the request")

			if s.Method != tc.method {
				t.Errorf("server saw method %q, want %q", s.Method, tc.method)
			}
			if s.RequestURI != tc.path {
				t.Errorf("server saw :path %q, want %q", s.RequestURI, tc.path)
			}
			wantHost := tc.host
			if wantHost == "" {
				wantHost = srv.addr
			}
			if s.Host != wantHost {
				t.Errorf("server saw :authority %q, want %q", s.Host, wantHost)
			}
			if got := s.Header["X-Multi"]; !reflect.DeepEqual(got, []string{"1", "2"}) {
				t.Errorf("server saw X-Multi %q, want [1 2]", got)
			}
			if got := s.Header.Get("User-Agent"); got != "h2client-test" {
				t.Errorf("server saw User-Agent %q, want h2client-test", got)
			}
			if s.BodyErr != nil {
				t.Errorf("server reading the request body: %v", s.BodyErr)
			}
			wantReqBody := tc.wantBody
			if tc.method == "GET" {
				wantReqBody = []byte{}
			}
			if !bytes.Equal(s.Body, wantReqBody) {
				t.Errorf("server got a request body that differs: %s", firstDiff(s.Body, wantReqBody))
			}
			if tc.wantServerCL != -2 && s.ContentLength != tc.wantServerCL {
				t.Errorf("server saw ContentLength %d, want %d", s.ContentLength, tc.wantServerCL)
			}

			if resp.StatusCode != tc.wantStatus {
				t.Errorf("StatusCode %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if got := resp.Header["X-Resp-Multi"]; !reflect.DeepEqual(got, []string{"a", "b"}) {
				t.Errorf("resp.Header[X-Resp-Multi] = %q, want [a b] (header %v)", got, resp.Header)
			}
			if got := resp.Header["X-Lower-Case-Key"]; !reflect.DeepEqual(got, []string{"v"}) {
				t.Errorf("resp.Header[X-Lower-Case-Key] = %q, want [v]: keys must be canonical (header %v)", got, resp.Header)
			}
			if got := resp.Header.Get("X-Echo-Method"); got != tc.method {
				t.Errorf("X-Echo-Method %q, want %q", got, tc.method)
			}
			for k := range resp.Header {
				if strings.HasPrefix(k, ":") {
					t.Errorf("resp.Header holds the pseudo-header %q", k)
				}
			}
			if resp.ContentLength != tc.wantCL {
				t.Errorf("resp.ContentLength %d, want %d", resp.ContentLength, tc.wantCL)
			}
			got, err := readAll(t, resp.Body)
			if err != nil {
				t.Fatalf("reading the body: %v", err)
			}
			if !bytes.Equal(got, tc.wantBody) {
				t.Errorf("response body differs: %s", firstDiff(got, tc.wantBody))
			}
		})
	}
}

// TestStatusCodes pins that the status of the response is returned as is;
// a RoundTripper follows no redirect and a body-less status has an empty,
// non-nil Body.
func TestStatusCodes(t *testing.T) {
	srv := startH2C(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if code == 301 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
		if code != 204 && code != 304 {
			fmt.Fprintf(w, "status %d", code)
		}
	}))
	tr := newTransport(t, Options{})
	for _, code := range []int{200, 204, 301, 304, 404, 418, 500, 503} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			resp := mustRoundTrip(t, tr, newRequest(t, "GET", fmt.Sprintf("%s/%d", srv.url, code), nil))
			if resp.StatusCode != code {
				t.Errorf("StatusCode %d, want %d", resp.StatusCode, code)
			}
			if code == 301 && resp.Header.Get("Location") != "/elsewhere" {
				t.Errorf("Location %q, want /elsewhere", resp.Header.Get("Location"))
			}
			want := fmt.Sprintf("status %d", code)
			if code == 204 || code == 304 {
				want = ""
			}
			got, err := readAll(t, resp.Body)
			if err != nil || string(got) != want {
				t.Errorf("body %q, %v; want %q, nil", got, err, want)
			}
		})
	}
}

// TestCustomDial pins that Options.Dial is used, with network "tcp" and
// req.URL.Host as the address, whatever req.Host says.
func TestCustomDial(t *testing.T) {
	srv := startH2C(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "dialled")
	}))
	var mu sync.Mutex
	var dials []string
	tr := newTransport(t, Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dials = append(dials, network+" "+addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	req := newRequest(t, "GET", srv.url+"/", nil)
	req.Host = "not-dialled.example:1"
	resp := mustRoundTrip(t, tr, req)
	got, err := readAll(t, resp.Body)
	if err != nil || string(got) != "dialled" {
		t.Fatalf("body %q, %v; want dialled", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dials) != 1 || dials[0] != "tcp "+srv.addr {
		t.Errorf("Dial called with %q, want once with %q", dials, "tcp "+srv.addr)
	}
}

// TestConnectionReuse pins that sequential requests share one connection.
func TestConnectionReuse(t *testing.T) {
	srv := startH2C(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	tr := newTransport(t, Options{})
	for i := range 10 {
		resp := mustRoundTrip(t, tr, newRequest(t, "GET", fmt.Sprintf("%s/r%d", srv.url, i), nil))
		got, err := readAll(t, resp.Body)
		if err != nil || string(got) != fmt.Sprintf("/r%d", i) {
			t.Fatalf("request %d: body %q, %v", i, got, err)
		}
		resp.Body.Close()
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("10 sequential requests used %d connections, want 1", n)
	}
}

// ---- RFC 9113 details of the request's header block ----

// TestRequestHeaderBlock pins the request's header block on the wire:
// pseudo-headers :method, :scheme http, :path, :authority first, field names
// in lower case (RFC 9113 8.2.1, 8.3), no connection-specific field and a
// TE other than "trailers" dropped (8.2.2), END_STREAM on HEADERS of a
// request without body.
func TestRequestHeaderBlock(t *testing.T) {
	srv, got := recordingServer(t)
	tr := newTransport(t, Options{})

	req := newRequest(t, "GET", srv.url+"/p/a%20th?q=1", nil)
	req.Host = "authority.test"
	req.Header.Set("X-Mixed-Case", "v")
	req.Header.Set("Connection", "keep-alive")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("Te", "trailers")
	resp, err := roundTrip(t, tr, req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	body, err := readAll(t, resp.Body)
	if err != nil || string(body) != "ok" {
		t.Fatalf("body %q, %v; want ok", body, err)
	}
	r := recv(t, got, waitShort, "the raw server to get the request")

	wantPseudo := map[string]string{":method": "GET", ":scheme": "http", ":path": "/p/a%20th?q=1", ":authority": "authority.test"}
	seenPseudo := map[string]int{}
	regular := false
	for _, f := range r.fields {
		if !isLowerToken(f.Name) {
			t.Errorf("field name %q is not lower case", f.Name)
		}
		if strings.HasPrefix(f.Name, ":") {
			if regular {
				t.Errorf("pseudo-header %q after a regular field", f.Name)
			}
			seenPseudo[f.Name]++
			if want, ok := wantPseudo[f.Name]; !ok {
				t.Errorf("unexpected pseudo-header %s: %q", f.Name, f.Value)
			} else if f.Value != want {
				t.Errorf("%s = %q, want %q", f.Name, f.Value, want)
			}
			continue
		}
		regular = true
		switch f.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "host":
			t.Errorf("request carries the field %q: %q (RFC 9113 8.2.2)", f.Name, f.Value)
		case "te":
			if f.Value != "trailers" {
				t.Errorf("te: %q, want trailers", f.Value)
			}
		}
	}
	for name := range wantPseudo {
		if seenPseudo[name] != 1 {
			t.Errorf("pseudo-header %s sent %d times, want once", name, seenPseudo[name])
		}
	}
	if r.get("x-mixed-case") != "v" {
		t.Errorf("x-mixed-case %q, want v", r.get("x-mixed-case"))
	}
	if r.get("te") != "trailers" {
		t.Errorf("te %q, want trailers (gRPC servers require it)", r.get("te"))
	}
	if !r.endStream {
		t.Errorf("HEADERS of a GET without body lacks END_STREAM")
	}
}

// TestTEOtherThanTrailersDropped pins RFC 9113 8.2.2: TE carries nothing but
// "trailers" in HTTP/2.
func TestTEOtherThanTrailersDropped(t *testing.T) {
	srv, got := recordingServer(t)
	tr := newTransport(t, Options{})
	req := newRequest(t, "GET", srv.url+"/", nil)
	req.Header.Set("Te", "gzip")
	resp, err := roundTrip(t, tr, req)
	if err != nil {
		t.Logf("RoundTrip refused a request with TE: gzip: %v", err)
		return
	}
	readAll(t, resp.Body)
	r := recv(t, got, waitShort, "the raw server to get the request")
	for _, f := range r.fields {
		if f.Name == "te" && f.Value != "trailers" {
			t.Errorf("request carries te: %q (RFC 9113 8.2.2)", f.Value)
		}
	}
}

// TestRoundTripFields pins the field-list form the proxy uses: the fields
// go out in their order, names lower-cased, repeated names kept apart,
// the connection-specific ones, Host, Content-Length, Trailer and a TE
// other than "trailers" left out, and req.Header not read at all.
func TestRoundTripFields(t *testing.T) {
	srv, got := recordingServer(t)
	tr := newTransport(t, Options{})
	req := newRequest(t, "POST", srv.url+"/svc/Method", strings.NewReader("msg"))
	req.Host = "grpc.test"
	req.Header.Set("X-From-Map", "must not be sent")
	fields := h1.Fields{
		{Name: "Content-Type", Value: "application/grpc"},
		{Name: "x-b", Value: "1"},
		{Name: "X-A", Value: "2"},
		{Name: "x-b", Value: "3"},
		{Name: "TE", Value: "trailers"},
		{Name: "Te", Value: "gzip"},
		{Name: "Connection", Value: "keep-alive"},
		{Name: "Keep-Alive", Value: "timeout=5"},
		{Name: "Host", Value: "other.test"},
		{Name: "Content-Length", Value: "99"},
		{Name: "Trailer", Value: "grpc-status"},
		{Name: "User-Agent", Value: ""},
	}
	ch := make(chan rtResult, 1)
	go func() {
		resp, _, err := tr.RoundTripFields(req, fields)
		ch <- rtResult{resp, err}
	}()
	expectBody(t, ch, "ok")
	r := recv(t, got, waitShort, "the raw server to get the request")
	var regular []string
	for _, f := range r.fields {
		switch {
		case f.Name == ":authority":
			if f.Value != "grpc.test" {
				t.Errorf(":authority %q, want grpc.test", f.Value)
			}
		case !strings.HasPrefix(f.Name, ":"):
			regular = append(regular, f.Name+": "+f.Value)
		}
	}
	want := []string{"content-type: application/grpc", "x-b: 1", "x-a: 2", "x-b: 3", "te: trailers", "content-length: 3"}
	if !slices.Equal(regular, want) {
		t.Errorf("fields sent:\n%q\nwant\n%q", regular, want)
	}
}

// TestRoundTripFieldsResponseHead: RoundTripFields gives the response
// head as a list, in order, names as sent, repeated names apart, and no
// header map, for a response with a body and one that ends with its head;
// a Content-Length the list disagrees on fails the response as the map's
// check does.
func TestRoundTripFieldsResponseHead(t *testing.T) {
	srv := startRaw(t, nil, func(c *rawConn) {
		for {
			r := c.nextRequest()
			if r == nil {
				return
			}
			switch r.get(":path") {
			case "/body":
				c.respond(r.streamID, 200, "ok", "content-type", "application/grpc", "x-a", "1", "x-a", "2", "content-length", "2")
			case "/empty":
				c.respond(r.streamID, 204, "", "x-e", "1")
			case "/bad":
				c.respond(r.streamID, 200, "ok", "content-length", "2", "content-length", "3")
			}
		}
	})
	tr := newTransport(t, Options{})
	get := func(path string) (*http.Response, h1.Fields, error) {
		return tr.RoundTripFields(newRequest(t, "GET", srv.url+path, nil), nil)
	}
	resp, head, err := get("/body")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := h1.Fields{{Name: "content-type", Value: "application/grpc"}, {Name: "x-a", Value: "1"}, {Name: "x-a", Value: "2"}, {Name: "content-length", Value: "2"}}
	if !slices.Equal(head, want) || resp.Header != nil || resp.ContentLength != 2 || string(body) != "ok" {
		t.Errorf("head %q, header map %v, length %d, body %q", head, resp.Header, resp.ContentLength, body)
	}
	resp, head, err = get("/empty")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(head, h1.Fields{{Name: "x-e", Value: "1"}}) || resp.StatusCode != 204 {
		t.Errorf("ended head: %d %q", resp.StatusCode, head)
	}
	resp.Body.Close()
	if _, _, err := get("/bad"); err == nil || !strings.Contains(err.Error(), "Content-Length") {
		t.Errorf("disagreeing Content-Length: %v, want the malformed response error", err)
	}
}

// TestAcksSettingsAndPing pins RFC 9113 6.5.3 and 6.7: the client acknowledges
// the server's SETTINGS and answers a PING with a PING ACK of the same data.
func TestAcksSettingsAndPing(t *testing.T) {
	type result struct {
		settingsAcked int
		pingAcks      [][8]byte
	}
	res := make(chan result, 1)
	data := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	srv := startRaw(t, []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 50}}, func(c *rawConn) {
		r := c.nextRequest()
		if r == nil {
			return
		}
		c.fr.WritePing(false, data)
		// Read until the PING ACK arrives (the request's own frames are
		// skipped by readFrame), then answer.
		for len(c.pingAcks) == 0 {
			if _, err := c.readFrame(); err != nil {
				res <- result{c.settingsAcked, c.pingAcks}
				return
			}
		}
		res <- result{c.settingsAcked, c.pingAcks}
		c.respond(r.streamID, 200, "ok")
		c.drain()
	})
	tr := newTransport(t, Options{})
	ch := goRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/", nil))
	r := recv(t, res, waitShort, "a PING ACK from the client")
	if r.settingsAcked != 1 {
		t.Errorf("client acknowledged the server's SETTINGS %d times, want 1", r.settingsAcked)
	}
	if len(r.pingAcks) != 1 || r.pingAcks[0] != data {
		t.Errorf("PING ACKs %v, want one with %v", r.pingAcks, data)
	}
	expectBody(t, ch, "ok")
}

// ---- 2. trailers ----

// TestTrailers pins that trailers declared with the Trailer header and sent
// with http.TrailerPrefix are in resp.Trailer after the body's EOF, with
// canonical keys, and not in resp.Header.
func TestTrailers(t *testing.T) {
	srv := startH2C(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(200)
		io.WriteString(w, "grpc-frame")
		w.(http.Flusher).Flush()
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set("Grpc-Message", "all good")
		w.Header().Set(http.TrailerPrefix+"x-undeclared", "late")
	}))
	tr := newTransport(t, Options{})
	req := newRequest(t, "POST", srv.url+"/pkg.Service/Method", bytes.NewReader([]byte("req")))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp := mustRoundTrip(t, tr, req)
	body, err := readAll(t, resp.Body)
	if err != nil || string(body) != "grpc-frame" {
		t.Fatalf("body %q, %v; want grpc-frame", body, err)
	}
	want := map[string][]string{"Grpc-Status": {"0"}, "Grpc-Message": {"all good"}, "X-Undeclared": {"late"}}
	for k, v := range want {
		if got := resp.Trailer[k]; !reflect.DeepEqual(got, v) {
			t.Errorf("resp.Trailer[%s] = %q, want %q (trailer %v)", k, got, v, resp.Trailer)
		}
		if got, ok := resp.Header[k]; ok {
			t.Errorf("resp.Header holds the trailer %s: %q", k, got)
		}
	}
	if resp.Header.Get("Content-Type") != "application/grpc" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
}

// TestTrailersRaw pins trailers as a second HEADERS frame with END_STREAM
// after DATA, from a raw server: values exact, multi-valued kept.
func TestTrailersRaw(t *testing.T) {
	srv := startRaw(t, nil, func(c *rawConn) {
		r := c.nextRequest()
		if r == nil {
			return
		}
		c.writeHeaders(r.streamID, false, hf(":status", "200", "content-type", "application/grpc"))
		c.writeData(r.streamID, false, []byte("payload"))
		c.writeHeaders(r.streamID, true, hf("grpc-status", "13", "grpc-message", "boom", "x-multi", "1", "x-multi", "2"))
		c.drain()
	})
	tr := newTransport(t, Options{})
	resp := mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/", nil))
	body, err := readAll(t, resp.Body)
	if err != nil || string(body) != "payload" {
		t.Fatalf("body %q, %v; want payload", body, err)
	}
	want := http.Header{"Grpc-Status": {"13"}, "Grpc-Message": {"boom"}, "X-Multi": {"1", "2"}}
	if !reflect.DeepEqual(resp.Trailer, want) {
		t.Errorf("resp.Trailer = %v, want %v", resp.Trailer, want)
	}
}

// TestTrailersOnly pins a gRPC trailers-only response (one HEADERS frame with
// END_STREAM): RoundTrip succeeds, the body is empty, and grpc-status is
// reported (in resp.Header as net/http does, or in resp.Trailer).
func TestTrailersOnly(t *testing.T) {
	srv := startRaw(t, nil, func(c *rawConn) {
		r := c.nextRequest()
		if r == nil {
			return
		}
		c.writeHeaders(r.streamID, true, hf(":status", "200", "content-type", "application/grpc",
			"grpc-status", "7", "grpc-message", "denied"))
		c.drain()
	})
	tr := newTransport(t, Options{})
	req := newRequest(t, "POST", srv.url+"/pkg.Service/Method", bytes.NewReader([]byte("x")))
	resp := mustRoundTrip(t, tr, req)
	if resp.StatusCode != 200 {
		t.Errorf("StatusCode %d, want 200", resp.StatusCode)
	}
	body, err := readAll(t, resp.Body)
	if err != nil || len(body) != 0 {
		t.Fatalf("body %q, %v; want empty, nil", body, err)
	}
	inHeader, inTrailer := resp.Header.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Status")
	switch {
	case inHeader == "7" && inTrailer == "":
		if resp.Header.Get("Grpc-Message") != "denied" {
			t.Errorf("Grpc-Message %q, want denied", resp.Header.Get("Grpc-Message"))
		}
	case inTrailer == "7" && inHeader == "":
		t.Logf("trailers-only fields reported in resp.Trailer")
		if resp.Trailer.Get("Grpc-Message") != "denied" {
			t.Errorf("Grpc-Message %q, want denied", resp.Trailer.Get("Grpc-Message"))
		}
	default:
		t.Errorf("Grpc-Status in header %q and in trailer %q; want 7 in exactly one", inHeader, inTrailer)
	}
}

// ---- 3. multiplexing ----

// TestMultiplexing pins 200 concurrent requests on one Transport each getting
// its own answer, with no limit, with MaxStreamsPerConn 10 and against a
// server allowing 10 concurrent streams; with a limit of 10, no connection
// ever has more than 10 handlers running.
func TestMultiplexing(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		srv        *http.HTTP2Config
		maxPerConn int // 0: don't check
	}{
		{name: "unlimited", opts: Options{}},
		{name: "client MaxStreamsPerConn 10", opts: Options{MaxStreamsPerConn: 10}, maxPerConn: 10},
		{name: "server MaxConcurrentStreams 10", srv: &http.HTTP2Config{MaxConcurrentStreams: 10}, maxPerConn: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const n = 200
			var mu sync.Mutex
			active := map[string]int{} // per server connection (remote address)
			maxActive := map[string]int{}
			var total atomic.Int64
			srv := startH2C(t, tc.srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				active[r.RemoteAddr]++
				maxActive[r.RemoteAddr] = max(maxActive[r.RemoteAddr], active[r.RemoteAddr])
				mu.Unlock()
				total.Add(1)
				defer func() {
					mu.Lock()
					active[r.RemoteAddr]--
					mu.Unlock()
					total.Add(-1)
				}()
				body, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				// Linger a little while others are in flight so that streams
				// overlap; not a timing assertion.
				for i := 0; i < 20 && total.Load() < 10; i++ {
					time.Sleep(time.Millisecond)
				}
				w.Header().Set("X-Echo-Id", r.Header.Get("X-Req-Id"))
				fmt.Fprintf(w, "%s|%s|%s", r.URL.Path, r.URL.RawQuery, body)
			}))
			tr := newTransport(t, tc.opts)
			errs := make(chan error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- oneEcho(tr, srv.url, i)
				}()
			}
			waitGroup(t, &wg, "200 concurrent requests to end")
			close(errs)
			failed := 0
			for err := range errs {
				if err != nil {
					failed++
					if failed <= 5 {
						t.Error(err)
					}
				}
			}
			if failed > 0 {
				t.Errorf("%d of %d concurrent requests failed", failed, n)
			}
			t.Logf("%d connections accepted", srv.accepted.Load())
			if tc.maxPerConn > 0 {
				mu.Lock()
				defer mu.Unlock()
				for conn, m := range maxActive {
					if m > tc.maxPerConn {
						t.Errorf("connection %s had %d handlers running at once, want at most %d", conn, m, tc.maxPerConn)
					}
				}
			}
		})
	}
}

// oneEcho does one request of TestMultiplexing and checks its answer.
func oneEcho(tr *Transport, base string, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	var body io.Reader
	method := "GET"
	reqBody := ""
	if i%2 == 1 {
		method = "POST"
		reqBody = fmt.Sprintf("body-%d-%x", i, pattern(uint64(i), 16))
		body = strings.NewReader(reqBody)
	}
	req, err := http.NewRequestWithContext(ctx, method, fmt.Sprintf("%s/echo/%d?i=%d", base, i, i), body)
	if err != nil {
		return err
	}
	req.Header.Set("X-Req-Id", strconv.Itoa(i))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("request %d: RoundTrip: %w", i, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("request %d: reading body: %w", i, err)
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("request %d: status %d, body %q", i, resp.StatusCode, got)
	}
	if id := resp.Header.Get("X-Echo-Id"); id != strconv.Itoa(i) {
		return fmt.Errorf("request %d: X-Echo-Id %q", i, id)
	}
	want := fmt.Sprintf("/echo/%d|i=%d|%s", i, i, reqBody)
	if string(got) != want {
		return fmt.Errorf("request %d: body %q, want %q", i, got, want)
	}
	return nil
}

// ---- 4. large bodies ----

// TestLargeBodies pins byte-exact 5 MiB bodies both ways (request and
// response flow control), echoed as they arrive and after the whole request,
// with default and with small windows on both sides, and four concurrent
// 1 MiB echoes sharing the connection window.
func TestLargeBodies(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Req-CL", strconv.FormatInt(r.ContentLength, 10))
		if r.URL.Query().Get("mode") == "readall" {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.Write(b)
			return
		}
		io.Copy(w, r.Body)
	})
	// With 16 KiB windows x/net's server gives credit back read by read
	// (TestBodyFramesFollowCredit pins the frames that keeps whole).
	tests := []struct {
		name string
		opts Options
		srv  *http.HTTP2Config
		size int
	}{
		{name: "default windows", size: 5 << 20},
		{
			name: "small windows",
			opts: Options{StreamWindow: 32 << 10, ConnWindow: 65535},
			srv:  &http.HTTP2Config{MaxReceiveBufferPerStream: 16 << 10, MaxReceiveBufferPerConnection: 65535},
			size: 5 << 20,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startH2C(t, tc.srv, echo)
			tr := newTransport(t, tc.opts)
			// A first bodiless exchange makes the client apply the server's
			// SETTINGS before the big bodies: x/net's server does not
			// tolerate DATA sent under the default window before its
			// SETTINGS arrived (which RFC 9113 6.9.2 allows).
			warm := mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/echo", nil))
			readAll(t, warm.Body)
			warm.Body.Close()
			for i, mode := range []string{"stream", "readall"} {
				t.Run(mode, func(t *testing.T) {
					want := pattern(uint64(100+i), tc.size)
					req := newRequest(t, "POST", srv.url+"/echo?mode="+mode, bytes.NewReader(want))
					resp := mustRoundTrip(t, tr, req)
					got, err := readAll(t, resp.Body)
					if err != nil {
						t.Fatalf("reading the echo: %v (after %d bytes)", err, len(got))
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("echo differs: %s", firstDiff(got, want))
					}
					if cl := resp.Header.Get("X-Req-CL"); cl != strconv.Itoa(len(want)) {
						t.Errorf("server saw ContentLength %s, want %d", cl, len(want))
					}
				})
			}
			t.Run("4 concurrent", func(t *testing.T) {
				errs := make(chan error, 4)
				for i := range 4 {
					go func() {
						want := pattern(uint64(200+i), 1<<20)
						ctx, cancel := context.WithTimeout(context.Background(), waitLong)
						defer cancel()
						req, _ := http.NewRequestWithContext(ctx, "POST", srv.url+"/echo", bytes.NewReader(want))
						resp, err := tr.RoundTrip(req)
						if err != nil {
							errs <- fmt.Errorf("echo %d: %w", i, err)
							return
						}
						defer resp.Body.Close()
						got, err := io.ReadAll(resp.Body)
						if err != nil {
							errs <- fmt.Errorf("echo %d: reading: %w", i, err)
							return
						}
						if !bytes.Equal(got, want) {
							errs <- fmt.Errorf("echo %d differs: %s", i, firstDiff(got, want))
							return
						}
						errs <- nil
					}()
				}
				for range 4 {
					if err := recv(t, errs, waitLong+waitShort, "a concurrent echo to end"); err != nil {
						t.Error(err)
					}
				}
			})
		})
	}
}

// TestRequestBodyRespectsServerWindow pins the client's send flow control
// against a raw server that grants a 1000-byte initial stream window
// (SETTINGS_INITIAL_WINDOW_SIZE) and replenishes it only after consuming:
// the client never sends more than granted (RFC 9113 6.9.1), keeps DATA
// frames within 16 KiB (SETTINGS_MAX_FRAME_SIZE default, 4.2), and the
// body arrives exact.
func TestRequestBodyRespectsServerWindow(t *testing.T) {
	want := pattern(7, 100<<10)
	type result struct {
		body []byte
		err  error
	}
	res := make(chan result, 1)
	srv := startRaw(t, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1000}}, func(c *rawConn) {
		c.autoWindow = false
		r := c.nextRequest()
		if r == nil {
			res <- result{err: errors.New("no request")}
			return
		}
		// Until the client acknowledges the SETTINGS, it may still be using
		// the default initial window of 65535 (RFC 9113 6.9.2).
		var sent, granted, connGranted int64
		var body []byte
		for {
			f, err := c.readFrame()
			if err != nil {
				res <- result{body, fmt.Errorf("reading the request body: %w", err)}
				return
			}
			d, ok := f.(*http2.DataFrame)
			if !ok || d.StreamID != r.streamID {
				continue
			}
			n := int64(d.Length)
			sent += n
			initial := int64(65535)
			if c.settingsAcked > 0 {
				initial = 1000
			}
			streamWin, connWin := initial+granted-sent, 65535+connGranted-sent
			if streamWin < 0 || connWin < 0 {
				res <- result{body, fmt.Errorf("client sent DATA past the window: stream window %d, connection window %d after %d body bytes (SETTINGS acked: %v)", streamWin, connWin, sent, c.settingsAcked > 0)}
				c.fr.WriteGoAway(r.streamID, http2.ErrCodeFlowControl, nil)
				return
			}
			if n > 16384 {
				res <- result{body, fmt.Errorf("DATA frame of %d bytes, above SETTINGS_MAX_FRAME_SIZE 16384", n)}
				return
			}
			body = append(body, d.Data()...)
			if d.StreamEnded() {
				break
			}
			// Replenish what was consumed.
			if n > 0 {
				c.fr.WriteWindowUpdate(0, uint32(n))
				connGranted += n
				c.fr.WriteWindowUpdate(r.streamID, uint32(n))
				granted += n
			}
		}
		res <- result{body, nil}
		c.respond(r.streamID, 200, "got it")
		c.drain()
	})
	tr := newTransport(t, Options{})
	ch := goRoundTrip(t, tr, newRequest(t, "POST", srv.url+"/upload", bytes.NewReader(want)))
	r := recv(t, res, waitLong, "the raw server to read the request body")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !bytes.Equal(r.body, want) {
		t.Fatalf("server got a body that differs: %s", firstDiff(r.body, want))
	}
	expectBody(t, ch, "got it")
}

// TestBodyFramesFollowCredit pins that DATA frames keep their size when a
// backend gives credit back frame by frame, as x/net's server does once
// its window runs low: with a 10,000-byte stream window, the rest of each
// 16 KiB chunk goes out with the next bytes rather than on its own, so
// 1 MiB takes about 1 MiB / 10,000 frames. Sent on its own, the rest
// splits the next credit in two at every chunk, frame sizes shrink, and
// the same upload takes thousands of frames (against x/net's server, a
// trickle of one-byte frames that made 5 MiB take seconds).
func TestBodyFramesFollowCredit(t *testing.T) {
	const window, size = 10000, 1 << 20
	want := pattern(11, size)
	type result struct {
		frames int
		body   []byte
		err    error
	}
	res := make(chan result, 1)
	srv := startRaw(t, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: window}}, func(c *rawConn) {
		// A first exchange makes the client apply the SETTINGS (and the
		// raw conn see its ACK) before the body.
		warm := c.nextRequest()
		if warm == nil {
			res <- result{err: errors.New("no first request")}
			return
		}
		c.respond(warm.streamID, 200, "warm")
		r := c.nextRequest()
		if r == nil {
			res <- result{err: errors.New("no upload")}
			return
		}
		var got result
		for {
			f, err := c.readFrame()
			if err != nil {
				got.err = fmt.Errorf("reading the body: %w", err)
				res <- got
				return
			}
			d, ok := f.(*http2.DataFrame)
			if !ok || d.StreamID != r.streamID {
				continue
			}
			got.frames++
			got.body = append(got.body, d.Data()...)
			if d.StreamEnded() {
				break
			}
		}
		res <- got
		c.respond(r.streamID, 200, "got it")
		c.drain()
	})
	tr := newTransport(t, Options{})
	expectBody(t, goRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/warm", nil)), "warm")
	ch := goRoundTrip(t, tr, newRequest(t, "POST", srv.url+"/upload", bytes.NewReader(want)))
	got := recv(t, res, waitLong, "the raw server to read the upload")
	if got.err != nil {
		t.Fatal(got.err)
	}
	if !bytes.Equal(got.body, want) {
		t.Fatalf("server got a body that differs: %s", firstDiff(got.body, want))
	}
	// Each frame but the last fills the window the credit reopened.
	if most := size/window + 2; got.frames > most {
		t.Errorf("upload of %d bytes took %d DATA frames, want at most %d", size, got.frames, most)
	}
	t.Logf("%d DATA frames", got.frames)
	expectBody(t, ch, "got it")
}

// ---- 5. bidirectional streaming ----

// TestBidiStreaming pins full duplex: RoundTrip returns on the response
// headers before the request body has a byte, and each chunk written to the
// request body comes back echoed before the next one is written.
func TestBidiStreaming(t *testing.T) {
	srv := startH2C(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		buf := make([]byte, 512)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	}))
	tr := newTransport(t, Options{})
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test ended")) })
	req := newRequest(t, "POST", srv.url+"/bidi", pr)
	req.ContentLength = -1
	rt := recv(t, goRoundTrip(t, tr, req), waitShort,
		"RoundTrip to return on the response headers while the request body is still open")
	if rt.err != nil {
		t.Fatalf("RoundTrip: %v", rt.err)
	}
	resp := rt.resp
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("StatusCode %d", resp.StatusCode)
	}
	for i := range 5 {
		chunk := []byte(fmt.Sprintf("chunk %d: %x\n", i, pattern(uint64(i), 20)))
		wrote := make(chan error, 1)
		go func() {
			_, err := pw.Write(chunk)
			wrote <- err
		}()
		if err := recv(t, wrote, waitShort, fmt.Sprintf("chunk %d to be taken from the request body", i)); err != nil {
			t.Fatalf("writing chunk %d: %v", i, err)
		}
		got := readFull(t, resp.Body, len(chunk))
		if !bytes.Equal(got, chunk) {
			t.Fatalf("echo of chunk %d is %q, want %q", i, got, chunk)
		}
	}
	pw.Close()
	rest, err := readAll(t, resp.Body)
	if err != nil || len(rest) != 0 {
		t.Fatalf("after the request body ended: %q, %v; want EOF", rest, err)
	}
}

// ---- 6. cancellation ----

// blockingHandler signals each request on started and blocks until its
// context is done (RST_STREAM or connection end), then reports on done. With
// ?body=N it first writes and flushes N bytes.
func blockingHandler(started chan<- string, done chan<- string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, _ := strconv.Atoi(r.URL.Query().Get("body")); n > 0 {
			w.WriteHeader(200)
			w.Write(pattern(3, n))
			w.(http.Flusher).Flush()
		}
		started <- r.URL.Path
		select {
		case <-r.Context().Done():
			done <- r.URL.Path
		case <-time.After(waitLong):
		}
	})
}

// TestCancelWaitingForHeaders pins that cancelling the context while waiting
// for the response headers makes RoundTrip return context.Canceled, the
// server's handler sees its context done, and the connection serves the
// next request.
func TestCancelWaitingForHeaders(t *testing.T) {
	started, done := make(chan string, 4), make(chan string, 4)
	mux := http.NewServeMux()
	mux.Handle("/block", blockingHandler(started, done))
	mux.HandleFunc("/after", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "after") })
	srv := startH2C(t, nil, mux)
	tr := newTransport(t, Options{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.url+"/block", nil)
	ch := goRoundTrip(t, tr, req)
	recv(t, started, waitShort, "the handler to start")
	cancel()
	rt := recv(t, ch, waitShort, "RoundTrip to return after cancel")
	if rt.err == nil {
		rt.resp.Body.Close()
		t.Fatalf("RoundTrip succeeded after cancel (status %d)", rt.resp.StatusCode)
	}
	if !errors.Is(rt.err, context.Canceled) {
		t.Errorf("RoundTrip error %v; want one that errors.Is context.Canceled", rt.err)
	}
	recv(t, done, waitShort, "the handler's context to be done (RST_STREAM)")

	resp := mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/after", nil))
	if b, err := readAll(t, resp.Body); err != nil || string(b) != "after" {
		t.Errorf("next request: body %q, %v", b, err)
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections accepted, want 1: a cancelled stream must not cost the connection", n)
	}
}

// TestCancelSendsRSTStreamCancel pins the frame: cancelling a request sends
// RST_STREAM with CANCEL ("the stream is no longer needed", RFC 9113 7)
// on its stream, not GOAWAY nor a closed connection.
func TestCancelSendsRSTStreamCancel(t *testing.T) {
	type result struct {
		stream uint32
		frame  string
		code   http2.ErrCode
	}
	started := make(chan struct{}, 1)
	res := make(chan result, 1)
	srv := startRaw(t, nil, func(c *rawConn) {
		r := c.nextRequest()
		if r == nil {
			return
		}
		started <- struct{}{}
		for {
			f, err := c.readFrame()
			if err != nil {
				res <- result{r.streamID, "connection end: " + err.Error(), 0}
				return
			}
			switch f := f.(type) {
			case *http2.RSTStreamFrame:
				res <- result{f.StreamID, "RST_STREAM", f.ErrCode}
				c.drain()
				return
			case *http2.GoAwayFrame:
				res <- result{r.streamID, "GOAWAY", f.ErrCode}
				return
			}
		}
	})
	tr := newTransport(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.url+"/", nil)
	ch := goRoundTrip(t, tr, req)
	recv(t, started, waitShort, "the request to reach the server")
	cancel()
	rt := recv(t, ch, waitShort, "RoundTrip to return after cancel")
	if rt.err == nil {
		rt.resp.Body.Close()
		t.Fatal("RoundTrip succeeded after cancel")
	}
	r := recv(t, res, waitShort, "a frame from the client after cancel")
	if r.frame != "RST_STREAM" || r.code != http2.ErrCodeCancel || r.stream != 1 {
		t.Errorf("after cancel the server got %s (stream %d, code %v), want RST_STREAM CANCEL on stream 1", r.frame, r.stream, r.code)
	}
}

// TestCancelWhileReadingBody pins that cancelling the context while the body
// is being read makes Read return an error (not EOF) and resets the stream.
func TestCancelWhileReadingBody(t *testing.T) {
	started, done := make(chan string, 4), make(chan string, 4)
	srv := startH2C(t, nil, blockingHandler(started, done))
	tr := newTransport(t, Options{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.url+"/stream?body=1000", nil)
	resp := mustRoundTrip(t, tr, req)
	recv(t, started, waitShort, "the handler to start")
	got := readFull(t, resp.Body, 1000)
	if !bytes.Equal(got, pattern(3, 1000)) {
		t.Fatalf("first 1000 bytes differ")
	}
	cancel()
	rest, err := readAll(t, resp.Body)
	if err == nil {
		t.Fatalf("Read after cancel ended in EOF (%d more bytes), want an error", len(rest))
	}
	recv(t, done, waitShort, "the handler's context to be done (RST_STREAM)")
}

// TestCloseBodyEarly pins that closing resp.Body before EOF resets the stream
// (the handler writing an endless body sees its context done), and the
// connection goes on serving.
func TestCloseBodyEarly(t *testing.T) {
	handlerEnd := make(chan string, 2)
	mux := http.NewServeMux()
	mux.HandleFunc("/endless", func(w http.ResponseWriter, r *http.Request) {
		chunk := pattern(5, 32<<10)
		deadline := time.Now().Add(waitLong)
		for time.Now().Before(deadline) {
			if _, err := w.Write(chunk); err != nil {
				handlerEnd <- "write error"
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				handlerEnd <- "context done"
				return
			default:
			}
		}
		handlerEnd <- "deadline"
	})
	mux.HandleFunc("/after", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "after") })
	srv := startH2C(t, nil, mux)
	tr := newTransport(t, Options{})

	resp := mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/endless", nil))
	got := readFull(t, resp.Body, 100<<10)
	if !bytes.Equal(got[:32<<10], pattern(5, 32<<10)) {
		t.Fatal("body differs")
	}
	closed := make(chan error, 1)
	go func() { closed <- resp.Body.Close() }()
	recv(t, closed, waitShort, "Body.Close to return on an endless body")
	if how := recv(t, handlerEnd, waitShort, "the handler to see the stream reset"); how == "deadline" {
		t.Fatal("the handler wrote until its deadline: the stream was not reset")
	}

	resp = mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/after", nil))
	if b, err := readAll(t, resp.Body); err != nil || string(b) != "after" {
		t.Errorf("next request: body %q, %v", b, err)
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections accepted, want 1: an early Body.Close must not cost the connection", n)
	}
	if n := srv.closed.Load(); n != 0 {
		t.Errorf("server saw %d connections end, want 0", n)
	}
}

// ---- 7. server resets and GOAWAY ----

// TestServerResetAfterHeaders pins that RST_STREAM INTERNAL_ERROR after the
// response headers makes Body.Read fail with x/net's http2.StreamError
// carrying the code and stream.
func TestServerResetAfterHeaders(t *testing.T) {
	srv := startRaw(t, nil, func(c *rawConn) {
		r := c.nextRequest()
		if r == nil {
			return
		}
		c.writeHeaders(r.streamID, false, hf(":status", "200"))
		c.writeData(r.streamID, false, []byte("partial"))
		c.fr.WriteRSTStream(r.streamID, http2.ErrCodeInternal)
		c.drain()
	})
	tr := newTransport(t, Options{})
	resp := mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/", nil))
	got, err := readAll(t, resp.Body)
	if err == nil {
		t.Fatalf("body %q read to EOF; want an error from RST_STREAM", got)
	}
	if !strings.HasPrefix("partial", string(got)) {
		t.Errorf("body before the error %q is not a prefix of the data sent", got)
	}
	var se http2.StreamError
	if !errors.As(err, &se) {
		t.Fatalf("Read error %v (%T); want one that errors.As http2.StreamError", err, err)
	}
	if se.Code != http2.ErrCodeInternal || se.StreamID != 1 {
		t.Errorf("StreamError{StreamID: %d, Code: %v}, want stream 1, INTERNAL_ERROR", se.StreamID, se.Code)
	}
}

// TestRefusedStreamRetried pins that a GET refused with RST_STREAM
// REFUSED_STREAM before any response is retried (RFC 9113 8.7) and succeeds.
func TestRefusedStreamRetried(t *testing.T) {
	var requests atomic.Int64
	srv := startRaw(t, nil, func(c *rawConn) {
		for {
			r := c.nextRequest()
			if r == nil {
				return
			}
			if requests.Add(1) == 1 {
				c.fr.WriteRSTStream(r.streamID, http2.ErrCodeRefusedStream)
				continue
			}
			c.respond(r.streamID, 200, "second try", "x-path", r.get(":path"))
		}
	})
	tr := newTransport(t, Options{})
	resp, err := roundTrip(t, tr, newRequest(t, "GET", srv.url+"/refused?x=1", nil))
	if err != nil {
		t.Fatalf("RoundTrip: %v; want the refused request retried", err)
	}
	if b, err := readAll(t, resp.Body); err != nil || string(b) != "second try" {
		t.Errorf("body %q, %v; want second try", b, err)
	}
	if p := resp.Header.Get("X-Path"); p != "/refused?x=1" {
		t.Errorf("retried request's :path %q", p)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("server got %d requests, want 2", n)
	}
}

// TestGoAwayRetried pins that a bodiless request on a stream above a GOAWAY's
// last stream ID is retried on a new connection (RFC 9113 6.8), whether the
// server keeps the old connection open or closes it.
func TestGoAwayRetried(t *testing.T) {
	for _, closeAfter := range []bool{false, true} {
		t.Run(fmt.Sprintf("close=%v", closeAfter), func(t *testing.T) {
			var answeredOn atomic.Int64
			answeredOn.Store(-1)
			srv := startRaw(t, nil, func(c *rawConn) {
				if c.index == 0 {
					r := c.nextRequest()
					if r == nil {
						return
					}
					c.fr.WriteGoAway(r.streamID-1, http2.ErrCodeNo, []byte("going away"))
					if !closeAfter {
						c.drain()
					}
					return
				}
				for {
					r := c.nextRequest()
					if r == nil {
						return
					}
					answeredOn.Store(int64(c.index))
					c.respond(r.streamID, 200, "new conn")
				}
			})
			tr := newTransport(t, Options{})
			resp, err := roundTrip(t, tr, newRequest(t, "GET", srv.url+"/", nil))
			if err != nil {
				t.Fatalf("RoundTrip: %v; want the request retried on a new connection", err)
			}
			if b, err := readAll(t, resp.Body); err != nil || string(b) != "new conn" {
				t.Errorf("body %q, %v; want new conn", b, err)
			}
			if got := answeredOn.Load(); got != 1 {
				t.Errorf("answered on connection %d, want 1 (the second)", got)
			}
			// A further request goes to a connection that is not going away.
			resp2, err := roundTrip(t, tr, newRequest(t, "GET", srv.url+"/again", nil))
			if err != nil {
				t.Fatalf("next RoundTrip: %v", err)
			}
			if b, err := readAll(t, resp2.Body); err != nil || string(b) != "new conn" {
				t.Errorf("next body %q, %v", b, err)
			}
			if n := srv.accepted.Load(); n != 2 {
				t.Errorf("%d connections accepted, want 2", n)
			}
		})
	}
}

// ---- 8. limits ----

// TestMaxResponseHeaderBytes pins that a response head above
// MaxResponseHeaderBytes fails RoundTrip (neither hangs nor drops fields),
// one below it succeeds, including one spread over CONTINUATION frames, and
// the default limit (1 MiB) holds against a 2 MiB head.
func TestMaxResponseHeaderBytes(t *testing.T) {
	bigValue := func(n int) string { return fmt.Sprintf("%x", pattern(uint64(n), n/2)) }
	tests := []struct {
		name    string
		limit   int
		fields  []hpack.HeaderField // besides :status
		wantErr bool
	}{
		{name: "under 4 KiB", limit: 4096, fields: hf("x-big", bigValue(3000)), wantErr: false},
		{name: "over 4 KiB", limit: 4096, fields: hf("x-big", bigValue(5000)), wantErr: true},
		{name: "over 4 KiB in many fields", limit: 4096, fields: hf(
			"x-a", bigValue(1000), "x-b", bigValue(1000), "x-c", bigValue(1000), "x-d", bigValue(1000), "x-e", bigValue(1000)), wantErr: true},
		{name: "100 KiB in CONTINUATIONs under default", limit: 0, fields: hf("x-big", bigValue(100<<10)), wantErr: false},
		{name: "2 MiB over default", limit: 0, fields: func() []hpack.HeaderField {
			var fs []hpack.HeaderField
			for i := range 64 {
				fs = append(fs, hf(fmt.Sprintf("x-big-%d", i), bigValue(32<<10))...)
			}
			return fs
		}(), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRaw(t, nil, func(c *rawConn) {
				for {
					r := c.nextRequest()
					if r == nil {
						return
					}
					if r.get(":path") == "/small" {
						c.respond(r.streamID, 200, "small")
						continue
					}
					if err := c.writeHeaders(r.streamID, false, append(hf(":status", "200"), tc.fields...)); err != nil {
						return
					}
					c.writeData(r.streamID, true, []byte("body"))
				}
			})
			tr := newTransport(t, Options{MaxResponseHeaderBytes: tc.limit})
			resp, err := roundTrip(t, tr, newRequest(t, "GET", srv.url+"/", nil))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("RoundTrip succeeded with %d header fields; want an error", len(resp.Header))
				}
				// The Transport goes on serving the address.
				resp, err := roundTrip(t, tr, newRequest(t, "GET", srv.url+"/small", nil))
				if err != nil {
					t.Fatalf("request after the oversized head: %v", err)
				}
				if b, err := readAll(t, resp.Body); err != nil || string(b) != "small" {
					t.Errorf("request after the oversized head: body %q, %v", b, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			for _, f := range tc.fields {
				if got := resp.Header.Get(f.Name); got != f.Value {
					t.Errorf("header %s has %d bytes, want %d", f.Name, len(got), len(f.Value))
				}
			}
			if b, err := readAll(t, resp.Body); err != nil || string(b) != "body" {
				t.Errorf("body %q, %v", b, err)
			}
		})
	}
}

// TestStreamWindowViolation pins that a server sending more DATA than the
// stream's receive window fails the request with a flow-control error: the
// client sends RST_STREAM or GOAWAY with FLOW_CONTROL_ERROR (RFC 9113
// 6.9.1) and the body does not read to EOF.
func TestStreamWindowViolation(t *testing.T) {
	sent := make(chan int64, 1)
	code := make(chan string, 1)
	srv := startRaw(t, nil, func(c *rawConn) {
		c.autoWindow = false
		r := c.nextRequest()
		if r == nil {
			return
		}
		window := c.clientInitialWindow() + c.streamUpdates[r.streamID]
		connWindow := 65535 + c.connUpdates
		t.Logf("client's windows before the response: stream %d, connection %d", window, connWindow)
		c.writeHeaders(r.streamID, false, hf(":status", "200"))
		c.writeData(r.streamID, false, pattern(9, int(window)+1000))
		sent <- window
		for {
			f, err := c.readFrame()
			if err != nil {
				code <- "connection ended without RST_STREAM or GOAWAY: " + err.Error()
				return
			}
			switch f := f.(type) {
			case *http2.RSTStreamFrame:
				if f.StreamID == r.streamID {
					code <- "RST_STREAM " + f.ErrCode.String()
					c.drain()
					return
				}
			case *http2.GoAwayFrame:
				code <- "GOAWAY " + f.ErrCode.String()
				return
			}
		}
	})
	tr := newTransport(t, Options{StreamWindow: 65535, ConnWindow: 1 << 20})
	resp, err := roundTrip(t, tr, newRequest(t, "GET", srv.url+"/", nil))
	window := recv(t, sent, waitShort, "the raw server to send the DATA")
	t.Logf("client's stream window was %d; the server sent %d", window, window+1000)
	// The body is read only after the reset: a read before it would give
	// the server more window, making the excess legal.
	got := recv(t, code, waitShort, "the client's RST_STREAM or GOAWAY")
	if got != "RST_STREAM FLOW_CONTROL_ERROR" && got != "GOAWAY FLOW_CONTROL_ERROR" {
		t.Errorf("server got %s; want RST_STREAM or GOAWAY FLOW_CONTROL_ERROR", got)
	}
	if err == nil {
		body, rerr := readAll(t, resp.Body)
		if rerr == nil {
			t.Errorf("body of %d bytes read to EOF; want an error", len(body))
		}
	}
}

// TestSilentServer pins that RoundTrip returns by the context's deadline,
// with context.DeadlineExceeded, against a server that accepts the TCP
// connection and never answers, and one that does the HTTP/2 handshake and
// never answers the request.
func TestSilentServer(t *testing.T) {
	for _, kind := range []string{"tcp", "h2 handshake"} {
		t.Run(kind, func(t *testing.T) {
			var addr string
			if kind == "tcp" {
				addr = startSilent(t)
			} else {
				addr = startRaw(t, nil, func(c *rawConn) { c.drain() }).addr
			}
			tr := newTransport(t, Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
			rt := recv(t, goRoundTrip(t, tr, req), waitShort, "RoundTrip to return after its deadline")
			if rt.err == nil {
				rt.resp.Body.Close()
				t.Fatal("RoundTrip succeeded against a silent server")
			}
			if !errors.Is(rt.err, context.DeadlineExceeded) {
				t.Errorf("error %v; want one that errors.Is context.DeadlineExceeded", rt.err)
			}
		})
	}
}

// ---- 9. connection failures ----

// TestConnectionClosedMidBody pins that a TCP close in the middle of a body
// is an error from Read, not EOF, with and without content-length.
func TestConnectionClosedMidBody(t *testing.T) {
	for _, cl := range []string{"", "100"} {
		t.Run("content-length="+cl, func(t *testing.T) {
			srv := startRaw(t, nil, func(c *rawConn) {
				r := c.nextRequest()
				if r == nil {
					return
				}
				fields := hf(":status", "200")
				if cl != "" {
					fields = append(fields, hf("content-length", cl)...)
				}
				c.writeHeaders(r.streamID, false, fields)
				c.writeData(r.streamID, false, []byte("partial"))
				// returning closes the connection
			})
			tr := newTransport(t, Options{})
			resp := mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/", nil))
			got, err := readAll(t, resp.Body)
			if err == nil {
				t.Fatalf("body %q read to EOF after the connection closed; want an error", got)
			}
		})
	}
}

// TestDialError pins that a dial to a closed port fails with a *net.OpError
// whose Op is "dial".
func TestDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tr := newTransport(t, Options{DialTimeout: waitShort})
	resp, err := roundTrip(t, tr, newRequest(t, "GET", "http://"+addr+"/", nil))
	if err == nil {
		t.Fatalf("RoundTrip to a closed port succeeded: %d", resp.StatusCode)
	}
	if resp != nil {
		t.Errorf("non-nil response with an error")
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("error %v (%T); want one that errors.As *net.OpError", err, err)
	}
	if oe.Op != "dial" {
		t.Errorf("OpError.Op %q, want dial", oe.Op)
	}
}

// ---- 10. idle connections ----

// TestCloseIdleConnections pins that CloseIdleConnections closes an idle
// connection (the server sees it end) but does not cut a stream in flight;
// once that stream is done, a later call closes its connection.
func TestCloseIdleConnections(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/quick", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "quick") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first;")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(waitLong):
			return
		}
		io.WriteString(w, "second")
	})

	t.Run("idle", func(t *testing.T) {
		srv := startH2C(t, nil, mux)
		tr := newTransport(t, Options{})
		resp := mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/quick", nil))
		if b, err := readAll(t, resp.Body); err != nil || string(b) != "quick" {
			t.Fatalf("body %q, %v", b, err)
		}
		resp.Body.Close()
		if n := srv.closed.Load(); n != 0 {
			t.Fatalf("server saw %d connections end before CloseIdleConnections", n)
		}
		tr.CloseIdleConnections()
		eventually(t, waitShort, "the server to see the idle connection closed", func() bool { return srv.closed.Load() == 1 })
		// The Transport still works after it.
		resp = mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/quick", nil))
		if b, err := readAll(t, resp.Body); err != nil || string(b) != "quick" {
			t.Fatalf("after CloseIdleConnections: body %q, %v", b, err)
		}
		if n := srv.accepted.Load(); n != 2 {
			t.Errorf("%d connections accepted, want 2", n)
		}
	})

	t.Run("in flight", func(t *testing.T) {
		srv := startH2C(t, nil, mux)
		tr := newTransport(t, Options{})
		resp := mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/slow", nil))
		if got := readFull(t, resp.Body, len("first;")); string(got) != "first;" {
			t.Fatalf("got %q", got)
		}
		tr.CloseIdleConnections()
		close(release)
		rest, err := readAll(t, resp.Body)
		if err != nil || string(rest) != "second" {
			t.Fatalf("rest of the in-flight body %q, %v; want second, nil", rest, err)
		}
		resp.Body.Close()
		if n := srv.closed.Load(); n != 0 {
			t.Errorf("server saw %d connections end while a stream was in flight", n)
		}
		tr.CloseIdleConnections()
		eventually(t, waitShort, "the server to see the now idle connection closed", func() bool { return srv.closed.Load() == 1 })
	})
}

// TestIdleTimeout pins Options.IdleTimeout: a connection without streams is
// closed after it, one with a stream open longer than it is not.
func TestIdleTimeout(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/quick", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "quick") })
	mux.HandleFunc("/long", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		select {
		case <-time.After(600 * time.Millisecond): // three idle timeouts
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "b")
	})
	srv := startH2C(t, nil, mux)
	tr := newTransport(t, Options{IdleTimeout: 200 * time.Millisecond})

	resp := mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/long", nil))
	if b, err := readAll(t, resp.Body); err != nil || string(b) != "ab" {
		t.Fatalf("a stream open longer than IdleTimeout: body %q, %v; want ab", b, err)
	}
	resp.Body.Close()
	eventually(t, waitShort, "the idle connection to be closed after IdleTimeout", func() bool { return srv.closed.Load() == 1 })

	resp = mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/quick", nil))
	if b, err := readAll(t, resp.Body); err != nil || string(b) != "quick" {
		t.Fatalf("after the idle close: body %q, %v", b, err)
	}
}

// ---- 11. content-length mismatch ----

// TestContentLengthMismatch pins RFC 9113 8.1.1: DATA totalling other than
// the declared content-length is malformed; Read returns an error, not EOF.
func TestContentLengthMismatch(t *testing.T) {
	tests := []struct {
		name string
		cl   string
		data []string // DATA frames; END_STREAM on the last
	}{
		{name: "short", cl: "10", data: []string{"hello"}},
		{name: "short in two frames", cl: "10", data: []string{"hel", "lo"}},
		{name: "long", cl: "3", data: []string{"hello"}},
		{name: "long in two frames", cl: "3", data: []string{"he", "llo"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRaw(t, nil, func(c *rawConn) {
				r := c.nextRequest()
				if r == nil {
					return
				}
				c.writeHeaders(r.streamID, false, hf(":status", "200", "content-length", tc.cl))
				for i, d := range tc.data {
					c.fr.WriteData(r.streamID, i == len(tc.data)-1, []byte(d))
				}
				c.drain()
			})
			tr := newTransport(t, Options{})
			resp := mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/", nil))
			got, err := readAll(t, resp.Body)
			if err == nil {
				t.Fatalf("body %q read to EOF with content-length %s; want an error", got, tc.cl)
			}
		})
	}
}

// ---- beyond the list: RoundTripper contract and abort paths ----

// closeRecorder is a request body that records its Close.
type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error {
	c.closed.Store(true)
	return nil
}

// TestRequestBodyClosed pins the http.RoundTripper contract: RoundTrip
// closes the request body, on success and on errors (perhaps later).
func TestRequestBodyClosed(t *testing.T) {
	srv := startH2C(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	tr := newTransport(t, Options{})

	t.Run("success", func(t *testing.T) {
		body := &closeRecorder{Reader: strings.NewReader("payload")}
		req := newRequest(t, "POST", srv.url+"/", body)
		req.ContentLength = 7
		resp := mustRoundTrip(t, tr, req)
		readAll(t, resp.Body)
		eventually(t, waitShort, "the request body to be closed", body.closed.Load)
	})
	t.Run("dial error", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		body := &closeRecorder{Reader: strings.NewReader("payload")}
		req := newRequest(t, "POST", "http://"+addr+"/", body)
		req.ContentLength = 7
		if _, err := roundTrip(t, tr, req); err == nil {
			t.Fatal("RoundTrip to a closed port succeeded")
		}
		eventually(t, waitShort, "the request body to be closed after a dial error", body.closed.Load)
	})
}

// TestCancelWhileBodyWaitsForWindow pins that a request body waiting for
// send window ends when the request's context does, though nobody waits in
// RoundTrip or reads the response: the server gets RST_STREAM(CANCEL) and
// the body is closed. The server grants no window (SETTINGS_INITIAL_WINDOW_SIZE
// 0) and answers the head at once.
func TestCancelWhileBodyWaitsForWindow(t *testing.T) {
	got := make(chan string, 1)
	srv := startRaw(t, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}}, func(c *rawConn) {
		warm := c.nextRequest()
		if warm == nil {
			return
		}
		c.respond(warm.streamID, 200, "warm")
		r := c.nextRequest()
		if r == nil {
			got <- "no request"
			return
		}
		c.writeHeaders(r.streamID, false, hf(":status", "200"))
		for {
			f, err := c.readFrame()
			if err != nil {
				got <- "connection ended: " + err.Error()
				return
			}
			if rs, ok := f.(*http2.RSTStreamFrame); ok && rs.StreamID == r.streamID {
				got <- "RST_STREAM " + rs.ErrCode.String()
				c.drain()
				return
			}
		}
	})
	tr := newTransport(t, Options{})
	// The first exchange makes the client apply the zero window.
	expectBody(t, goRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/warm", nil)), "warm")
	body := &closeRecorder{Reader: strings.NewReader("payload")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", srv.url+"/upload", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 7
	resp, err := roundTrip(t, tr, req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	defer resp.Body.Close()
	cancel()
	if code := recv(t, got, waitShort, "the client's RST_STREAM after cancel"); code != "RST_STREAM CANCEL" {
		t.Errorf("server saw %s, want RST_STREAM CANCEL", code)
	}
	eventually(t, waitShort, "the request body to be closed", body.closed.Load)
}

// errBodyBroke is the error of a request body that breaks.
var errBodyBroke = errors.New("request body broke")

// TestRequestBodyErrorResetsStream pins that a request body failing midway
// resets the stream: the server's handler sees an error reading the body,
// not a short body ending in EOF, and RoundTrip fails.
func TestRequestBodyErrorResetsStream(t *testing.T) {
	type result struct {
		body []byte
		err  error
	}
	res := make(chan result, 1)
	srv := startH2C(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		res <- result{b, err}
		io.WriteString(w, "read it")
	}))
	tr := newTransport(t, Options{})
	pr, pw := io.Pipe()
	req := newRequest(t, "POST", srv.url+"/", pr)
	req.ContentLength = -1
	ch := goRoundTrip(t, tr, req)
	go func() {
		pw.Write([]byte("part"))
		pw.CloseWithError(errBodyBroke)
	}()
	r := recv(t, res, waitShort, "the handler to finish reading the request body")
	if r.err == nil {
		t.Errorf("handler read %q and EOF from a request whose body failed; want an error (stream reset)", r.body)
	}
	rt := recv(t, ch, waitShort, "RoundTrip to return")
	if rt.err == nil {
		defer rt.resp.Body.Close()
		if b, err := readAll(t, rt.resp.Body); err == nil {
			t.Errorf("RoundTrip and Read succeeded (%q) though the request body failed", b)
		}
	} else {
		t.Logf("RoundTrip error: %v", rt.err)
	}
}

// TestConcurrentCancellation runs, at once on one connection, requests that
// complete, that are cancelled before their head, cancelled while reading
// their body, and whose body is closed early: the complete ones are exact,
// the others fail and their handlers see their context done, and the
// connection serves a later request. Meant for -race.
func TestConcurrentCancellation(t *testing.T) {
	const n = 60
	var started [n]chan struct{}
	for i := range started {
		started[i] = make(chan struct{})
	}
	var handlersDone atomic.Int64
	chunk := pattern(11, 4096)
	srv := startH2C(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("i"))
		mode := i % 4
		ctx := r.Context()
		wait := func() {
			select {
			case <-ctx.Done():
				handlersDone.Add(1)
			case <-time.After(waitLong):
			}
		}
		switch mode {
		case 0: // complete
			for range 8 {
				w.Write(chunk)
				w.(http.Flusher).Flush()
			}
		case 1: // cancelled while reading the body
			w.Write(chunk)
			w.(http.Flusher).Flush()
			close(started[i])
			wait()
		case 2: // cancelled before the head
			close(started[i])
			wait()
		case 3: // body closed early: write until reset
			deadline := time.Now().Add(waitLong)
			for time.Now().Before(deadline) {
				if _, err := w.Write(chunk); err != nil {
					handlersDone.Add(1)
					return
				}
				w.(http.Flusher).Flush()
				if ctx.Err() != nil {
					handlersDone.Add(1)
					return
				}
			}
		}
	}))
	tr := newTransport(t, Options{})
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- oneCancellation(tr, srv.url, i, started[i], chunk)
		}()
	}
	for range n {
		if err := recv(t, errs, waitLong, "a concurrent request to end"); err != nil {
			t.Error(err)
		}
	}
	wantDone := int64(n - n/4)
	eventually(t, waitShort, fmt.Sprintf("%d handlers to see their stream reset", wantDone), func() bool {
		return handlersDone.Load() == wantDone
	})
	resp := mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/?i=0", nil))
	b, err := readAll(t, resp.Body)
	if err != nil || !bytes.Equal(b, bytes.Repeat(chunk, 8)) {
		t.Errorf("later request: %d bytes, %v", len(b), err)
	}
	if a := srv.accepted.Load(); a != 1 {
		t.Errorf("%d connections accepted, want 1", a)
	}
}

// oneCancellation does request i of TestConcurrentCancellation.
func oneCancellation(tr *Transport, base string, i int, started <-chan struct{}, chunk []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/?i=%d", base, i), nil)
	if err != nil {
		return err
	}
	type rt struct {
		resp *http.Response
		err  error
	}
	ch := make(chan rt, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		ch <- rt{resp, err}
	}()
	if i%4 == 2 {
		select {
		case <-started:
		case <-time.After(waitShort):
			return fmt.Errorf("request %d: handler did not start", i)
		}
		cancel()
	}
	var r rt
	select {
	case r = <-ch:
	case <-time.After(waitShort):
		return fmt.Errorf("request %d (mode %d): RoundTrip did not return", i, i%4)
	}
	if i%4 == 2 {
		if r.err == nil {
			r.resp.Body.Close()
			return fmt.Errorf("request %d: RoundTrip succeeded after cancel", i)
		}
		return nil
	}
	if r.err != nil {
		return fmt.Errorf("request %d (mode %d): RoundTrip: %w", i, i%4, r.err)
	}
	defer r.resp.Body.Close()
	switch i % 4 {
	case 0:
		b, err := io.ReadAll(r.resp.Body)
		if err != nil || !bytes.Equal(b, bytes.Repeat(chunk, 8)) {
			return fmt.Errorf("request %d: %d bytes: %w", i, len(b), err)
		}
	case 1:
		p := make([]byte, len(chunk))
		if _, err := io.ReadFull(r.resp.Body, p); err != nil || !bytes.Equal(p, chunk) {
			return fmt.Errorf("request %d: first chunk: %w", i, err)
		}
		<-started
		cancel()
		if _, err := io.ReadAll(r.resp.Body); err == nil {
			return fmt.Errorf("request %d: body read to EOF after cancel", i)
		}
	case 3:
		p := make([]byte, 3*len(chunk))
		if _, err := io.ReadFull(r.resp.Body, p); err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		r.resp.Body.Close()
	}
	return nil
}

// TestContextEndsDuringDial pins that a request whose context ends while
// the connection it waits for is still being dialled returns by its
// deadline (waits end with the request's context), both for the request
// that started the dial and for one that joined it.
func TestContextEndsDuringDial(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var dials atomic.Int64
	tr := newTransport(t, Options{DialTimeout: time.Minute, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		select {
		case <-release:
			return nil, errors.New("released")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var chans []<-chan rtResult
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
		chans = append(chans, goRoundTrip(t, tr, req))
	}
	for i, ch := range chans {
		rt := recv(t, ch, waitShort, fmt.Sprintf("RoundTrip %d to return after its deadline while the dial hangs", i))
		if rt.err == nil {
			rt.resp.Body.Close()
			t.Fatalf("RoundTrip %d succeeded", i)
		}
		if !errors.Is(rt.err, context.DeadlineExceeded) {
			t.Errorf("RoundTrip %d: error %v; want one that errors.Is context.DeadlineExceeded", i, rt.err)
		}
	}
}

// TestZeroStreamsBounded pins that a backend allowing no streams
// (SETTINGS_MAX_CONCURRENT_STREAMS 0) fails the dial, once, instead of
// dialling without end.
func TestZeroStreamsBounded(t *testing.T) {
	srv := startRaw(t, []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 0}}, func(c *rawConn) {
		c.drain()
	})
	tr := newTransport(t, Options{})
	_, err := roundTrip(t, tr, newRequest(t, "GET", srv.url+"/", nil))
	if err == nil {
		t.Fatal("RoundTrip succeeded against a backend allowing no streams")
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections dialled; want 1", n)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Errorf("error %v; want a dial error, which the proxy fails over", err)
	}
}

// bufferedBody is a request body that says it is all in memory, and
// records whether it was read on RoundTrip's own goroutine.
type bufferedBody struct {
	*bytes.Reader
	inline atomic.Bool
}

func (b *bufferedBody) Buffered() bool { return true }
func (b *bufferedBody) Close() error   { return nil }
func (b *bufferedBody) Read(p []byte) (int, error) {
	buf := make([]byte, 64<<10)
	if strings.Contains(string(buf[:runtime.Stack(buf, false)]), "h2client.(*Transport).roundTrip(") {
		b.inline.Store(true)
	}
	return b.Reader.Read(p)
}

// TestBufferedBodySentInline pins that a body that is all in memory is
// sent by RoundTrip itself (no body writer goroutine), and arrives whole.
func TestBufferedBodySentInline(t *testing.T) {
	srv := startH2C(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	tr := newTransport(t, Options{})
	want := pattern(3, 100<<10) // past the initial 64 KiB window: waits for credit inline
	body := &bufferedBody{Reader: bytes.NewReader(want)}
	req := newRequest(t, "POST", srv.url+"/", body)
	req.ContentLength = int64(len(want))
	resp := mustRoundTrip(t, tr, req)
	got, err := readAll(t, resp.Body)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo of %d bytes (err %v); want the %d sent", len(got), err, len(want))
	}
	if !body.inline.Load() {
		t.Error("the buffered body was read on another goroutine; want RoundTrip's own")
	}
}

// TestMalformedHeadFailsOnlyItsStream pins the checks the reader makes
// while decoding a head (RFC 9113 8.2.1): an upper-case field name or a
// pseudo-header after a regular field fails that request, and the next
// request on the same connection is answered.
func TestMalformedHeadFailsOnlyItsStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields []hpack.HeaderField
	}{
		{"upper-case name", hf(":status", "200", "X-Bad", "1")},
		{"pseudo after regular", hf("x-a", "1", ":status", "200")},
		{"no :status", hf("x-a", "1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRaw(t, nil, func(c *rawConn) {
				r := c.nextRequest()
				if r == nil {
					return
				}
				c.writeHeaders(r.streamID, true, tc.fields)
				if r = c.nextRequest(); r == nil {
					return
				}
				c.respond(r.streamID, 200, "ok")
				c.drain()
			})
			tr := newTransport(t, Options{})
			if _, err := roundTrip(t, tr, newRequest(t, "GET", srv.url+"/", nil)); err == nil {
				t.Fatal("malformed head accepted")
			}
			resp := mustRoundTrip(t, tr, newRequest(t, "GET", srv.url+"/", nil))
			if got, err := readAll(t, resp.Body); err != nil || string(got) != "ok" {
				t.Fatalf("second request: %q, %v", got, err)
			}
			if n := srv.accepted.Load(); n != 1 {
				t.Errorf("%d connections; want 1 (a stream error, not a connection error)", n)
			}
		})
	}
}

// TestContinuationFlood pins the bound on CONTINUATION frames: a backend
// sending endless empty ones fails the connection instead of holding the
// reader.
func TestContinuationFlood(t *testing.T) {
	goAway := make(chan string, 1)
	srv := startRaw(t, nil, func(c *rawConn) {
		r := c.nextRequest()
		if r == nil {
			return
		}
		c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.streamID, BlockFragment: []byte{0x88}})
		for i := 0; i < 1000; i++ {
			if c.fr.WriteContinuation(r.streamID, false, nil) != nil {
				break
			}
		}
		for {
			f, err := c.readFrame()
			if err != nil {
				goAway <- "connection ended without GOAWAY: " + err.Error()
				return
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				goAway <- ga.ErrCode.String()
				return
			}
		}
	})
	tr := newTransport(t, Options{})
	if _, err := roundTrip(t, tr, newRequest(t, "GET", srv.url+"/", nil)); err == nil {
		t.Fatal("RoundTrip succeeded with a head that never ends")
	}
	if got := recv(t, goAway, waitShort, "the client's GOAWAY"); got != "ENHANCE_YOUR_CALM" {
		t.Errorf("server saw %s; want GOAWAY ENHANCE_YOUR_CALM", got)
	}
}
