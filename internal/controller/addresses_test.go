package controller

import "testing"

func TestAddressPoolKeepsAssignmentsAndReusesFreed(t *testing.T) {
	p, err := newAddressPool("127.0.1.0/30") // usable: .1 .2 .3
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.assign([]string{"ns/b", "ns/a"})
	if err != nil {
		t.Fatal(err)
	}
	if got["ns/a"] != "127.0.1.1" || got["ns/b"] != "127.0.1.2" {
		t.Fatalf("first assignment in key order: %v", got)
	}
	// a goes away, c and d arrive: b keeps its address, c takes the freed .1,
	// d takes .3.
	got, err = p.assign([]string{"ns/b", "ns/c", "ns/d"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ns/b": "127.0.1.2", "ns/c": "127.0.1.1", "ns/d": "127.0.1.3"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if _, ok := got["ns/a"]; ok {
		t.Errorf("released gateway still has an address: %v", got)
	}
	// The pool is full: a fifth gateway is reported and gets nothing.
	got, err = p.assign([]string{"ns/b", "ns/c", "ns/d", "ns/e"})
	if err == nil {
		t.Fatal("exhausted pool: want an error naming the gateway")
	}
	if _, ok := got["ns/e"]; ok {
		t.Errorf("gateway beyond the pool got an address: %v", got)
	}
}

func TestAddressPoolRejectsBadCIDR(t *testing.T) {
	if _, err := newAddressPool("127.0.1.0"); err == nil {
		t.Fatal("want an error for a pool without a prefix length")
	}
}
