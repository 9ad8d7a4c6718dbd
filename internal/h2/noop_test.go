package h2

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestNoOpFrameFlood: frames that ask for nothing in reply but still cost
// the server a read and a dispatch each are counted, and a client past a
// count loses the connection with GOAWAY ENHANCE_YOUR_CALM (CVE-2019-9518
// for the empty frames). Before the limits, each of these floods ran for
// all its 64 MiB and the connection stayed open.
func TestNoOpFrameFlood(t *testing.T) {
	post := staticBlock(":method", "POST", ":scheme", "http", ":authority", "example.test", ":path", "/")
	// Every case opens stream 1 with a body the handler waits for, so
	// that DATA and WINDOW_UPDATE frames name an open stream.
	open := func(fr *http2.Framer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: post, EndHeaders: true})
	}
	cases := []struct {
		name, reason string
		gen          func(fr *http2.Framer, i int)
	}{
		{"empty DATA", "too many empty frames", func(fr *http2.Framer, i int) {
			if i == 0 {
				open(fr)
			}
			fr.WriteData(1, false, nil)
		}},
		{"DATA of padding only", "too many empty frames", func(fr *http2.Framer, i int) {
			if i == 0 {
				open(fr)
			}
			fr.WriteDataPadded(1, false, nil, make([]byte, 8))
		}},
		{"empty HEADERS and CONTINUATION", "too many empty frames", func(fr *http2.Framer, i int) {
			// An empty trailer block trickled in empty frames, block
			// after block: each block alone is within
			// MaxContinuationFrames.
			if i == 0 {
				open(fr)
			}
			if i%4 == 0 {
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1})
			} else {
				fr.WriteContinuation(1, i%4 == 3, nil)
			}
		}},
		{"PRIORITY", "too many PRIORITY frames", func(fr *http2.Framer, i int) {
			fr.WritePriority(uint32(2*i+1), http2.PriorityParam{Weight: byte(i)})
		}},
		{"stream WINDOW_UPDATE", "too many WINDOW_UPDATE frames", func(fr *http2.Framer, i int) {
			if i == 0 {
				open(fr)
			}
			fr.WriteWindowUpdate(1, 1)
		}},
		{"connection WINDOW_UPDATE", "too many WINDOW_UPDATE frames", func(fr *http2.Framer, i int) {
			fr.WriteWindowUpdate(0, 1)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuf{}
			ts := startCleartext(t, &Server{Logger: logs.logger()}, http.HandlerFunc(echoHandler))
			res := runFlood(t, ts, tc.gen)
			wantAbuse(t, res, logs, tc.reason)
		})
	}
}

// staticBlock is an HPACK block of the fields (name, value pairs),
// encoded without the dynamic table, so it can be sent any number of
// times and on any connection.
func staticBlock(kv ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.SetMaxDynamicTableSizeLimit(0)
	for i := 0; i+1 < len(kv); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return buf.Bytes()
}

// TestNoOpLimitsNormalClients: the counts do not trip on what clients
// send in normal use: net/http's Transport with uploads and downloads in
// many sizes (its WINDOW_UPDATE frames, empty DATA with END_STREAM),
// trickled request bodies, and h2load and curl when installed.
func TestNoOpLimitsNormalClients(t *testing.T) {
	logs := &logBuf{}
	ts := startCleartext(t, &Server{Logger: logs.logger()}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		size := 1 << 10
		if r.URL.Path == "/big" {
			size = 1 << 20
		}
		w.Header().Set("x-body", strings.Repeat("x", int(n%7)))
		w.Write(bytes.Repeat([]byte("y"), size))
	}))
	c := ts.client(t, &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 128 << 10})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				path := "/"
				if (g+i)%3 == 0 {
					path = "/big"
				}
				var body io.Reader
				if i%2 == 1 {
					// A body written in small pieces: DATA frame by frame.
					pr, pw := io.Pipe()
					go func() {
						for range 5 {
							pw.Write(bytes.Repeat([]byte("z"), 100))
							time.Sleep(time.Millisecond)
						}
						pw.Close()
					}()
					body = pr
				} else if i%4 == 0 {
					body = bytes.NewReader(make([]byte, 300<<10))
				}
				method := "GET"
				if body != nil {
					method = "POST"
				}
				req, _ := http.NewRequest(method, ts.url(path), body)
				resp, err := c.Do(req)
				if err != nil {
					t.Errorf("%s %s: %v", method, path, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()

	if p, err := exec.LookPath("h2load"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, p, "-n", "2000", "-c", "2", "-m", "32", "http://"+ts.addr+"/").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "2000 succeeded") {
			t.Errorf("h2load: %v\n%s", err, out)
		}
	} else {
		t.Log("h2load not installed: not run")
	}
	if p, err := exec.LookPath("curl"); err == nil {
		// One URL per run: curl 7.88 fails a second request that
		// reuses the connection after an upload, also against net/http's
		// server.
		for _, args := range [][]string{
			{"--data-binary", strings.Repeat("d", 100<<10), "http://" + ts.addr + "/big"},
			{"http://" + ts.addr + "/big"},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := exec.CommandContext(ctx, p, append([]string{"-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...).CombinedOutput()
			cancel()
			if err != nil || string(out) != "200" {
				t.Errorf("curl: %v\n%s", err, out)
			}
		}
	} else {
		t.Log("curl not installed: not run")
	}
	if s := logs.String(); strings.Contains(s, "abuse") {
		t.Errorf("a normal client was taken for abuse:\n%s", s)
	}
}
