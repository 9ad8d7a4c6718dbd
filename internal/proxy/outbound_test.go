package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

func TestNewOutboundHeaders(t *testing.T) {
	tests := []struct {
		name    string
		in      http.Header
		upgrade string
		want    http.Header
	}{{
		name: "hop-by-hop and Connection-named headers dropped",
		in: http.Header{
			"Connection": {"keep-alive, x-secret ,Foo"}, "Keep-Alive": {"timeout=5"}, "X-Secret": {"s"},
			"Foo": {"f"}, "Proxy-Authorization": {"p"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"},
			"Upgrade": {"websocket"}, "Accept": {"a", "b"}, "User-Agent": {"ua"},
		},
		want: http.Header{
			"Accept": {"a", "b"}, "User-Agent": {"ua"}, "X-Forwarded-For": {"10.0.0.1"},
			"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h.example"},
		},
	}, {
		name: "prior X-Forwarded-For appended, Te trailers kept, Go's User-Agent blanked",
		in:   http.Header{"X-Forwarded-For": {"1.1.1.1", "2.2.2.2"}, "Te": {"trailers, deflate"}},
		want: http.Header{
			"Te": {"trailers"}, "X-Forwarded-For": {"1.1.1.1, 2.2.2.2, 10.0.0.1"},
			"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h.example"}, "User-Agent": {""},
		},
	}, {
		name:    "upgrade re-added",
		in:      http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "User-Agent": {"ua"}},
		upgrade: "websocket",
		want: http.Header{
			"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "User-Agent": {"ua"},
			"X-Forwarded-For": {"10.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h.example"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Method: "GET", URL: &url.URL{Path: "/p"}, Host: "h.example", Header: tt.in,
				RequestURI: "/p", Close: true, ProtoMajor: 1, ProtoMinor: 1}
			before := tt.in.Clone()
			var o outbound
			o.fromHTTP(context.Background(), r, "http", "10.0.0.1", tt.upgrade, "", "/p", "/p")
			out := o.httpRequest(context.Background(), "http", "10.0.0.2:80")
			if !reflect.DeepEqual(out.Header, tt.want) {
				t.Errorf("header\n got %v\nwant %v", out.Header, tt.want)
			}
			if !reflect.DeepEqual(r.Header, before) {
				t.Errorf("inbound header modified: %v", r.Header)
			}
			if out.URL == r.URL || out.RequestURI != "" || out.Close || out.URL.String() != "http://10.0.0.2:80/p" {
				t.Errorf("URL shared or RequestURI/Close kept: %p %q %v %s", out.URL, out.RequestURI, out.Close, out.URL)
			}
		})
	}
}

// Values share one backing array; appending to one header (as a filter's
// Add does) must never overwrite the next one.
func TestNewOutboundAppendDoesNotClobber(t *testing.T) {
	r := &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Host: "h",
		Header: http.Header{"A": {"1"}, "B": {"2"}, "User-Agent": {"u"}}}
	var o outbound
	o.fromHTTP(context.Background(), r, "http", "10.0.0.1", "", "", "/", "/")
	out := o.httpRequest(context.Background(), "http", "10.0.0.2:80")
	for k := range out.Header {
		out.Header.Add(k, "added")
	}
	for k, vv := range out.Header {
		if len(vv) != 2 || vv[1] != "added" {
			t.Fatalf("%s = %q after Add", k, vv)
		}
	}
	if got := out.Header["A"][0] + out.Header["B"][0] + out.Header["X-Forwarded-For"][0]; got != "1210.0.0.1" {
		t.Errorf("first values changed: %q", got)
	}
}

func TestCopyResponseHeaderDropsHopByHop(t *testing.T) {
	resp := &http.Response{Header: http.Header{
		"Connection": {"close, X-Internal"}, "X-Internal": {"i"}, "Keep-Alive": {"timeout=5"},
		"Proxy-Authenticate": {"Basic"}, "Transfer-Encoding": {"chunked"}, "Upgrade": {"h2c"},
		"Content-Type": {"text/plain"}, "Set-Cookie": {"a=1", "b=2"},
	}}
	w := &discardWriter{h: http.Header{}}
	got := copyResponseHeader(w, resp, &filterState{})
	want := http.Header{"Content-Type": {"text/plain"}, "Set-Cookie": {"a=1", "b=2"}}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(w.h, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// A request header filter cannot change the framing of the request the
// backend gets: Content-Length comes from the body the proxy sends, and
// Transfer-Encoding, Trailer and Host set by a filter are not written as
// fields, on every path (the HTTP/1.1 engine, net/http's pooled path and
// its Transport; upstream.FramingField for all three). A
// filter that did would let a request body be read by the backend as a
// second request (smuggling).
func TestFilterCannotChangeRequestFraming(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, f := range []struct {
		name string
		mod  ir.HeaderModifier
	}{
		{"set Content-Length", ir.HeaderModifier{Set: []ir.Header{{Name: "Content-Length", Value: "0"}}}},
		{"remove Content-Length", ir.HeaderModifier{Remove: []string{"Content-Length"}}},
		{"add Transfer-Encoding", ir.HeaderModifier{Add: []ir.Header{{Name: "Transfer-Encoding", Value: "chunked"}}}},
		{"set Trailer", ir.HeaderModifier{Set: []ir.Header{{Name: "Trailer", Value: "X-T"}}}},
	} {
		t.Run(f.name, func(t *testing.T) {
			be := newWireBackend(t, scripted(echoAnswer))
			r := prefixRoute("r", "/", be.backend())
			mod := f.mod
			r.Filters = []ir.Filter{{RequestHeaders: &mod}}
			p := startWireProxy(t, r)
			for _, c := range []struct {
				name   string
				client *http.Client
				body   func() io.Reader
			}{
				{"HTTP/1.1 engine", newClient(), func() io.Reader { return strings.NewReader(smuggled) }},
				{"HTTP/2 pooled", h2cClient(), func() io.Reader { return strings.NewReader(smuggled) }},
				// No length known: the body goes through net/http's Transport.
				{"HTTP/2 Transport", h2cClient(), func() io.Reader { return io.MultiReader(strings.NewReader(smuggled)) }},
			} {
				resp, err := c.client.Post("http://"+p.addr+"/up", "text/plain", c.body())
				if err != nil {
					t.Fatalf("%s: POST: %v", c.name, err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := fmt.Sprintf("POST /up %d:%s", len(smuggled), smuggled)
				if resp.StatusCode != http.StatusOK || string(got) != want {
					t.Errorf("%s: status %d, backend read %q; want the whole body as one POST", c.name, resp.StatusCode, got)
				}
			}
			for _, seen := range be.requests() {
				if strings.Contains(seen, "GET /smuggled") && !strings.HasPrefix(seen, "POST") {
					t.Errorf("the backend read the body as a request of its own: %q", seen)
				}
			}
		})
	}
}
