package httpparse

import "bytes"

// maxChunks bounds the chunks walked in one captured body.
const maxChunks = 64

// chunkedLen returns the length of a chunked body (chunk sizes, data,
// the last chunk and an empty trailer section) that lies entirely in b,
// or -1 when it does not, or does not parse. Knowing it lets userspace
// find a response that follows a chunked one in the same segment, and
// keeps the response stream's positions known for pairing by sequence
// number. Trailer fields are not followed (rare in responses; -1).
func chunkedLen(b []byte) int64 {
	off := 0
	for range maxChunks {
		eol := bytes.IndexByte(b[off:], '\n')
		if eol < 1 || b[off+eol-1] != '\r' {
			return -1
		}
		line := b[off : off+eol-1]
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		line = bytes.TrimRight(line, " \t")
		if len(line) == 0 || len(line) > 8 {
			return -1 // no size, or a chunk beyond any capture
		}
		var size int
		for _, c := range line {
			switch {
			case c >= '0' && c <= '9':
				size = size<<4 | int(c-'0')
			case c >= 'a' && c <= 'f':
				size = size<<4 | int(c-'a'+10)
			case c >= 'A' && c <= 'F':
				size = size<<4 | int(c-'A'+10)
			default:
				return -1
			}
		}
		off += eol + 1
		if size == 0 {
			if len(b)-off >= 2 && b[off] == '\r' && b[off+1] == '\n' {
				return int64(off + 2)
			}
			return -1
		}
		if size > len(b)-off-2 {
			return -1 // the chunk goes beyond what was captured
		}
		off += size
		if b[off] != '\r' || b[off+1] != '\n' {
			return -1
		}
		off += 2
	}
	return -1
}
