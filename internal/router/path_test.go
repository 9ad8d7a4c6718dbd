package router

import (
	"errors"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

func TestNormalizePath(t *testing.T) {
	merge := PathOptions{}
	keep := PathOptions{KeepSlashes: true}
	reject := PathOptions{EscapedSlashes: EscapedSlashesReject}
	tests := []struct {
		in   string
		opts PathOptions
		want string
		err  error
	}{
		// Already normal: returned as is.
		{"/", merge, "/", nil},
		{"/api/v1/users", merge, "/api/v1/users", nil},
		{"/a/", merge, "/a/", nil},
		{"/a%20b/%C3%BC", merge, "/a%20b/%C3%BC", nil},
		{"/a.b/..c/c../.../x.", merge, "/a.b/..c/c../.../x.", nil},
		// RFC 3986 §5.2.4 dot-segment removal (its §5.4 examples, as paths).
		{"/api/../secret", merge, "/secret", nil},
		{"/api/./x", merge, "/api/x", nil},
		{"/a/b/c/./../../g", merge, "/a/g", nil},
		{"/mid/content=5/../6", merge, "/mid/6", nil},
		{"/a/b/.", merge, "/a/b/", nil},
		{"/a/b/..", merge, "/a/", nil},
		{"/a/b/../", merge, "/a/", nil},
		{"/.", merge, "/", nil},
		{"/..", merge, "/", nil},
		// A path cannot climb above the root.
		{"/../x", merge, "/x", nil},
		{"/../../../etc/passwd", merge, "/etc/passwd", nil},
		{"/a/../../b", merge, "/b", nil},
		// Encoded dots are dots (Envoy's normalize_path does the same).
		{"/api/%2e%2e/secret", merge, "/secret", nil},
		{"/api/%2E%2E/secret", merge, "/secret", nil},
		{"/api/.%2e/secret", merge, "/secret", nil},
		{"/api/%2e/x", merge, "/api/x", nil},
		{"/a%2eb", merge, "/a.b", nil},
		// Other unreserved characters are decoded, reserved ones upper-cased.
		{"/%7Euser/%61%62%63", merge, "/~user/abc", nil},
		{"/a%3fb%3Ac", merge, "/a%3Fb%3Ac", nil},
		{"/%25%2541", merge, "/%25%2541", nil},
		// Repeated slashes.
		{"//a///b//", merge, "/a/b/", nil},
		{"//", merge, "/", nil},
		{"//a///b//", keep, "//a///b//", nil},
		{"/a//../b", keep, "/a/b", nil},
		{"/a//..", keep, "/a/", nil},
		{"//../a", keep, "/a", nil},
		// Escaped slashes are not separators; kept or rejected.
		{"/a%2Fb", merge, "/a%2Fb", nil},
		{"/a%2fb/c", merge, "/a%2Fb/c", nil},
		{"/a%5Cb", merge, "/a%5Cb", nil},
		{"/a..%2Fb.%2F...%2F%2F", merge, "/a..%2Fb.%2F...%2F%2F", nil},
		// Kept, a dot segment next to one is refused: a backend that
		// decodes it would climb out of the matched prefix.
		{"/api%2F..%2Fsecret", merge, "", ErrHiddenDotSegment},
		{"/api/..%2fsecret", merge, "", ErrHiddenDotSegment},
		{"/api/%2e%2e%2fsecret", merge, "", ErrHiddenDotSegment},
		{"/api/x%2F.", merge, "", ErrHiddenDotSegment},
		{"/api/.%5Cx", merge, "", ErrHiddenDotSegment},
		{`/a\..\b`, merge, "", ErrHiddenDotSegment},
		{`/api/..\secret`, keep, "", ErrHiddenDotSegment},
		{"/api%2F..%2Fsecret", reject, "", ErrEscapedSlash},
		{"/api%2f", reject, "", ErrEscapedSlash},
		{"/a%5cb", reject, "", ErrEscapedSlash},
		{"/a%5Cb", reject, "", ErrEscapedSlash},
		{`/a\b`, reject, "", ErrEscapedSlash},
		{"/a%2Eb/%2F", reject, "", ErrEscapedSlash},
		// Malformed escapes.
		{"/a%", merge, "", ErrBadEscape},
		{"/a%4", merge, "", ErrBadEscape},
		{"/a%zz", merge, "", ErrBadEscape},
		{"/a/../%g1", merge, "", ErrBadEscape},
		// Not starting with a slash.
		{"", merge, "/", nil},
		{"a/b", merge, "/a/b", nil},
		{"../a", merge, "/a", nil},
		// Off: as received.
		{"/api/../secret", PathOptions{Disable: true}, "/api/../secret", nil},
		{"/a%zz", PathOptions{Disable: true}, "/a%zz", nil},
	}
	for _, tt := range tests {
		got, err := NormalizePath(tt.in, tt.opts)
		if !errors.Is(err, tt.err) || (err == nil && got != tt.want) {
			t.Errorf("NormalizePath(%q, %+v) = %q, %v; want %q, %v", tt.in, tt.opts, got, err, tt.want, tt.err)
		}
	}
}

// A path that is already normal costs no allocation: most paths are.
func TestNormalizePathNormalDoesNotAllocate(t *testing.T) {
	for _, p := range []string{"/", "/api/v1/users/42", "/a%20b/%C3%BC/x.y", "/a/"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = NormalizePath(p, PathOptions{}) }); n != 0 {
			t.Errorf("NormalizePath(%q) allocates %v times", p, n)
		}
	}
}

