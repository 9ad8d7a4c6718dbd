package h2

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// TestCanonicalNamesBounded: names come out canonical, remembered or not;
// a peer sending ever new names (or long ones) fills at most maxCanonNames
// entries of names up to maxCanonNameLen; a remembered name is the
// remembered string, not a new one.
func TestCanonicalNamesBounded(t *testing.T) {
	var c CanonicalNames
	for i := range 200 {
		name := fmt.Sprintf("x-name-%03d", i)
		if got, want := c.Of(name), fmt.Sprintf("X-Name-%03d", i); got != want {
			t.Fatalf("Of(%q) = %q, want %q", name, got, want)
		}
	}
	if c.Len() != maxCanonNames {
		t.Errorf("remembered %d names of 200, want %d", c.Len(), maxCanonNames)
	}
	var long CanonicalNames
	name := "x-" + strings.Repeat("a", maxCanonNameLen)
	if got := long.Of(name); got != "X-A"+strings.Repeat("a", maxCanonNameLen-1) {
		t.Errorf("Of(long name) = %q", got)
	}
	if long.Len() != 0 {
		t.Errorf("remembered a name of %d bytes (bound %d)", len(name), maxCanonNameLen)
	}
	a, b := c.Of("x-name-000"), c.Of("x-name-000")
	if a != "X-Name-000" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Errorf("a remembered name canonicalized anew: %q at %p, %q at %p", a, unsafe.StringData(a), b, unsafe.StringData(b))
	}
}

// TestCanonicalNamesNoAllocation: a remembered name costs no allocation,
// which is the reason the type exists.
func TestCanonicalNamesNoAllocation(t *testing.T) {
	var c CanonicalNames
	c.Of("grpc-timeout")
	if n := testing.AllocsPerRun(100, func() { c.Of("grpc-timeout") }); n != 0 {
		t.Errorf("Of of a remembered name: %v allocations", n)
	}
}
