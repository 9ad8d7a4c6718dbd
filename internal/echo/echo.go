// Package echo is a small HTTP backend for demos and end-to-end tests: it
// answers with a JSON description of the request it received, so a caller
// can see which backend served it and what the gateway changed on the way.
package echo

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Reply is the JSON body the echo handler writes.
type Reply struct {
	Backend  string              `json:"backend"`
	Proto    string              `json:"proto"`
	Method   string              `json:"method"`
	Host     string              `json:"host"`
	Path     string              `json:"path"`
	RawQuery string              `json:"rawQuery,omitempty"`
	Headers  map[string][]string `json:"headers"`
	BodySize int                 `json:"bodySize"`
}

// Handler answers:
//   - /ws: a WebSocket that echoes every message, prefixed with the backend name;
//   - /status/N: an empty response with status N;
//   - anything else: a Reply, after ?delay=DURATION if given.
func Handler(name string) http.Handler {
	mux := http.NewServeMux()
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade already answered the client
		}
		defer conn.Close()
		for {
			typ, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if err := conn.WriteMessage(typ, append([]byte(name+": "), msg...)); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/status/", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		if err != nil || code < 100 || code > 599 {
			http.Error(w, "want /status/<100-599>", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Backend", name)
		w.WriteHeader(code)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if d := r.URL.Query().Get("delay"); d != "" {
			delay, err := time.ParseDuration(d)
			if err != nil || delay < 0 || delay > time.Minute {
				http.Error(w, "delay: want a duration up to 1m", http.StatusBadRequest)
				return
			}
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		n, _ := io.Copy(io.Discard, r.Body)
		reply := Reply{
			Backend:  name,
			Proto:    r.Proto,
			Method:   r.Method,
			Host:     r.Host,
			Path:     r.URL.EscapedPath(),
			RawQuery: r.URL.RawQuery,
			Headers:  r.Header,
			BodySize: int(n),
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", name)
		_ = json.NewEncoder(w).Encode(reply)
	})
	return mux
}

// NewServer returns a server for h on addr that speaks HTTP/1.1 and, with
// prior knowledge, HTTP/2 in clear text (h2c), as gRPC-style backends do.
func NewServer(addr string, h http.Handler) *http.Server {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	return srv
}
