package h2

import "golang.org/x/net/http2/hpack"

// Response fields a connection sends again and again (a backend's Server,
// ETag, Content-Type...) are, once in the encoder's dynamic table, one
// index each. conn.encoded keeps that index per field, so that a later
// response copies a few bytes instead of asking the encoder, which looks
// each field up in its static and dynamic tables (about 3 % of the proxy's
// CPU at h2 m=64 1 KiB). An index holds only while the table is unchanged:
// every encoder call goes through writeField, which clears the cache when
// the encoder adds an entry (that renumbers the others) or resizes the
// table.

// maxEncodedFields bounds conn.encoded; a full cache starts over.
const maxEncodedFields = 64

// maxIndexLen is the longest index representation kept: an index up to
// 2^14+126, more than a 4 KiB table holds, is at most 3 bytes.
const maxIndexLen = 3

// encodedField is a field's HPACK encoding as an indexed field
// (RFC 7541 6.1).
type encodedField struct {
	b [maxIndexLen]byte
	n uint8
}

// writeField encodes f into c.hbuf and returns its encoding. Every call of
// the encoder goes through here. Callers hold c.mu.
func (c *conn) writeField(f hpack.HeaderField) []byte {
	pos := c.hbuf.Len()
	c.henc.WriteField(f) //nolint:errcheck // writes to a bytes.Buffer
	out := c.hbuf.Bytes()[pos:]
	// 01xxxxxx: a literal the encoder added to its table (RFC 7541
	// 6.2.1); 001xxxxx: a table size update (6.3), which comes first.
	if len(out) > 0 && (out[0]&0xc0 == 0x40 || out[0]&0xe0 == 0x20) {
		clear(c.encoded)
	}
	return out
}

// resizeEncoder applies the client's SETTINGS_HEADER_TABLE_SIZE: the
// encoder may evict entries at once, so the kept indexes go too.
// Callers hold c.mu.
func (c *conn) resizeEncoder(v uint32) {
	c.henc.SetMaxDynamicTableSizeLimit(v)
	clear(c.encoded)
}

// encodedValue appends the kept encoding of the field k: v and reports
// whether there was one. Callers hold c.mu.
func (c *conn) encodedValue(k, v string) bool {
	e, ok := c.encoded[headField{k, v}]
	if ok {
		c.hbuf.Write(e.b[:e.n])
	}
	return ok
}

// keepEncoded keeps out, the encoding of k: v just written, if it is an
// index. Callers hold c.mu.
func (c *conn) keepEncoded(k, v string, out []byte) {
	if len(out) == 0 || len(out) > maxIndexLen || out[0]&0x80 == 0 {
		return
	}
	if c.encoded == nil {
		c.encoded = make(map[headField]encodedField, 8)
	} else if len(c.encoded) >= maxEncodedFields {
		clear(c.encoded)
	}
	var e encodedField
	e.n = uint8(copy(e.b[:], out))
	c.encoded[headField{k, v}] = e
}
