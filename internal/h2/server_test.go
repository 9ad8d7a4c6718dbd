package h2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/false-systems/rauta/internal/poll"
)

// The tests below hold Server to what net/http's HTTP/2 server does for
// the same handler and client. Run them with -args -h2.ref to see net/http
// pass them.

// requestInfo is what echoHandler saw of a request.
type requestInfo struct {
	Method, Path, RawPath, RawQuery string
	URLHost, URLScheme              string
	Host, RequestURI, RemoteAddr    string
	Proto                           string
	ProtoMajor, ProtoMinor          int
	Header                          http.Header
	Trailer                         http.Header
	ContentLength                   int64
	Body                            string
	BodyErr                         string
	TLS                             bool
	ALPN                            string
	ServeCtx                        any
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	info := requestInfo{
		Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery,
		URLHost: r.URL.Host, URLScheme: r.URL.Scheme,
		Host: r.Host, RequestURI: r.RequestURI, RemoteAddr: r.RemoteAddr,
		Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Header: r.Header, Trailer: r.Trailer, ContentLength: r.ContentLength,
		Body: string(body), TLS: r.TLS != nil, ServeCtx: r.Context().Value(serveCtxKey{}),
	}
	if err != nil {
		info.BodyErr = err.Error()
	}
	if r.TLS != nil {
		info.ALPN = r.TLS.NegotiatedProtocol
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(info)
}

func doEcho(t *testing.T, c *http.Client, req *http.Request) requestInfo {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var info requestInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatalf("decode echo: %v", err)
	}
	return info
}

// checkCommon checks what every echoed request must show.
func checkCommon(t *testing.T, ts *testServer, info requestInfo) {
	t.Helper()
	if info.Proto != "HTTP/2.0" || info.ProtoMajor != 2 || info.ProtoMinor != 0 {
		t.Errorf("Proto %q %d.%d, want HTTP/2.0 2.0", info.Proto, info.ProtoMajor, info.ProtoMinor)
	}
	if host, _, err := net.SplitHostPort(info.RemoteAddr); err != nil || host != "127.0.0.1" {
		t.Errorf("RemoteAddr %q, want 127.0.0.1:port", info.RemoteAddr)
	}
	if info.URLHost != "" || info.URLScheme != "" {
		t.Errorf("URL has scheme %q host %q; net/http leaves both empty, like a request line's path", info.URLScheme, info.URLHost)
	}
	if info.TLS != ts.tls {
		t.Errorf("r.TLS set: %v, want %v", info.TLS, ts.tls)
	}
	if ts.tls && info.ALPN != "h2" {
		t.Errorf("r.TLS.NegotiatedProtocol %q, want h2", info.ALPN)
	}
	if info.ServeCtx != "serve-ctx" {
		t.Errorf("r.Context() does not carry the value of the context given to ServeConn (got %v)", info.ServeCtx)
	}
	for k := range info.Header {
		if strings.HasPrefix(k, ":") || k == "Host" {
			t.Errorf("r.Header has %q; pseudo-headers and Host do not belong there", k)
		}
	}
}

func TestRequestEcho(t *testing.T) {
	for _, mode := range []string{"tls", "h2c"} {
		t.Run(mode, func(t *testing.T) {
			ts := startServer(t, &Server{}, http.HandlerFunc(echoHandler), mode == "tls")
			c := ts.client(t, nil)

			t.Run("GET", func(t *testing.T) {
				req, _ := http.NewRequest("GET", ts.url("/echo/a%2Fb?x=1&y=two%20words"), nil)
				req.Host = "example.test:8443"
				req.Header.Add("X-Multi", "one")
				req.Header.Add("X-Multi", "two")
				req.Header.Set("User-Agent", "h2-test")
				req.AddCookie(&http.Cookie{Name: "a", Value: "1"})
				req.AddCookie(&http.Cookie{Name: "b", Value: "2"})
				info := doEcho(t, c, req)
				checkCommon(t, ts, info)
				type line struct{ Method, Path, RawPath, RawQuery, Host, RequestURI string }
				want := line{"GET", "/echo/a/b", "/echo/a%2Fb", "x=1&y=two%20words", "example.test:8443", "/echo/a%2Fb?x=1&y=two%20words"}
				got := line{info.Method, info.Path, info.RawPath, info.RawQuery, info.Host, info.RequestURI}
				if got != want {
					t.Errorf("request line\n got %+v\nwant %+v", got, want)
				}
				if v := info.Header["X-Multi"]; len(v) != 2 || v[0] != "one" || v[1] != "two" {
					t.Errorf("X-Multi %q, want [one two]", v)
				}
				if v := info.Header["User-Agent"]; len(v) != 1 || v[0] != "h2-test" {
					t.Errorf("User-Agent %q", v)
				}
				// The transport sends each cookie as its own field (RFC 9113
				// 8.2.3); the server must join them into one Cookie with "; ".
				if v := info.Header["Cookie"]; len(v) != 1 || v[0] != "a=1; b=2" {
					t.Errorf("Cookie %q, want [\"a=1; b=2\"]", v)
				}
				if info.ContentLength != 0 || info.Body != "" || info.BodyErr != "" {
					t.Errorf("body: ContentLength %d, %q, err %q; want 0, empty, no error", info.ContentLength, info.Body, info.BodyErr)
				}
			})

			t.Run("POST with length", func(t *testing.T) {
				req, _ := http.NewRequest("POST", ts.url("/form"), strings.NewReader("hello=world"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				info := doEcho(t, c, req)
				checkCommon(t, ts, info)
				if info.Method != "POST" || info.Path != "/form" || info.RequestURI != "/form" {
					t.Errorf("method %q path %q RequestURI %q", info.Method, info.Path, info.RequestURI)
				}
				if info.ContentLength != 11 || info.Body != "hello=world" || info.BodyErr != "" {
					t.Errorf("ContentLength %d body %q err %q, want 11 hello=world", info.ContentLength, info.Body, info.BodyErr)
				}
				if v := info.Header.Get("Content-Type"); v != "application/x-www-form-urlencoded" {
					t.Errorf("Content-Type %q", v)
				}
			})

			t.Run("POST streamed without length", func(t *testing.T) {
				pr, pw := io.Pipe()
				go func() {
					for i := range 3 {
						fmt.Fprintf(pw, "part%d;", i)
					}
					pw.Close()
				}()
				req, _ := http.NewRequest("POST", ts.url("/stream"), pr)
				req.ContentLength = -1
				info := doEcho(t, c, req)
				if info.ContentLength != -1 {
					t.Errorf("ContentLength %d, want -1 for a body without content-length", info.ContentLength)
				}
				if info.Body != "part0;part1;part2;" || info.BodyErr != "" {
					t.Errorf("body %q err %q", info.Body, info.BodyErr)
				}
			})

			t.Run("raw cookie fields", func(t *testing.T) {
				rc := ts.dialRaw(t)
				rc.request(1, "GET", "/c", true, "cookie", "a=1", "x-other", "v", "cookie", "b=2", "cookie", "c=3")
				r := rc.one(1)
				var info requestInfo
				if err := json.Unmarshal(r.body, &info); err != nil {
					t.Fatalf("%v: %v", r, err)
				}
				if v := info.Header["Cookie"]; len(v) != 1 || v[0] != "a=1; b=2; c=3" {
					t.Errorf("Cookie %q, want [\"a=1; b=2; c=3\"]", v)
				}
				if info.Host != "example.test" {
					t.Errorf("Host %q, want :authority example.test", info.Host)
				}
			})
		})
	}
}

func TestBodies(t *testing.T) {
	const size = 8 << 20
	big := pattern(size)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("X-Content-Length", strconv.FormatInt(r.ContentLength, 10))
			io.Copy(w, r.Body)
		case "/download":
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			for p := big[:n]; len(p) > 0; {
				k := min(len(p), 32<<10)
				if _, err := w.Write(p[:k]); err != nil {
					return
				}
				p = p[k:]
			}
		}
	})

	for _, mode := range []string{"tls", "h2c"} {
		t.Run(mode+"/upload 8 MiB echoed", func(t *testing.T) {
			ts := startServer(t, &Server{}, h, mode == "tls")
			resp, err := ts.client(t, nil).Post(ts.url("/echo"), "application/octet-stream", bytes.NewReader(big))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read echo after %d bytes: %v", len(got), err)
			}
			if cl := resp.Header.Get("X-Content-Length"); cl != strconv.Itoa(size) {
				t.Errorf("handler saw ContentLength %s, want %d", cl, size)
			}
			if len(got) != size || sum(got) != sum(big) {
				t.Errorf("echo: %d bytes sha256 %s, want %d bytes %s", len(got), sum(got), size, sum(big))
			}
		})
	}

	t.Run("download 8 MiB", func(t *testing.T) {
		ts := startTLS(t, &Server{}, h)
		resp, got := get(t, ts.client(t, nil), ts.url("/download?n="+strconv.Itoa(size)))
		if resp.StatusCode != 200 || len(got) != size || sum(got) != sum(big) {
			t.Errorf("status %d, %d bytes sha256 %s, want 200, %d bytes %s", resp.StatusCode, len(got), sum(got), size, sum(big))
		}
	})

	t.Run("slow reader with small windows", func(t *testing.T) {
		const n = 1 << 20
		ts := startTLS(t, &Server{}, h)
		// 64 KiB windows: the server must wait for the client's window
		// updates about 16 times over this body.
		c := ts.client(t, &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 10})
		resp, err := c.Get(ts.url("/download?n=" + strconv.Itoa(n)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got []byte
		buf := make([]byte, 1000)
		for i := 0; i < 10*n; i++ {
			k, err := resp.Body.Read(buf)
			got = append(got, buf[:k]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("read after %d bytes: %v", len(got), err)
			}
			if i%32 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		if len(got) != n || sum(got) != sum(big[:n]) {
			t.Errorf("got %d bytes sha256 %s, want %d bytes %s", len(got), sum(got), n, sum(big[:n]))
		}
	})
}

// TestFlowControlWindows checks at frame level that the server sends no
// more DATA than the client's stream and connection windows allow, and
// resumes on WINDOW_UPDATE.
func TestFlowControlWindows(t *testing.T) {
	const n = 200000
	body := pattern(n)
	ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	rc := ts.dialRaw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
	rc.autoWindow = false
	rc.request(1, "GET", "/", true)

	var got []byte
	ended := false
	// drain reads until the server has been quiet for a while.
	drain := func() {
		t.Helper()
		for range 10000 {
			f, err := rc.next(200 * time.Millisecond)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return
				}
				t.Fatalf("read: %v", err)
			}
			switch f := f.(type) {
			case *http2.DataFrame:
				got = append(got, f.Data()...)
				ended = ended || f.StreamEnded()
			case *http2.RSTStreamFrame:
				t.Fatalf("RST_STREAM %v", f.ErrCode)
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY %v", f.ErrCode)
			}
		}
	}

	drain()
	if len(got) != 1000 {
		t.Fatalf("with a 1000-byte stream window the server sent %d bytes, want exactly 1000 and then a pause", len(got))
	}
	rc.write(func() error { return rc.fr.WriteWindowUpdate(1, 5000) })
	drain()
	if len(got) != 6000 {
		t.Fatalf("after a 5000-byte WINDOW_UPDATE the server has sent %d bytes, want 6000", len(got))
	}
	// The stream window is now wide open; the connection's 65535 bytes
	// are the limit.
	rc.write(func() error { return rc.fr.WriteWindowUpdate(1, 1<<30) })
	drain()
	if len(got) != 65535 {
		t.Fatalf("with the connection window at 65535 the server has sent %d bytes, want 65535", len(got))
	}
	rc.write(func() error { return rc.fr.WriteWindowUpdate(0, 1<<20) })
	drain()
	if !ended || !bytes.Equal(got, body) {
		t.Errorf("after opening the connection window: %d of %d bytes, END_STREAM %v, equal %v", len(got), n, ended, bytes.Equal(got, body))
	}
}

