package upstream

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The exchange against real loopback backends: each test scripts the
// backend's side of its connections and checks what Do, Relay and Finish
// make of it.

const getHead = "GET /x HTTP/1.1\r\nHost: b\r\n\r\n"

// exchangeFor returns an Exchange for a GET with timeouts long enough
// that only what a test sets can end a wait.
func exchangeFor(head string) *Exchange {
	return &Exchange{Head: []byte(head), Replayable: true, ResponseTimeout: time.Minute, IdleTimeout: time.Minute}
}

// readRequest reads one request from the backend's side of a connection
// and returns its method and target; err is set when none came.
func readRequest(br *bufio.Reader) (string, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, r.Body)
	return r.Method + " " + r.RequestURI, nil
}

// serve runs script on the server side of the next connection dialed, on
// its own goroutine. At the end of the test the connection is closed,
// which ends a script still reading, and the script is waited for.
func serve(t *testing.T, b *backend, script func(c net.Conn, br *bufio.Reader)) {
	t.Helper()
	done := make(chan struct{})
	var conn atomic.Pointer[net.Conn]
	go func() {
		defer close(done)
		select {
		case c := <-b.conns:
			conn.Store(&c)
			defer c.Close()
			script(c, bufio.NewReader(c))
		case <-time.After(10 * time.Second):
		}
	}()
	t.Cleanup(func() {
		if c := conn.Load(); c != nil {
			(*c).Close()
		}
		<-done
	})
}

// readBody reads the response body of a Content-Length response from
// x.Conn.
func readBody(t *testing.T, x *Exchange) string {
	t.Helper()
	uc := x.Conn
	for int64(uc.W-uc.R) < x.Resp.ContentLength {
		if err := uc.Fill(len(uc.Buf)); err != nil {
			t.Fatalf("reading the body: %v", err)
		}
	}
	body := string(uc.Buf[uc.R : uc.R+int(x.Resp.ContentLength)])
	uc.R += int(x.Resp.ContentLength)
	return body
}

// 1xx interim responses (100 Continue, 103 Early Hints) are read and
// dropped: Resp is the final response, its body follows on Conn, and the
// connection, read to the end, goes back to the pool.
func TestExchangeSkipsInterimResponses(t *testing.T) {
	b, p, addr := setup(t)
	got := make(chan string, 1)
	serve(t, b, func(c net.Conn, br *bufio.Reader) {
		req, _ := readRequest(br)
		got <- req
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"+
			"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nhello")
		readRequest(br) // keep the connection open until the pool closes it
	})
	x := exchangeFor(getHead)
	now := time.Now()
	if err := x.Do(p, addr, now); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if req := <-got; req != "GET /x" {
		t.Errorf("the backend got %q, want GET /x", req)
	}
	if v, _ := x.Resp.Fields.Lookup("X-Final"); x.Resp.Status != 200 || v != "yes" {
		t.Fatalf("response %d X-Final %q; want the final 200, not an interim one", x.Resp.Status, v)
	}
	if _, ok := x.Resp.Fields.Lookup("Link"); ok {
		t.Error("the 103's Link field leaked into the final response")
	}
	x.Relay()
	if body := readBody(t, x); body != "hello" {
		t.Errorf("body %q, want hello", body)
	}
	x.Finish(p, true, now)
	if n := p.idleCount(); n != 1 {
		t.Errorf("%d idle connections after a complete response, want 1 (pooled again)", n)
	}
}

// A backend that takes the request and never answers ends the exchange
// with ErrResponseTimeout, an os.ErrDeadlineExceeded (the proxy's 504),
// after ResponseTimeout, or by the Deadline when that replaces it. It is
// not retried: a timeout is no closed idle connection.
func TestExchangeResponseTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(x *Exchange)
	}{
		{"BackendResponseTimeout", func(x *Exchange) { x.ResponseTimeout = 50 * time.Millisecond }},
		{"route deadline", func(x *Exchange) { x.Deadline = time.Now().Add(50 * time.Millisecond) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, p, addr := setup(t)
			release := make(chan struct{})
			serve(t, b, func(c net.Conn, br *bufio.Reader) {
				readRequest(br)
				<-release
			})
			defer close(release)
			x := exchangeFor(getHead)
			tc.set(x)
			err := x.Do(p, addr, time.Now())
			if !errors.Is(err, ErrResponseTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Do: %v, want ErrResponseTimeout (an os.ErrDeadlineExceeded)", err)
			}
			if x.Conn != nil || p.idleCount() != 0 {
				t.Errorf("after a timeout: connection held %v, %d idle; want it closed", x.Conn != nil, p.idleCount())
			}
		})
	}
}

