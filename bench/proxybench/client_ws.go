package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/gorilla/websocket"
)

// wsWorker keeps o.conns WebSocket connections, one per goroutine, and
// makes each operation one round trip: a binary message of o.size bytes
// out, the echo back, compared byte for byte.
type wsWorker struct {
	url   string
	msg   []byte
	mu    sync.Mutex
	conns map[int]*websocket.Conn
}

func newWSWorker(o clientOptions) (*wsWorker, error) {
	msg := make([]byte, o.size)
	for i := range msg {
		msg[i] = byte('a' + i%26)
	}
	return &wsWorker{url: "ws://" + o.addr + "/ws", msg: msg, conns: map[int]*websocket.Conn{}}, nil
}

func (w *wsWorker) conn(ctx context.Context, id int) (*websocket.Conn, error) {
	w.mu.Lock()
	c := w.conns[id]
	w.mu.Unlock()
	if c != nil {
		return c, nil
	}
	d := websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: sourceAddr(id)}}).DialContext}
	c, resp, err := d.DialContext(ctx, w.url, nil)
	if resp != nil && resp.Body != nil {
		// gorilla/websocket returns the handshake response; its body is
		// already read (a failed handshake) or empty (a switched protocol).
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (status %d)", w.url, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", w.url, err)
	}
	w.mu.Lock()
	w.conns[id] = c
	w.mu.Unlock()
	return c, nil
}

// forget drops a connection that failed, so the next operation redials.
func (w *wsWorker) forget(id int) {
	w.mu.Lock()
	if c := w.conns[id]; c != nil {
		c.Close()
	}
	delete(w.conns, id)
	w.mu.Unlock()
}

func (w *wsWorker) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.conns {
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		c.Close()
	}
}

func (w *wsWorker) do(ctx context.Context, id int) (op, error) {
	c, err := w.conn(ctx, id)
	if err != nil {
		return op{}, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
		_ = c.SetReadDeadline(dl)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, w.msg); err != nil {
		w.forget(id)
		return op{}, err
	}
	_, got, err := c.ReadMessage()
	if err != nil {
		w.forget(id)
		return op{}, err
	}
	if !bytes.Equal(got, w.msg) {
		w.forget(id)
		return op{}, fmt.Errorf("echo of %d bytes differs from the %d-byte message", len(got), len(w.msg))
	}
	return op{ops: 1, bytes: uint64(len(got))}, nil
}