func TestConcurrentStreams(t *testing.T) {
	const requests, inFlight = 200, 64
	var running, maxRunning atomic.Int32
	ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := running.Add(1)
		defer running.Add(-1)
		for m := maxRunning.Load(); now > m && !maxRunning.CompareAndSwap(m, now); m = maxRunning.Load() {
		}
		time.Sleep(2 * time.Millisecond)
		i := r.URL.Query().Get("i")
		w.Header().Set("X-I", i)
		n, _ := strconv.Atoi(i)
		w.Write(bytes.Repeat([]byte(i+","), n*37%5000))
	}))
	c := ts.client(t, nil)
	get(t, c, ts.url("/?i=0")) // one connection, before the burst

	sem := make(chan struct{}, inFlight)
	errs := make(chan error, requests)
	var wg sync.WaitGroup
	for i := 1; i <= requests; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			resp, err := c.Get(ts.url("/?i=" + strconv.Itoa(i)))
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			want := strings.Repeat(strconv.Itoa(i)+",", i*37%5000)
			switch {
			case err != nil:
				errs <- fmt.Errorf("request %d: body: %w", i, err)
			case resp.StatusCode != 200 || resp.Header.Get("X-I") != strconv.Itoa(i):
				errs <- fmt.Errorf("request %d: status %d X-I %q", i, resp.StatusCode, resp.Header.Get("X-I"))
			case string(body) != want:
				errs <- fmt.Errorf("request %d: body of %d bytes, want %d bytes of %q", i, len(body), len(want), strconv.Itoa(i)+",")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := ts.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want all streams on 1", n)
	}
	if maxRunning.Load() < 2 {
		t.Errorf("at most %d handlers ran at once; streams were not served concurrently", maxRunning.Load())
	}
}