// A backend that takes none of the request body ends the exchange with
// ErrSendTimeout once a write waited IdleTimeout, not a ClientError; one
// that stalls mid-response-body fails the relay's read after IdleTimeout.
func TestExchangeIdleTimeout(t *testing.T) {
	t.Run("request body not taken", func(t *testing.T) {
		b, p, addr := setup(t)
		release := make(chan struct{})
		serve(t, b, func(c net.Conn, br *bufio.Reader) { <-release }) // reads nothing
		defer close(release)
		x := exchangeFor("POST /up HTTP/1.1\r\nHost: b\r\nContent-Length: 268435456\r\n\r\n")
		x.Replayable = false
		x.IdleTimeout = 50 * time.Millisecond
		x.ResponseTimeout = 2 * time.Second // bounds a wrong wait for an answer
		x.Body = &patternBody{n: 256 << 20}
		err := x.Do(p, addr, time.Now())
		if !errors.Is(err, ErrSendTimeout) || errors.As(err, new(ClientError)) {
			t.Fatalf("Do: %v, want ErrSendTimeout, not a client error", err)
		}
		if x.Early {
			t.Error("a stalled backend was taken for one that answered early")
		}
	})
	t.Run("response body stalls", func(t *testing.T) {
		b, p, addr := setup(t)
		release := make(chan struct{})
		serve(t, b, func(c net.Conn, br *bufio.Reader) {
			readRequest(br)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part")
			<-release
		})
		defer close(release)
		x := exchangeFor(getHead)
		x.IdleTimeout = 50 * time.Millisecond
		now := time.Now()
		if err := x.Do(p, addr, now); err != nil {
			t.Fatalf("Do: %v", err)
		}
		x.Relay()
		uc := x.Conn
		var err error
		for err == nil && uc.W-uc.R < 100 {
			err = uc.Fill(len(uc.Buf))
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("reading a stalled body: %v, want a deadline error", err)
		}
		x.Finish(p, false, now)
		if n := p.idleCount(); n != 0 {
			t.Errorf("%d idle connections after a truncated body, want 0", n)
		}
	})
}

// patternBody streams n bytes to the backend in 1 MiB writes.
type patternBody struct{ n int64 }

func (b *patternBody) WriteTo(w io.Writer) (int64, error) {
	p := make([]byte, 1<<20)
	sent := int64(0)
	for sent < b.n {
		k, err := w.Write(p[:min(int64(len(p)), b.n-sent)])
		sent += int64(k)
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// A client that goes away ends the exchange while it waits on the
// backend: through Check (the HTTP/1.1 engine's hang-up peek), with the
// check's error, or through Interrupt from another goroutine (net/http's
// request context), with ErrInterrupted, also when it ran before Do. The
// connection is not reused. ResponseTimeout is an hour: nothing else
// ends the wait.
func TestExchangeInterruptWhenClientGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		// gone makes the client go away once the backend has the request.
		gone    func(x *Exchange, flag *atomic.Bool)
		early   bool // interrupt before Do
		wantErr error
	}{
		{"Check", func(x *Exchange, flag *atomic.Bool) { flag.Store(true) }, false, ErrClientGone},
		{"Interrupt", func(x *Exchange, flag *atomic.Bool) { x.Interrupt() }, false, ErrInterrupted},
		{"Interrupt before Do", nil, true, ErrInterrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, p, addr := setup(t)
			got, closed := make(chan struct{}, 1), make(chan error, 1)
			serve(t, b, func(c net.Conn, br *bufio.Reader) {
				if _, err := readRequest(br); err != nil {
					closed <- err
					return
				}
				got <- struct{}{}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err := br.ReadByte()
				closed <- err
			})
			x := exchangeFor(getHead)
			x.ResponseTimeout = time.Hour
			var flag atomic.Bool
			x.Check = func() error {
				if flag.Load() {
					return ClientError{ErrClientGone}
				}
				return nil
			}
			if tc.early {
				x.Interrupt()
			} else {
				go func() {
					select {
					case <-got:
						tc.gone(x, &flag)
					case <-time.After(10 * time.Second):
					}
				}()
			}
			err := x.Do(p, addr, time.Now())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Do: %v, want %v", err, tc.wantErr)
			}
			if err := <-closed; !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the backend connection: %v, want it closed (EOF or reset)", err)
			}
			if n := p.idleCount(); n != 0 || x.Conn != nil {
				t.Errorf("%d idle connections, one held %v; want the interrupted one closed", n, x.Conn != nil)
			}
		})
	}
}

