package h2

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

// TestKeptIndexesFollowTheTable sends responses whose fields repeat (kept
// as indexes, headcache.go) among fields that keep changing (each added to
// the encoder's table, renumbering the others, and evicting old entries
// from a small table), and shrinks the table midway: every response must
// decode to the fields the handler set.
func TestKeptIndexesFollowTheTable(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("i"))
		w.Header().Set("Server", "kept")
		w.Header().Set("X-Same", "always the same value")
		w.Header().Set("X-Rot", fmt.Sprintf("rotating value %d with some length to it", i%7))
		w.Header().Set("X-New", fmt.Sprintf("new value %d", i))
		w.Write([]byte("ok"))
	})
	for _, table := range []uint32{4096, 256} {
		t.Run(strconv.Itoa(int(table)), func(t *testing.T) {
			ts := startCleartext(t, &Server{}, h)
			rc := ts.dialRaw(t, http2.Setting{ID: http2.SettingHeaderTableSize, Val: table})
			id := uint32(1)
			for i := range 60 {
				if i == 30 {
					rc.write(func() error {
						return rc.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 64})
					})
				}
				rc.request(id, "GET", "/?i="+strconv.Itoa(i), true)
				res := rc.one(id)
				id += 2
				want := map[string]string{
					"server": "kept",
					"x-same": "always the same value",
					"x-rot":  fmt.Sprintf("rotating value %d with some length to it", i%7),
					"x-new":  fmt.Sprintf("new value %d", i),
				}
				for k, v := range want {
					if got := res.header(k); len(got) != 1 || got[0] != v {
						t.Fatalf("response %d: %s = %q, want %q (fields %v)", i, k, got, v, res.fields)
					}
				}
				if string(res.body) != "ok" {
					t.Fatalf("response %d: body %q", i, res.body)
				}
			}
		})
	}
}

// TestCanonicalNamesBounded: request field names come out canonical,
// remembered or not, and a client sending ever new names (or long ones)
// fills at most maxCanonNames entries of names up to maxCanonNameLen.
func TestCanonicalNamesBounded(t *testing.T) {
	c := &conn{}
	for i := range 200 {
		name := fmt.Sprintf("x-name-%03d", i)
		if got, want := c.canonical(name), fmt.Sprintf("X-Name-%03d", i); got != want {
			t.Fatalf("canonical(%q) = %q, want %q", name, got, want)
		}
	}
	long := "x-" + strings.Repeat("a", maxCanonNameLen)
	c2 := &conn{}
	if got := c2.canonical(long); got != "X-A"+strings.Repeat("a", maxCanonNameLen-1) {
		t.Errorf("canonical of a long name %q", got)
	}
	if len(c.canon) != maxCanonNames || len(c2.canon) != 0 {
		t.Errorf("remembered %d names of 200 and %d long ones; want %d and 0", len(c.canon), len(c2.canon), maxCanonNames)
	}
	// A remembered name is served from the cache, the same string.
	if got := c.canonical("x-name-000"); got != "X-Name-000" {
		t.Errorf("second canonical(x-name-000) = %q", got)
	}
}