func TestResponse(t *testing.T) {
	writeErrs := make(chan error, 10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/text":
			io.WriteString(w, "hello, world\n")
		case "/html":
			io.WriteString(w, "<!DOCTYPE html><html><body>hi</body></html>")
		case "/typed":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"a":1}`)
		case "/untyped":
			w.Header()["Content-Type"] = nil // net/http: suppresses sniffing
			io.WriteString(w, "hello")
		case "/encoded":
			w.Header().Set("Content-Encoding", "br")
			io.WriteString(w, "\x0b\x02\x80hello\x03")
		case "/empty":
		case "/badlength":
			w.Header().Set("Content-Length", "five") // dropped, as net/http does
			io.WriteString(w, "hello")
		case "/twice":
			w.WriteHeader(202)
			w.Header().Set("X-After", "1")
			w.WriteHeader(500)
			io.WriteString(w, "first wins")
		case "/status":
			code, _ := strconv.Atoi(r.URL.Query().Get("code"))
			w.Header()["X-Multi"] = []string{"a", "b"}
			w.Header()["Set-Cookie"] = []string{"s=1; Path=/", "t=2; HttpOnly"}
			w.Header().Set("X-Single", "v")
			w.WriteHeader(code)
			io.WriteString(w, "status body")
		case "/hop":
			w.Header().Set("Connection", "keep-alive")
			w.Header().Set("Transfer-Encoding", "chunked")
			w.Header().Set("X-Bad", "a\r\nb")
			w.Header().Set("X-Good", "ok")
			io.WriteString(w, "hop")
		case "/head":
			w.Header().Set("Content-Length", "1234")
			w.Header().Set("Content-Type", "text/plain")
			_, err := io.WriteString(w, "this body is not sent for HEAD")
			writeErrs <- err
		case "/204", "/304":
			code, _ := strconv.Atoi(r.URL.Path[1:])
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(code)
			_, err := io.WriteString(w, "no body allowed")
			writeErrs <- err
		}
	})
	ts := startTLS(t, &Server{}, h)
	c := ts.client(t, nil)

	t.Run("invalid content-length dropped", func(t *testing.T) {
		resp, body := get(t, c, ts.url("/badlength"))
		if resp.StatusCode != 200 || string(body) != "hello" || resp.ContentLength != 5 {
			t.Errorf("status %d body %q length %d, want 200 \"hello\" 5", resp.StatusCode, body, resp.ContentLength)
		}
	})

	t.Run("date and sniffed text", func(t *testing.T) {
		resp, body := get(t, c, ts.url("/text"))
		if resp.StatusCode != 200 || string(body) != "hello, world\n" {
			t.Errorf("status %d body %q; Write without WriteHeader means 200", resp.StatusCode, body)
		}
		d, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil || time.Since(d).Abs() > time.Minute {
			t.Errorf("Date %q: %v", resp.Header.Get("Date"), err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type %q, want sniffed text/plain; charset=utf-8", ct)
		}
		// net/http declares the length of a body the handler finished
		// before anything was flushed.
		if resp.ContentLength != 13 {
			t.Errorf("ContentLength %d, want 13 (net/http sends content-length for a complete small body)", resp.ContentLength)
		}
	})
	t.Run("sniffed html", func(t *testing.T) {
		resp, _ := get(t, c, ts.url("/html"))
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("Content-Type %q, want text/html; charset=utf-8", ct)
		}
	})
	t.Run("handler's type kept", func(t *testing.T) {
		resp, _ := get(t, c, ts.url("/typed"))
		if ct := resp.Header["Content-Type"]; len(ct) != 1 || ct[0] != "application/json" {
			t.Errorf("Content-Type %q, want [application/json]", ct)
		}
	})
	t.Run("nil Content-Type suppresses sniffing", func(t *testing.T) {
		resp, _ := get(t, c, ts.url("/untyped"))
		if ct, ok := resp.Header["Content-Type"]; ok {
			t.Errorf("Content-Type %q, want none", ct)
		}
	})
	t.Run("Content-Encoding suppresses sniffing", func(t *testing.T) {
		resp, _ := get(t, c, ts.url("/encoded"))
		if ct, ok := resp.Header["Content-Type"]; ok {
			t.Errorf("Content-Type %q, want none for an encoded body", ct)
		}
	})
	t.Run("empty handler", func(t *testing.T) {
		resp, body := get(t, c, ts.url("/empty"))
		if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != 0 {
			t.Errorf("status %d, %d bytes, ContentLength %d; want 200, empty, 0", resp.StatusCode, len(body), resp.ContentLength)
		}
	})
	t.Run("WriteHeader twice keeps the first", func(t *testing.T) {
		resp, body := get(t, c, ts.url("/twice"))
		if resp.StatusCode != 202 || string(body) != "first wins" {
			t.Errorf("status %d body %q, want 202 \"first wins\"", resp.StatusCode, body)
		}
		if v := resp.Header.Get("X-After"); v != "" {
			t.Errorf("X-After %q: a header set after WriteHeader was sent", v)
		}
	})
	t.Run("status and fields pass through", func(t *testing.T) {
		for _, code := range []int{200, 201, 206, 301, 404, 418, 500, 503, 599} {
			resp, body := get(t, c, ts.url("/status?code="+strconv.Itoa(code)))
			if resp.StatusCode != code || string(body) != "status body" {
				t.Errorf("code %d: got status %d body %q", code, resp.StatusCode, body)
			}
			if v := resp.Header["X-Multi"]; len(v) != 2 || v[0] != "a" || v[1] != "b" {
				t.Errorf("code %d: X-Multi %q, want [a b]", code, v)
			}
			if v := resp.Header["Set-Cookie"]; len(v) != 2 || v[0] != "s=1; Path=/" || v[1] != "t=2; HttpOnly" {
				t.Errorf("code %d: Set-Cookie %q, want two separate fields", code, v)
			}
			if v := resp.Header.Get("X-Single"); v != "v" {
				t.Errorf("code %d: X-Single %q", code, v)
			}
		}
	})
	t.Run("connection-specific and invalid fields dropped", func(t *testing.T) {
		rc := ts.dialRaw(t)
		rc.request(1, "GET", "/hop", true)
		r := rc.one(1)
		if r.status != "200" || string(r.body) != "hop" {
			t.Fatalf("%v body %q", r, r.body)
		}
		for _, name := range []string{"connection", "transfer-encoding", "x-bad"} {
			if v := r.header(name); v != nil {
				t.Errorf("response carries %s: %q (RFC 9113 8.2.2 / invalid value)", name, v)
			}
		}
		if v := r.header("x-good"); len(v) != 1 || v[0] != "ok" {
			t.Errorf("x-good %q", v)
		}
		for _, f := range r.fields {
			if f.Name != strings.ToLower(f.Name) {
				t.Errorf("field name %q is not lower case (RFC 9113 8.2.1)", f.Name)
			}
		}
	})
	t.Run("no body for HEAD, 204 and 304", func(t *testing.T) {
		rc := ts.dialRaw(t)
		rc.request(1, "HEAD", "/head", true)
		rc.request(3, "GET", "/204", true)
		rc.request(5, "GET", "/304", true)
		res, err := rc.collect(5*time.Second, 1, 3, 5)
		if err != nil {
			t.Fatalf("%v: %v %v %v", err, res[1], res[3], res[5])
		}
		for id, want := range map[uint32]string{1: "200", 3: "204", 5: "304"} {
			r := res[id]
			if r.status != want || !r.ended || r.reset || r.data != 0 {
				t.Errorf("stream %d: %v, %d DATA frames with payload; want %s, ended, no body", id, r, r.data, want)
			}
		}
		if v := res[1].header("content-length"); len(v) != 1 || v[0] != "1234" {
			t.Errorf("HEAD: content-length %q, want the handler's [1234]", v)
		}
		if v := res[3].header("content-length"); v != nil {
			t.Errorf("204 carries content-length %q (RFC 9110 8.6)", v)
		}
		if v := res[5].header("etag"); len(v) != 1 || v[0] != `"v1"` {
			t.Errorf("304: etag %q", v)
		}
		var errs []error
		for range 3 {
			select {
			case err := <-writeErrs:
				errs = append(errs, err)
			case <-time.After(2 * time.Second):
				t.Fatal("handlers did not report their Write results")
			}
		}
		notAllowed := 0
		for _, err := range errs {
			if errors.Is(err, http.ErrBodyNotAllowed) {
				notAllowed++
			}
		}
		if notAllowed != 2 {
			t.Errorf("Write results %v: want http.ErrBodyNotAllowed for 204 and 304 and nil for HEAD, like net/http", errs)
		}
	})
}

func TestInformational(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Link", "</b.js>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("X-Final", "yes")
			w.WriteHeader(200)
			io.WriteString(w, "ok")
		case "/continue":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "read %d", len(b))
		}
	})
	ts := startTLS(t, &Server{}, h)
	c := ts.client(t, nil)

	t.Run("103 Early Hints", func(t *testing.T) {
		type info struct {
			code int
			link []string
		}
		var mu sync.Mutex
		var infos []info
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				mu.Lock()
				infos = append(infos, info{code, h["Link"]})
				mu.Unlock()
				return nil
			},
		})
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.url("/hints"), nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || string(body) != "ok" || resp.Header.Get("X-Final") != "yes" {
			t.Errorf("final: status %d body %q err %v X-Final %q", resp.StatusCode, body, err, resp.Header.Get("X-Final"))
		}
		mu.Lock()
		defer mu.Unlock()
		if len(infos) != 2 || infos[0].code != 103 || infos[1].code != 103 ||
			fmt.Sprint(infos[0].link) != "[</a.css>; rel=preload]" || fmt.Sprint(infos[1].link) != "[</b.js>; rel=preload]" {
			t.Errorf("1xx responses %+v, want two 103 with Link </a.css> then </b.js>", infos)
		}
	})

	t.Run("raw 103 then 200", func(t *testing.T) {
		rc := ts.dialRaw(t)
		rc.request(1, "GET", "/hints", true)
		r := rc.one(1)
		if fmt.Sprint(r.infos) != "[103 103]" || r.status != "200" || string(r.body) != "ok" {
			t.Errorf("infos %v then %v body %q, want [103 103] then 200 ok", r.infos, r, r.body)
		}
	})

	// net/http answers Expect: 100-continue with a 100 when the handler
	// first reads the body.
	t.Run("100 Continue", func(t *testing.T) {
		c := ts.client(t, nil)
		c.Transport.(*http.Transport).ExpectContinueTimeout = 2 * time.Second
		var got100 atomic.Bool
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			Got100Continue: func() { got100.Store(true) },
		})
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.url("/continue"), strings.NewReader("0123456789"))
		req.Header.Set("Expect", "100-continue")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if string(body) != "read 10" {
			t.Errorf("body %q, want \"read 10\"", body)
		}
		if !got100.Load() {
			t.Error("no 100 Continue before the handler read the body")
		}
	})
}

func TestTrailers(t *testing.T) {
	reqTrailer := make(chan [2]string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/resp", "/resp-flushed", "/resp-nobody":
			w.Header().Set("Trailer", "X-T")
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(200)
			if r.URL.Path != "/resp-nobody" {
				io.WriteString(w, "body")
			}
			if r.URL.Path == "/resp-flushed" {
				http.NewResponseController(w).Flush()
				io.WriteString(w, "+more")
			}
			w.Header().Set("X-T", "t-value")
			w.Header().Set(http.TrailerPrefix+"X-U", "u-value")
		case "/req":
			_, declared := r.Trailer["X-Req-T"]
			b, err := io.ReadAll(r.Body)
			reqTrailer <- [2]string{fmt.Sprintf("declared %v, body %q, err %v", declared, b, err), r.Trailer.Get("X-Req-T")}
		}
	})
	ts := startTLS(t, &Server{}, h)
	c := ts.client(t, nil)

	for path, wantBody := range map[string]string{"/resp": "body", "/resp-flushed": "body+more", "/resp-nobody": ""} {
		t.Run("response "+path, func(t *testing.T) {
			resp, body := get(t, c, ts.url(path))
			if string(body) != wantBody {
				t.Errorf("body %q, want %q", body, wantBody)
			}
			if v := resp.Trailer.Get("X-T"); v != "t-value" {
				t.Errorf("declared trailer X-T %q, want t-value (trailers %v)", v, resp.Trailer)
			}
			if v := resp.Trailer.Get("X-U"); v != "u-value" {
				t.Errorf("TrailerPrefix trailer X-U %q, want u-value (trailers %v)", v, resp.Trailer)
			}
			if v := resp.Header.Get("X-T") + resp.Header.Get("X-U"); v != "" {
				t.Errorf("trailer values in the header: %q", v)
			}
		})
	}

	t.Run("raw response trailers end the stream", func(t *testing.T) {
		rc := ts.dialRaw(t)
		// The second response's trailers are encoded as fields sent
		// before (the connection's HPACK cache): the same values.
		for _, id := range []uint32{1, 3} {
			rc.request(id, "GET", "/resp", true)
			r := rc.one(id)
			got := map[string]string{}
			for _, f := range r.trailers {
				got[f.Name] = f.Value
			}
			if r.status != "200" || !r.ended || len(got) != 2 || got["x-t"] != "t-value" || got["x-u"] != "u-value" {
				t.Errorf("stream %d: %v, trailers %v; want x-t and x-u in a trailing HEADERS with END_STREAM", id, r, r.trailers)
			}
		}
	})

	t.Run("request trailers", func(t *testing.T) {
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("POST", ts.url("/req"), pr)
		req.Trailer = http.Header{"X-Req-T": nil}
		go func() {
			io.WriteString(pw, "payload")
			req.Trailer.Set("X-Req-T", "req-value")
			pw.Close()
		}()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		select {
		case got := <-reqTrailer:
			if got[0] != `declared true, body "payload", err <nil>` || got[1] != "req-value" {
				t.Errorf("handler saw %s and r.Trailer X-Req-T %q after the body; want declared, payload, req-value", got[0], got[1])
			}
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not report")
		}
	})
}

// TestResponseHeaderReuse: a connection's workers reuse the Header() map
// from one response to the next, and nothing a handler set (fields or
// trailers) reaches a later response.
func TestResponseHeaderReuse(t *testing.T) {
	var mu sync.Mutex
	maps := map[string]int{} // Header() maps seen, by address
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		maps[fmt.Sprintf("%p", w.Header())]++
		mu.Unlock()
		if r.URL.Path == "/set" {
			w.Header().Set("Trailer", "X-T")
			w.Header().Set("X-Set", "1")
			w.WriteHeader(200)
			io.WriteString(w, "set")
			w.Header().Set("X-T", "t")
			return
		}
		io.WriteString(w, "plain")
	})
	ts := startTLS(t, &Server{}, h)
	rc := ts.dialRaw(t)
	const rounds = 40
	for i := range uint32(rounds) {
		rc.request(4*i+1, "GET", "/set", true)
		if r := rc.one(4*i + 1); r.status != "200" || len(r.header("x-set")) != 1 || len(r.trailers) != 1 {
			t.Fatalf("round %d /set: %v, fields %v, trailers %v", i, r, r.fields, r.trailers)
		}
		rc.request(4*i+3, "GET", "/plain", true)
		r := rc.one(4*i + 3)
		if r.status != "200" || string(r.body) != "plain" {
			t.Fatalf("round %d /plain: %v", i, r)
		}
		for _, f := range r.fields {
			if f.Name != "content-type" && f.Name != "content-length" && f.Name != "date" {
				t.Fatalf("round %d /plain carries %s: %q, left by the previous response", i, f.Name, f.Value)
			}
		}
		if len(r.trailers) != 0 {
			t.Fatalf("round %d /plain has trailers %v", i, r.trailers)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(maps) >= 2*rounds && !*refServer {
		t.Fatalf("%d responses used %d Header() maps: none was reused, so this test proves nothing", 2*rounds, len(maps))
	}
}

func TestFlushAndDuplex(t *testing.T) {
	t.Run("Flush sends before the handler returns", func(t *testing.T) {
		readFirst, release := released()
		defer release() // before the server's cleanup, which waits for ServeConn
		ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, isFlusher := w.(http.Flusher)
			w.Header().Set("X-Flusher", strconv.FormatBool(isFlusher))
			io.WriteString(w, "chunk1")
			if err := http.NewResponseController(w).Flush(); err != nil {
				io.WriteString(w, "flush error: "+err.Error())
				return
			}
			select {
			case <-readFirst:
				io.WriteString(w, "chunk2")
			case <-time.After(5 * time.Second):
				io.WriteString(w, "timeout")
			}
		}))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.url("/"), nil)
		resp, err := ts.client(t, nil).Do(req)
		if err != nil {
			t.Fatalf("headers did not arrive while the handler waited: %v", err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("X-Flusher") != "true" {
			t.Error("ResponseWriter does not implement http.Flusher")
		}
		first := make([]byte, 6)
		if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "chunk1" {
			t.Fatalf("first chunk %q, %v: Flush did not send it before the handler returned", first, err)
		}
		release()
		rest, err := io.ReadAll(resp.Body)
		if err != nil || string(rest) != "chunk2" {
			t.Errorf("rest %q %v, want chunk2", rest, err)
		}
	})

	t.Run("Flush sends headers alone", func(t *testing.T) {
		done, release := released()
		defer release() // before the server's cleanup, which waits for ServeConn
		ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Early", "1")
			w.WriteHeader(201)
			http.NewResponseController(w).Flush()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
			}
		}))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.url("/"), nil)
		resp, err := ts.client(t, nil).Do(req)
		if err != nil {
			t.Fatalf("headers did not arrive while the handler waited: %v", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 201 || resp.Header.Get("X-Early") != "1" {
			t.Errorf("status %d X-Early %q", resp.StatusCode, resp.Header.Get("X-Early"))
		}
		release()
	})

	t.Run("full duplex echo", func(t *testing.T) {
		ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			w.WriteHeader(200)
			rc.Flush()
			buf := make([]byte, 1024)
			for range 1000 {
				n, err := r.Body.Read(buf)
				if n > 0 {
					w.Write(buf[:n])
					rc.Flush()
				}
				if err != nil {
					return
				}
			}
		}))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pr, pw := io.Pipe()
		defer pw.Close()
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.url("/"), pr)
		resp, err := ts.client(t, nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		for i := range 5 {
			msg := fmt.Sprintf("message %d;", i)
			if _, err := io.WriteString(pw, msg); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != msg {
				t.Fatalf("echo %d: %q %v, want %q before the next write", i, got, err, msg)
			}
		}
		pw.Close()
		if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
			t.Errorf("after closing the request body: %q %v, want a clean end", rest, err)
		}
	})
}

func TestPanicInHandler(t *testing.T) {
	slow, release := released()
	defer release() // before the server's cleanup, which waits for ServeConn
	var slowStarted atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			w.Write(bytes.Repeat([]byte("a"), 1000))
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		case "/abort-early":
			panic(http.ErrAbortHandler)
		case "/boom":
			w.Write(bytes.Repeat([]byte("b"), 1000))
			http.NewResponseController(w).Flush()
			panic("boom (a test's deliberate panic)")
		case "/slow":
			slowStarted.Store(true)
			<-slow
			io.WriteString(w, "slow done")
		default:
			io.WriteString(w, "ok")
		}
	})
	ts := startTLS(t, &Server{}, h)
	c := ts.client(t, nil)
	get(t, c, ts.url("/"))

	t.Run("ErrAbortHandler after part of the body", func(t *testing.T) {
		resp, err := c.Get(ts.url("/abort"))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("body read ended cleanly after %d bytes; an aborted handler must reset the stream", len(body))
		}
		if _, body := get(t, c, ts.url("/")); string(body) != "ok" {
			t.Errorf("next request: %q", body)
		}
	})

	t.Run("ErrAbortHandler before the headers", func(t *testing.T) {
		resp, err := c.Get(ts.url("/abort-early"))
		if err == nil {
			resp.Body.Close()
			t.Errorf("got status %d; an aborted handler must reset the stream", resp.StatusCode)
		}
		if _, body := get(t, c, ts.url("/")); string(body) != "ok" {
			t.Errorf("next request: %q", body)
		}
	})

	t.Run("other panic keeps serving other streams", func(t *testing.T) {
		slowDone := make(chan string, 1)
		go func() {
			resp, err := c.Get(ts.url("/slow"))
			if err != nil {
				slowDone <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			slowDone <- fmt.Sprintf("%s %v", b, err)
		}()
		if !poll.Until(5*time.Second, slowStarted.Load) {
			t.Fatal("slow handler did not start")
		}
		resp, err := c.Get(ts.url("/boom"))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Error("a panicking handler's response ended cleanly; it must reset the stream")
		}
		if _, body := get(t, c, ts.url("/")); string(body) != "ok" {
			t.Errorf("request after the panic: %q", body)
		}
		release()
		select {
		case got := <-slowDone:
			if got != "slow done <nil>" {
				t.Errorf("in-flight stream after the panic: %s", got)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("in-flight stream did not finish")
		}
	})
	if n := ts.accepted.Load(); n != 1 {
		t.Errorf("%d connections; panics must not cost the connection", n)
	}
}

// TestBodyReaderOutlivesHandler: a goroutine still waiting in the body's
// Read when the handler returns (a transport's body writer) gets an error
// at once rather than waiting for data that will never be read, and the
// connection goes on serving (the stream is recycled once that reader
// left). Before, the reader waited for good.
func TestBodyReaderOutlivesHandler(t *testing.T) {
	readErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			waiting := make(chan struct{})
			go func() {
				close(waiting)
				var buf [8]byte
				_, err := r.Body.Read(buf[:])
				readErr <- err
			}()
			<-waiting
			time.Sleep(20 * time.Millisecond) // let it reach the wait; the test holds either way
		}
		io.WriteString(w, "ok")
	})
	ts := startTLS(t, &Server{}, h)
	rc := ts.dialRaw(t)
	rc.request(1, "POST", "/late", false) // the body never comes
	if r := rc.one(1); r.status != "200" {
		t.Fatalf("first request: %v", r)
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("the body read after the handler returned gave data, want an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a body read waiting when its handler returned is still waiting 5 s later")
	}
	for i := range 3 {
		id := uint32(3 + 2*i)
		rc.request(id, "POST", "/next", false, "content-length", "4")
		rc.data(id, true, []byte("body"))
		if r := rc.one(id); r.status != "200" {
			t.Fatalf("request %d after it: %v", i, r)
		}
	}
}

// TestStreamReuse: a connection reuses the stream, request and header map
// of a finished request for a later one, and nothing of the earlier
// request shows through: each handler sees its own path and fields, a
// body handle kept from an earlier request (on the same stream, reused)
// reads nothing of a later request's body, and a context kept past its
// handler stays ended with its own stream id.
func TestStreamReuse(t *testing.T) {
	type seen struct {
		ptr, path, fields, body string
		ctx                     context.Context
		id                      uint32
		stale                   string // what the previous POST's body handle gave
	}
	var mu sync.Mutex
	var got []seen
	var kept io.ReadCloser // the last POST's body, kept past its handler
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var stale string
		if r.Method == "POST" {
			mu.Lock()
			old := kept
			kept = r.Body
			mu.Unlock()
			if old != nil {
				var buf [16]byte
				n, err := old.Read(buf[:])
				old.Close()
				stale = fmt.Sprintf("%q %v", buf[:n], err)
			}
		}
		b, _ := io.ReadAll(r.Body)
		var fields []string
		for k, vv := range r.Header {
			if strings.HasPrefix(k, "X-") {
				fields = append(fields, k+"="+strings.Join(vv, ","))
			}
		}
		mu.Lock()
		got = append(got, seen{fmt.Sprintf("%p", r), r.URL.Path, strings.Join(fields, " "), string(b), r.Context(), StreamID(r.Context()), stale})
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	ts := startTLS(t, &Server{}, h)
	rc := ts.dialRaw(t)
	const n = 40
	for i := range n {
		id := uint32(2*i + 1)
		name := "x-f" + strconv.Itoa(i)
		if i%5 == 4 {
			rc.request(id, "POST", "/post"+strconv.Itoa(i), false, "content-length", "4", name, "p")
			rc.data(id, true, []byte("body"))
		} else {
			rc.request(id, "GET", "/get"+strconv.Itoa(i), true, name, "g")
		}
		if r := rc.one(id); r.status != "200" {
			t.Fatalf("request %d: %v", i, r)
		}
	}
	if *refServer {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("%d requests reached the handler, want %d", len(got), n)
	}
	reused, postsReused := 0, 0
	byPtr := map[string]bool{}
	for i, s := range got {
		name := "X-F" + strconv.Itoa(i)
		wantPath, wantField, wantBody := "/get"+strconv.Itoa(i), name+"=g", ""
		if i%5 == 4 {
			wantPath, wantField, wantBody = "/post"+strconv.Itoa(i), name+"=p", "body"
		}
		if s.path != wantPath || s.fields != wantField || s.body != wantBody {
			t.Errorf("request %d saw path %q, fields %q, body %q; want %q, %q, %q", i, s.path, s.fields, s.body, wantPath, wantField, wantBody)
		}
		if i%5 == 4 && i > 4 && s.stale != `"" h2: request body closed` {
			t.Errorf("request %d: the previous POST's body handle read %s; want nothing and errBodyClosed", i, s.stale)
		}
		if byPtr[s.ptr] {
			reused++
			if i%5 == 4 {
				postsReused++
			}
		}
		byPtr[s.ptr] = true
		if err := s.ctx.Err(); err != context.Canceled {
			t.Errorf("request %d: context error %v after its handler returned and later requests ran, want canceled", i, err)
		}
		if id := StreamID(s.ctx); id != uint32(2*i+1) || id != s.id {
			t.Errorf("request %d: kept context names stream %d, want %d", i, id, 2*i+1)
		}
	}
	if reused == 0 || postsReused == 0 {
		t.Fatalf("%d requests, %d of them POSTs, were reused over %d sequential requests: this test proves nothing", reused, postsReused, n)
	}
}

func TestRequestContext(t *testing.T) {
	t.Run("client cancel ends the context", func(t *testing.T) {
		started := make(chan struct{}, 1)
		ended := make(chan error, 1)
		ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/wait" {
				io.WriteString(w, "ok")
				return
			}
			started <- struct{}{}
			select {
			case <-r.Context().Done():
				ended <- r.Context().Err()
			case <-time.After(5 * time.Second):
				ended <- errors.New("context still live 5s after the client cancelled")
			}
		}))
		c := ts.client(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.url("/wait"), nil)
		go func() {
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not start")
		}
		cancel()
		if err := <-ended; !errors.Is(err, context.Canceled) {
			t.Errorf("handler's context: %v, want context.Canceled", err)
		}
		if _, body := get(t, c, ts.url("/")); string(body) != "ok" {
			t.Errorf("next request: %q", body)
		}
		if n := ts.accepted.Load(); n != 1 {
			t.Errorf("%d connections, want the cancelled stream's connection reused", n)
		}
	})

	t.Run("client cancel fails a blocked body read", func(t *testing.T) {
		readErr := make(chan error, 1)
		gotPart := make(chan struct{}, 1)
		ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, 4)
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				readErr <- fmt.Errorf("first read: %w", err)
				return
			}
			gotPart <- struct{}{}
			_, err := io.ReadAll(r.Body)
			readErr <- err
		}))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pr, pw := io.Pipe()
		defer pw.Close()
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.url("/"), pr)
		go func() {
			if resp, err := ts.client(t, nil).Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		io.WriteString(pw, "part")
		select {
		case <-gotPart:
		case err := <-readErr:
			t.Fatal(err)
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not read the first part")
		}
		cancel()
		if err := nextErr(t, readErr, "body read still blocked 5s after the client reset the stream"); err == nil {
			t.Error("body read ended cleanly after the client reset the stream; a proxy would forward a truncated body as complete")
		}
	})

	t.Run("ends when the handler returns", func(t *testing.T) {
		ctxs := make(chan context.Context, 1)
		ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctxs <- r.Context()
			io.WriteString(w, "done")
		}))
		get(t, ts.client(t, nil), ts.url("/"))
		ctx := <-ctxs
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
			t.Error("request context still live 2s after the handler returned; goroutines tied to it leak")
		}
	})
}

func TestMaxConcurrentStreams(t *testing.T) {
	var started, running, maxRunning atomic.Int32
	newHandler := func(release <-chan struct{}) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/block" {
				io.WriteString(w, "ok")
				return
			}
			started.Add(1)
			now := running.Add(1)
			for m := maxRunning.Load(); now > m && !maxRunning.CompareAndSwap(m, now); m = maxRunning.Load() {
			}
			select { // deliberately deaf to the request context
			case <-release:
			case <-time.After(5 * time.Second):
			}
			running.Add(-1)
			io.WriteString(w, "done")
		})
	}

	t.Run("advertised and enforced", func(t *testing.T) {
		started.Store(0)
		release, releaseAll := released()
		defer releaseAll() // before the server's cleanup, which waits for ServeConn
		ts := startTLS(t, &Server{MaxConcurrentStreams: 3}, newHandler(release))
		rc := ts.dialRaw(t)
		if v, ok := rc.settings[http2.SettingMaxConcurrentStreams]; !ok || v != 3 {
			t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d (sent %v), want 3", v, ok)
		}
		rc.ping() // the server has our SETTINGS ACK
		for _, id := range []uint32{1, 3, 5} {
			rc.request(id, "GET", "/block", true)
		}
		if !poll.Until(5*time.Second, func() bool { return started.Load() == 3 }) {
			t.Fatalf("%d of 3 handlers started", started.Load())
		}
		rc.request(7, "GET", "/block", true)
		res, err := rc.collect(3*time.Second, 7)
		if r := res[7]; err != nil || !r.reset || (r.code != http2.ErrCodeRefusedStream && r.code != http2.ErrCodeProtocol) {
			t.Errorf("4th stream: %v (%v), want RST_STREAM REFUSED_STREAM or PROTOCOL_ERROR", r, err)
		}
		if n := started.Load(); n != 3 {
			t.Errorf("%d handlers started, want 3", n)
		}
		releaseAll()
		res, err = rc.collect(5*time.Second, 1, 3, 5)
		for _, id := range []uint32{1, 3, 5} {
			if r := res[id]; r.status != "200" || string(r.body) != "done" {
				t.Errorf("stream %d after release: %v body %q (%v)", id, r, r.body, err)
			}
		}
		rc.request(9, "GET", "/", true)
		if r := rc.one(9); r.status != "200" || string(r.body) != "ok" {
			t.Errorf("stream after the refusal: %v", r)
		}
	})

	t.Run("reset streams keep their slot until the handler returns", func(t *testing.T) {
		started.Store(0)
		maxRunning.Store(0)
		release, releaseAll := released()
		defer releaseAll() // before the server's cleanup, which waits for ServeConn
		ts := startTLS(t, &Server{MaxConcurrentStreams: 3}, newHandler(release))
		rc := ts.dialRaw(t)
		rc.ping()
		for _, id := range []uint32{1, 3, 5} {
			rc.request(id, "GET", "/block", true)
		}
		if !poll.Until(5*time.Second, func() bool { return started.Load() == 3 }) {
			t.Fatalf("%d of 3 handlers started", started.Load())
		}
		for _, id := range []uint32{1, 3, 5} {
			rc.write(func() error { return rc.fr.WriteRSTStream(id, http2.ErrCodeCancel) })
		}
		for _, id := range []uint32{7, 9, 11} {
			rc.request(id, "GET", "/block", true)
		}
		res, _ := rc.collect(300*time.Millisecond, 7, 9, 11)
		if m := maxRunning.Load(); m > 3 {
			t.Errorf("%d handlers ran at once with MaxConcurrentStreams 3 (rapid reset, CVE-2023-44487)", m)
		}
		releaseAll()
		var waiting []uint32 // neither refused nor served yet
		for id, r := range res {
			if !r.reset && !r.ended {
				waiting = append(waiting, id)
			}
		}
		rc.collect(5*time.Second, waiting...) // served late or refused: both fine
		if m := maxRunning.Load(); m > 3 {
			t.Errorf("%d handlers ran at once with MaxConcurrentStreams 3", m)
		}
		// The released handlers free their slots as they return; a stream
		// refused before that may be retried (REFUSED_STREAM).
		var r *streamResult
		for id := uint32(13); id < 13+2*100; id += 2 {
			rc.request(id, "GET", "/", true)
			if r = rc.one(id); !r.reset || r.code != http2.ErrCodeRefusedStream {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if r.status != "200" {
			t.Errorf("stream after the resets and the release: %v", r)
		}
	})
}

func TestShutdown(t *testing.T) {
	body := pattern(256 << 10)
	var newCalls atomic.Int32
	t.Run("in-flight stream completes", func(t *testing.T) {
		started := make(chan struct{}, 1)
		release, releaseAll := released()
		defer releaseAll() // before the server's cleanup, which waits for ServeConn
		ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/slow" {
				newCalls.Add(1)
				io.WriteString(w, "new")
				return
			}
			started <- struct{}{}
			<-release
			w.Write(body)
		}))
		rc := ts.dialRaw(t)
		rc.request(1, "GET", "/slow", true)
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not start")
		}
		ts.shutdown()
		for i := 0; rc.goAway == nil && i < 100; i++ {
			if _, err := rc.next(3 * time.Second); err != nil {
				t.Fatalf("no GOAWAY after Shutdown: %v", err)
			}
		}
		if ga := rc.goAway; ga == nil || ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID < 1 {
			t.Fatalf("GOAWAY %+v; want NO_ERROR with a last stream ID that covers the in-flight stream 1", ga)
		}
		rc.request(3, "GET", "/new", true)
		res, _ := rc.collect(300*time.Millisecond, 3)
		if r := res[3]; r.status != "" || newCalls.Load() != 0 {
			t.Errorf("a stream opened after GOAWAY was served: %v, %d handler calls", r, newCalls.Load())
		}
		releaseAll()
		r := rc.one(1)
		if r.status != "200" || !r.ended || !bytes.Equal(r.body, body) {
			t.Errorf("in-flight stream: %v, want 200 with all %d bytes", r, len(body))
		}
		if _, closed := rc.waitClosed(5 * time.Second); !closed {
			t.Error("connection still open 5s after its last stream finished")
		}
		if !ts.waitServing(5 * time.Second) {
			t.Error("ServeConn did not return after Shutdown and the last stream")
		}
		if resp, err := ts.client(t, nil).Get(ts.url("/new")); err == nil {
			resp.Body.Close()
			t.Errorf("a connection made after Shutdown was served: %d", resp.StatusCode)
		}
	})

	t.Run("idle connection closes", func(t *testing.T) {
		ts := startTLS(t, &Server{}, http.HandlerFunc(echoHandler))
		rc := ts.dialRaw(t)
		rc.ping()
		ts.shutdown()
		ga, closed := rc.waitClosed(5 * time.Second)
		if ga == nil || !closed {
			t.Errorf("GOAWAY %v, closed %v; want both", ga, closed)
		}
		if !ts.waitServing(5 * time.Second) {
			t.Error("ServeConn did not return")
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(700 * time.Millisecond)
		}
		io.WriteString(w, "done")
	})

	t.Run("closes an idle connection", func(t *testing.T) {
		ts := startTLS(t, &Server{IdleTimeout: 200 * time.Millisecond}, h)
		start := time.Now()
		rc := ts.dialRaw(t)
		rc.ping()
		if ga, closed := rc.waitClosed(3 * time.Second); !closed {
			t.Errorf("idle connection still open after 3s (GOAWAY %v)", ga)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("closed after %v, before the 200ms idle timeout", d)
		}
		if !ts.waitServing(3 * time.Second) {
			t.Error("ServeConn did not return")
		}
	})

	t.Run("keeps a connection with a long stream", func(t *testing.T) {
		ts := startTLS(t, &Server{IdleTimeout: 200 * time.Millisecond}, h)
		rc := ts.dialRaw(t)
		rc.request(1, "GET", "/slow", true)
		r := rc.one(1)
		if r.status != "200" || string(r.body) != "done" {
			t.Errorf("700ms stream under a 200ms idle timeout: %v body %q", r, r.body)
		}
		if rc.goAway != nil {
			t.Errorf("GOAWAY %v while a stream was open", rc.goAway.ErrCode)
		}
		if _, closed := rc.waitClosed(3 * time.Second); !closed {
			t.Error("connection not closed once idle after the stream")
		}
	})
}

func TestMalformedRequests(t *testing.T) {
	var calls atomic.Int32
	bodyErr := make(chan error, 4)
	release, releaseAll := released()
	defer releaseAll() // before the server's cleanup, which waits for ServeConn
	holding := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch r.URL.Path {
		case "/hold": // never reads the body
			holding <- struct{}{}
			<-release
		case "/read":
			_, err := io.ReadAll(r.Body)
			bodyErr <- err
			if err != nil {
				w.WriteHeader(400)
			}
		default:
			io.WriteString(w, "ok "+r.Header.Get("X-Small"))
		}
	})
	ts := startTLS(t, &Server{MaxHeaderBytes: 4096}, h)

	t.Run("missing :path", func(t *testing.T) {
		calls.Store(0)
		rc := ts.dialRaw(t)
		rc.headers(1, true, ":method", "GET", ":scheme", "https", ":authority", "example.test")
		if r := rc.one(1); !r.reset || r.code != http2.ErrCodeProtocol {
			t.Errorf("got %v, want RST_STREAM PROTOCOL_ERROR", r)
		}
		if n := calls.Load(); n != 0 {
			t.Errorf("handler called %d times for a malformed request", n)
		}
		rc.request(3, "GET", "/", true)
		if r := rc.one(3); r.status != "200" {
			t.Errorf("next stream: %v", r)
		}
	})

	t.Run("header list over MaxHeaderBytes", func(t *testing.T) {
		calls.Store(0)
		rc := ts.dialRaw(t)
		// Many fields, each well under the limit: net/http fails the whole
		// connection (COMPRESSION_ERROR) for one field longer than it.
		big := []string{"x-small", "indexed"}
		for i := range 10 {
			big = append(big, fmt.Sprintf("x-big-%d", i), strings.Repeat("a", 800))
		}
		rc.request(1, "GET", "/", true, big...)
		r := rc.one(1)
		if r.status != "431" && !r.reset {
			t.Errorf("got %v, want 431 or RST_STREAM", r)
		}
		if n := calls.Load(); n != 0 {
			t.Errorf("handler called %d times for an oversized header list", n)
		}
		// x-small went into the HPACK dynamic table with stream 1, and is
		// now sent as an index: the server must have decoded the refused
		// block too.
		rc.request(3, "GET", "/", true, "x-small", "indexed")
		if r := rc.one(3); r.status != "200" || string(r.body) != "ok indexed" {
			t.Errorf("next stream: %v body %q, want 200 \"ok indexed\"", r, r.body)
		}
	})

	t.Run("headers in CONTINUATION frames", func(t *testing.T) {
		rc := ts.dialRaw(t)
		block := rc.encode(":method", "GET", ":scheme", "https", ":authority", "example.test", ":path", "/", "x-small", "continued", "x-pad", strings.Repeat("p", 300))
		a, b := len(block)/3, 2*len(block)/3
		rc.write(func() error {
			return rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:a], EndStream: true})
		})
		rc.write(func() error { return rc.fr.WriteContinuation(1, false, block[a:b]) })
		rc.write(func() error { return rc.fr.WriteContinuation(1, true, block[b:]) })
		if r := rc.one(1); r.status != "200" || string(r.body) != "ok continued" {
			t.Errorf("got %v body %q", r, r.body)
		}
	})

	t.Run("DATA beyond the stream window", func(t *testing.T) {
		rc := ts.dialRaw(t)
		rc.ping() // window updates sent with the server's SETTINGS
		rc.request(1, "POST", "/hold", false)
		select {
		case <-holding:
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not start")
		}
		rc.ping()
		window := int64(65535)
		if v, ok := rc.settings[http2.SettingInitialWindowSize]; ok {
			window = int64(v)
		}
		window += rc.granted[1]
		if window > 64<<20 {
			t.Skipf("stream window %d is too large to overrun in a test", window)
		}
		frame := int64(16384)
		if v, ok := rc.settings[http2.SettingMaxFrameSize]; ok {
			frame = int64(v)
		}
		// Written on another goroutine: the server may stop reading once
		// it has seen the violation.
		go func() {
			chunk := make([]byte, frame)
			for left := window + 1; left > 0; {
				n := min(left, frame)
				rc.wmu.Lock()
				err := rc.fr.WriteData(1, false, chunk[:n])
				rc.wmu.Unlock()
				if err != nil {
					return
				}
				left -= n
			}
		}()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			f, err := rc.next(time.Until(deadline))
			if err != nil {
				t.Fatalf("no FLOW_CONTROL_ERROR after %d bytes over a %d-byte window: %v", window+1, window, err)
			}
			if f, ok := f.(*http2.RSTStreamFrame); ok && f.StreamID == 1 {
				if f.ErrCode != http2.ErrCodeFlowControl {
					t.Errorf("RST_STREAM %v, want FLOW_CONTROL_ERROR", f.ErrCode)
				}
				return
			}
			if f, ok := f.(*http2.GoAwayFrame); ok {
				if f.ErrCode != http2.ErrCodeFlowControl {
					t.Errorf("GOAWAY %v, want FLOW_CONTROL_ERROR", f.ErrCode)
				}
				return
			}
		}
		t.Errorf("no FLOW_CONTROL_ERROR within 5s of sending %d bytes over a %d-byte window", window+1, window)
	})

	t.Run("body shorter than content-length", func(t *testing.T) {
		rc := ts.dialRaw(t)
		rc.request(1, "POST", "/read", false, "content-length", "10")
		rc.data(1, true, []byte("12345"))
		if err := nextErr(t, bodyErr, "handler did not finish reading"); err == nil {
			t.Error("handler read a 5-byte body declared as 10 without an error")
		}
	})

	t.Run("body longer than content-length", func(t *testing.T) {
		rc := ts.dialRaw(t)
		rc.request(1, "POST", "/read", false, "content-length", "3")
		rc.data(1, true, []byte("12345"))
		if r := rc.one(1); !r.reset || r.code != http2.ErrCodeProtocol {
			t.Errorf("got %v, want RST_STREAM PROTOCOL_ERROR (RFC 9113 8.1.1)", r)
		}
		if err := nextErr(t, bodyErr, "handler did not finish reading"); err == nil {
			t.Error("handler read a 5-byte body declared as 3 without an error")
		}
	})
}

// TestEarlyAnswerToUpload: a handler that answers without reading a large
// upload (413, 401) must get its answer to the client, and the connection
// must stay usable.
func TestEarlyAnswerToUpload(t *testing.T) {
	ts := startTLS(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			io.WriteString(w, "too large")
			return
		}
		io.WriteString(w, "ok")
	}))
	c := ts.client(t, nil)
	resp, err := c.Post(ts.url("/upload"), "application/octet-stream", bytes.NewReader(pattern(8<<20)))
	if err != nil {
		t.Fatalf("early answer lost: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || string(body) != "too large" {
		t.Errorf("status %d body %q, want 413 \"too large\"", resp.StatusCode, body)
	}
	if _, body := get(t, c, ts.url("/")); string(body) != "ok" {
		t.Errorf("next request: %q", body)
	}
	if n := ts.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestFramesAfterOurReset: once the server has answered a stream early
// and refused the rest of its body with RST_STREAM NO_ERROR, the frames the
// client already had in flight for it (more DATA, then trailers) are
// ignored (RFC 9113 5.1, "closed"): they neither end the connection nor
// draw another RST_STREAM, and the next stream is served. net/http's server
// ends the connection when the trailers arrive, so the test does not run
// against it.
func TestFramesAfterOurReset(t *testing.T) {
	if *refServer {
		t.Skip("net/http's server treats these trailers as a connection error")
	}
	ts := startCleartext(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			w.WriteHeader(http.StatusForbidden) // answer without reading the body
			return
		}
		io.WriteString(w, "ok")
	}))
	rc := ts.dialRaw(t)
	rc.request(1, "POST", "/upload", false)
	rc.data(1, false, []byte("first part"))
	if r := rc.one(1); r.status != "403" || !r.ended {
		t.Fatalf("stream 1: %v, want 403 ended", r)
	}
	rc.ping() // the server's RST_STREAM NO_ERROR for stream 1 has been read: it forgot the stream
	rc.data(1, false, []byte("in flight"))
	rc.headers(1, true, "grpc-status", "0")
	rc.request(3, "GET", "/", true)
	for {
		f, err := rc.next(5 * time.Second)
		if err != nil {
			t.Fatalf("waiting for stream 3: %v (GOAWAY %v)", err, rc.goAway)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v %q after frames on a stream the server reset", f.ErrCode, rc.goAwayDbg)
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 && f.ErrCode != http2.ErrCodeNo {
				t.Errorf("RST_STREAM %v for stream 1's late frames, want them ignored", f.ErrCode)
			}
		case *http2.DataFrame:
			if f.StreamID == 3 && f.StreamEnded() {
				return
			}
		}
	}
}

// TestPrefaceTimeout: ReadTimeout bounds the wait for the client preface,
// and a connection that does not start with it is closed.
func TestPrefaceTimeout(t *testing.T) {
	for _, mode := range []string{"silent", "HTTP/1.1"} {
		t.Run(mode, func(t *testing.T) {
			ts := startCleartext(t, &Server{ReadTimeout: 200 * time.Millisecond}, http.HandlerFunc(echoHandler))
			c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if mode != "silent" {
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, err = io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Error("connection still open after 3s")
			}
			if !ts.waitServing(3 * time.Second) {
				t.Error("ServeConn did not return")
			}
		})
	}
}