// A reused connection the backend closed just as the request arrived
// (it read the request and closed without a byte of answer: the race
// the pool's peek cannot close) is retried once on a new connection when
// the request is Replayable, as net/http's Transport does; a request that
// is not fails, and is not Silent (the endpoint is not taken for down).
// A fresh connection closed that way is Silent.
func TestExchangeReusedConnectionClosed(t *testing.T) {
	// warm puts a connection in the pool whose backend serves one
	// request, then reads the next and closes without answering.
	warm := func(t *testing.T, b *backend, p *Pool, addr string) chan string {
		t.Helper()
		second := make(chan string, 1)
		serve(t, b, func(c net.Conn, br *bufio.Reader) {
			readRequest(br)
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			req, _ := readRequest(br)
			second <- req
		})
		x := exchangeFor(getHead)
		now := time.Now()
		if err := x.Do(p, addr, now); err != nil {
			t.Fatalf("first exchange: %v", err)
		}
		x.Relay()
		x.Finish(p, true, now)
		if p.idleCount() != 1 {
			t.Fatal("the first connection was not pooled")
		}
		return second
	}
	t.Run("replayable", func(t *testing.T) {
		b, p, addr := setup(t)
		second := warm(t, b, p, addr)
		retried := make(chan string, 1)
		serve(t, b, func(c net.Conn, br *bufio.Reader) {
			req, _ := readRequest(br)
			retried <- req
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			readRequest(br)
		})
		x := exchangeFor("GET /again HTTP/1.1\r\nHost: b\r\n\r\n")
		if err := x.Do(p, addr, time.Now()); err != nil {
			t.Fatalf("Do: %v, want the retry on a new connection to succeed", err)
		}
		if req := <-second; req != "GET /again" {
			t.Errorf("the reused connection got %q", req)
		}
		if req := <-retried; req != "GET /again" || x.Resp.Status != 200 {
			t.Errorf("the new connection got %q and answered %d; want GET /again answered 200", req, x.Resp.Status)
		}
		x.Relay()
		readBody(t, x)
		x.Finish(p, true, time.Now())
	})
	t.Run("not replayable", func(t *testing.T) {
		b, p, addr := setup(t)
		second := warm(t, b, p, addr)
		x := exchangeFor("POST /once HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n")
		x.Replayable = false
		x.ResponseTimeout = 2 * time.Second // bounds a wrong retry's wait
		err := x.Do(p, addr, time.Now())
		if err == nil || x.Silent() {
			t.Fatalf("Do: %v, silent %v; want a failure, not silent (a reused connection)", err, x.Silent())
		}
		if req := <-second; req != "POST /once" {
			t.Errorf("the reused connection got %q", req)
		}
		select {
		case c := <-b.conns:
			c.Close()
			t.Error("a request that is not replayable was sent again on a new connection")
		default:
		}
	})
	t.Run("fresh connection", func(t *testing.T) {
		b, p, addr := setup(t)
		serve(t, b, func(c net.Conn, br *bufio.Reader) { readRequest(br) })
		x := exchangeFor(getHead)
		err := x.Do(p, addr, time.Now())
		if err == nil || !x.Silent() {
			t.Fatalf("Do: %v, silent %v; want a failure that is silent (a fresh connection closed unanswered)", err, x.Silent())
		}
	})
}

// A backend that answers before it took the whole request body (413) and
// closes: the answer is the response, Early is set, and the connection
// is not reused. A body the client fails to deliver is a ClientError.
func TestExchangeRequestBody(t *testing.T) {
	t.Run("early answer", func(t *testing.T) {
		b, p, addr := setup(t)
		serve(t, b, func(c net.Conn, br *bufio.Reader) {
			http.ReadRequest(br)
			io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		})
		x := exchangeFor("POST /up HTTP/1.1\r\nHost: b\r\nContent-Length: 268435456\r\n\r\n")
		x.Replayable = false
		x.Body = &patternBody{n: 256 << 20}
		now := time.Now()
		if err := x.Do(p, addr, now); err != nil {
			t.Fatalf("Do: %v, want the backend's early answer", err)
		}
		if x.Resp.Status != 413 || !x.Early {
			t.Fatalf("status %d early %v, want 413 answered early", x.Resp.Status, x.Early)
		}
		x.Relay()
		x.Finish(p, true, now)
		if n := p.idleCount(); n != 0 {
			t.Errorf("%d idle connections, want 0: a connection whose request was cut is not reused", n)
		}
	})
	t.Run("client body fails", func(t *testing.T) {
		b, p, addr := setup(t)
		serve(t, b, func(c net.Conn, br *bufio.Reader) { io.Copy(io.Discard, br) })
		x := exchangeFor("POST /up HTTP/1.1\r\nHost: b\r\nContent-Length: 10\r\n\r\n")
		x.Replayable = false
		x.Body = failingBody{}
		err := x.Do(p, addr, time.Now())
		var ce ClientError
		if !errors.As(err, &ce) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Do: %v, want a ClientError wrapping the body's error", err)
		}
	})
}

// failingBody sends part of a body, then fails as a client that hung up.
type failingBody struct{}

func (failingBody) WriteTo(w io.Writer) (int64, error) {
	n, err := io.Copy(w, strings.NewReader("part"))
	if err != nil {
		return n, err
	}
	return n, io.ErrUnexpectedEOF
}
