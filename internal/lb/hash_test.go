package lb

import "testing"

// Reference vectors from the XXH64 specification's test suite.
func TestXXH64Vectors(t *testing.T) {
	tests := []struct {
		in   string
		seed uint64
		want uint64
	}{
		{"", 0, 0xef46db3751d8e999},
		{"", 1, 0xd5afba1336a3be4b},
		{"a", 0, 0xd24ec4f1a98c6e5b},
		{"as", 0, 0x1c330fb2d66be179},
		{"asd", 0, 0x631c37ce72a97393},
		{"asdf", 0, 0x415872f599cea71e},
		{"abc", 0, 0x44bc2cf5ad770999},
		{"abcdefgh", 0, 0x3ad351775b4634b7},
		{"abcdefghij", 0, 0xd6287a1de5498bb2},
		{"0123456789abcdef", 0, 0x5c5b90c34e376d0b},
		{"0123456789abcdef0123456789abcdef", 0, 0x642a94958e71e6c5},
		{"abcdefghijklmnopqrstuvwxyz0123456789", 0, 0x64f23ecf1609b766},
		// 63 bytes: the 32-byte loop and every tail path.
		{"Call me Ishmael. Some years ago--never mind how long precisely-", 0, 0x02a2e85470d6fd96},
	}
	for _, tt := range tests {
		if got := xxh64(tt.in, tt.seed); got != tt.want {
			t.Errorf("xxh64(%q, %d) = %#x, want %#x", tt.in, tt.seed, got, tt.want)
		}
	}
	if Hash("asdf") != 0x415872f599cea71e {
		t.Errorf("Hash is not XXH64 with seed 0")
	}
}

func TestHashDoesNotAllocate(t *testing.T) {
	s := "2001:db8::1234:5678:9abc"
	if n := testing.AllocsPerRun(100, func() { _ = Hash(s) }); n != 0 {
		t.Fatalf("Hash allocates %v times per call", n)
	}
}