func TestParseEscapedSlashes(t *testing.T) {
	for in, want := range map[string]EscapedSlashes{"": EscapedSlashesKeep, "keep": EscapedSlashesKeep, "reject": EscapedSlashesReject} {
		if got, err := ParseEscapedSlashes(in); err != nil || got != want {
			t.Errorf("ParseEscapedSlashes(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseEscapedSlashes("unescape"); err == nil {
		t.Error(`ParseEscapedSlashes("unescape") accepted`)
	}
}

// Route values are compared in normal form, so a route written with
// escapes matches the request NormalizePath produced.
func TestMatchValueNormalized(t *testing.T) {
	tbl := mustCompile(t, &ir.Listener{VirtualHosts: []ir.VirtualHost{{Name: "vh", Routes: []ir.Route{
		route("tilde", exact("/%7euser")), route("enc", prefix("/a%2fb")),
	}}}})
	for p, want := range map[string]string{"/~user": "tilde", "/%7Euser": "tilde", "/a%2Fb/c": "enc", "/a%2fb": "enc"} {
		n, err := NormalizePath(p, PathOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := matchName(tbl, &Request{Host: "x", Path: n}); got != want {
			t.Errorf("path %q matched %q, want %s", p, got, want)
		}
	}
}

// FuzzNormalizePath checks NormalizePath's invariants on any input: the
// result starts with "/", has no "." or ".." segment, no empty segment
// (nor behind an escaped slash or a backslash) when slashes are merged, is a fixed point, and agrees with path.Clean
// (which also merges slashes and resolves dots) up to a trailing slash.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/api/../secret", "/a/./b/../../c", "//a//b/", "/%2e%2E/x", "/a%2Fb", `/a\b`, "/%7e", "a/..", "/a%zz", "/..%2f..", "/a..%2F.b%5C...", ""} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, in string, flags uint8) {
		opts := PathOptions{KeepSlashes: flags&1 != 0}
		if flags&2 != 0 {
			opts.EscapedSlashes = EscapedSlashesReject
		}
		out, err := NormalizePath(in, opts)
		if err != nil {
			if !errors.Is(err, ErrBadEscape) && !errors.Is(err, ErrEscapedSlash) && !errors.Is(err, ErrHiddenDotSegment) {
				t.Fatalf("NormalizePath(%q): unexpected error %v", in, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("NormalizePath(%q) = %q: no leading slash", in, out)
		}
		segs := strings.Split(out[1:], "/")
		for i, s := range segs {
			if s == "." || s == ".." {
				t.Fatalf("NormalizePath(%q) = %q: dot segment", in, out)
			}
			// Nor one a backend decoding %2F, %5C or taking "\" as a
			// separator would find (the output has upper-case escapes and
			// decoded dots).
			for _, piece := range strings.FieldsFunc(strings.NewReplacer("%2F", "/", "%5C", "/", `\`, "/").Replace(s), func(r rune) bool { return r == '/' }) {
				if piece == "." || piece == ".." {
					t.Fatalf("NormalizePath(%q) = %q: dot segment behind an escaped slash", in, out)
				}
			}
			if s == "" && !opts.KeepSlashes && i < len(segs)-1 {
				t.Fatalf("NormalizePath(%q) = %q: repeated slash", in, out)
			}
		}
		again, err := NormalizePath(out, opts)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
		if opts.KeepSlashes {
			return
		}
		// path.Clean knows no escapes: give it the input with its escapes
		// normalised (by the test's own, literal decoding).
		if want := path.Clean("/" + pctNormal(in)); path.Clean(out) != want {
			t.Fatalf("NormalizePath(%q) = %q; path.Clean gives %q", in, out, want)
		}
		if out != path.Clean(out) && out != path.Clean(out)+"/" {
			t.Fatalf("NormalizePath(%q) = %q is more than a trailing slash away from clean", in, out)
		}
	})
}

// pctNormal decodes the escapes of unreserved characters and upper-cases
// the others, the slow and obvious way; s has only well-formed escapes.
func pctNormal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			panic(err)
		}
		c := byte(v)
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString(strings.ToUpper(s[i : i+3]))
		}
		i += 2
	}
	return b.String()
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, p := range []string{"/api/v1/users/42/orders", "/api/v1/../v2/%7Eusers//42"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizePath(p, PathOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
