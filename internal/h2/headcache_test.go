package h2

import (
	"fmt"
	"net/http"
	"strconv"
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
