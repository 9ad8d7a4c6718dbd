package proxy

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/false-systems/rauta/internal/h2"
	"github.com/false-systems/rauta/internal/ir"
)

// Options.HTTP2 and MaxConcurrentStreams reach the HTTP/2 server of every
// socket: the SETTINGS advertise the stream limit, and a PRIORITY flood
// within h2's default (100 per stream) is cut at the configured 1.
func TestHTTP2LimitsConfigured(t *testing.T) {
	echo := newEchoBackend(t, "echo")
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", echo.backend(1))))}}
	for _, tc := range []struct {
		name    string
		opts    Options
		streams uint32
		cut     bool
	}{
		{"defaults", Options{}, 250, false},
		{"configured", Options{MaxConcurrentStreams: 7, HTTP2: h2.Limits{MaxPriorityFramesPerStream: 1}}, 7, true},
	} {
		p := startProxy(t, snap, tc.opts)
		conn, err := net.DialTimeout("tcp", p.Addr("l").String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
			t.Fatal(err)
		}
		fr := http2.NewFramer(conn, conn)
		fr.WriteSettings()
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		settings, ok := f.(*http2.SettingsFrame)
		if !ok {
			t.Fatalf("first frame %T, want SETTINGS", f)
		}
		if v, _ := settings.Value(http2.SettingMaxConcurrentStreams); v != tc.streams {
			t.Errorf("%s: MAX_CONCURRENT_STREAMS %d, want %d", tc.name, v, tc.streams)
		}
		for i := range 5 {
			fr.WritePriority(uint32(2*i+1), http2.PriorityParam{Weight: 15})
		}
		// A PING after them: answered unless the connection was cut (no
		// request, so a cut connection has nothing of ours unread and
		// its GOAWAY is not lost to a reset).
		fr.WritePing(false, [8]byte{1})
		cut := false
	read:
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("%s: read: %v", tc.name, err)
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				cut = f.ErrCode == http2.ErrCodeEnhanceYourCalm
				break read
			case *http2.PingFrame:
				if f.IsAck() {
					break read
				}
			}
		}
		if cut != tc.cut {
			t.Errorf("%s: connection cut %v after 5 PRIORITY frames, want %v", tc.name, cut, tc.cut)
		}
	}
}
