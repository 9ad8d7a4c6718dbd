package h1

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// WriteStatusLine starts a response in Out.
func (c *Conn) WriteStatusLine(code int, reason string) {
	w := &c.Out
	w.Buf = append(w.Buf, "HTTP/1.1 "...)
	w.Buf = strconv.AppendInt(w.Buf, int64(code), 10)
	w.Buf = append(w.Buf, ' ')
	if reason == "" {
		reason = http.StatusText(code)
	}
	w.Buf = append(w.Buf, reason...)
	w.Buf = append(w.Buf, "\r\n"...)
}

// WriteField appends one field line.
func (c *Conn) WriteField(name, value string) { c.Out.Buf = AppendField(c.Out.Buf, name, value) }

// EndHead writes Date (unless the fields had one), Connection: close when
// this is the last response, and the empty line.
func (c *Conn) EndHead(hasDate bool) {
	if !hasDate {
		c.Out.Buf = append(c.Out.Buf, "Date: "...)
		c.Out.Buf = append(c.Out.Buf, c.cfg.Date.Get(c.Now)...)
		c.Out.Buf = append(c.Out.Buf, "\r\n"...)
	}
	if c.closing() {
		// Latched: a drain that begins after this point must not end a
		// connection whose response promised keep-alive (its client's
		// next request would meet a reset).
		c.Req.CloseAfter = true
		c.Out.Buf = append(c.Out.Buf, "Connection: close\r\n"...)
	}
	c.Out.Buf = append(c.Out.Buf, "\r\n"...)
}

// WriteError answers with the same short plain-text error as the net/http
// path's.
func (c *Conn) WriteError(code int, msg string) {
	c.WriteStatusLine(code, "")
	c.WriteField("Content-Type", "text/plain; charset=utf-8")
	c.WriteField("X-Content-Type-Options", "nosniff")
	c.Out.Buf = append(c.Out.Buf, "Content-Length: "...)
	c.Out.Buf = strconv.AppendInt(c.Out.Buf, int64(len(msg)+1), 10)
	c.Out.Buf = append(c.Out.Buf, "\r\n"...)
	c.EndHead(false)
	if c.Req.Method != http.MethodHead {
		c.Out.Buf = append(c.Out.Buf, msg...)
		c.Out.Buf = append(c.Out.Buf, '\n')
	}
}

// DateCache formats the Date field once a second instead of per response.
type DateCache struct {
	v atomic.Pointer[dateValue]
}

type dateValue struct {
	sec int64
	b   []byte
}

// Get returns now's Date value.
func (d *DateCache) Get(now time.Time) []byte {
	sec := now.Unix()
	if v := d.v.Load(); v != nil && v.sec == sec {
		return v.b
	}
	v := &dateValue{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	d.v.Store(v)
	return v.b
}
