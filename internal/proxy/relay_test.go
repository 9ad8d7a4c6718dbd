package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTransportStreamsBeforeWaiting: a response relayed from net/http's
// Transport (here chosen by a request body of unknown length) reaches the
// client before RAUTA waits for more of it, like the engine's and the
// pooled path's (relay.go), whether or not its length is known. Before the
// relays were one, a known-length body sat in net/http's buffer while the
// backend paused (both "length" cases failed: no head or no first part
// within the client's 3 s).
func TestTransportStreamsBeforeWaiting(t *testing.T) {
	for _, tc := range streamCases() {
		t.Run(tc.name, func(t *testing.T) {
			runStreamCase(t, tc, func(addr string) io.ReadCloser {
				cl := h2cClient()
				cl.Timeout = 3 * time.Second
				// No length known: pooledRequest leaves it to the Transport.
				req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/stream", io.MultiReader(strings.NewReader("")))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := cl.Do(req)
				if err != nil {
					t.Fatalf("no response head while the backend waits: %v", err)
				}
				return resp.Body
			})
		})
	}
}
