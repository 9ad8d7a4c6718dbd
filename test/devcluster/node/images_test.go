package node

import "testing"

func TestImageRepository(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"registry.k8s.io/gateway-api/echo-basic:v1.5.1", "registry.k8s.io/gateway-api/echo-basic"},
		{"registry.k8s.io/gateway-api/echo-basic", "registry.k8s.io/gateway-api/echo-basic"},
		{"registry.k8s.io/gateway-api/echo-basic@sha256:abc", "registry.k8s.io/gateway-api/echo-basic"},
		{"registry.k8s.io/gateway-api/echo-basic:v1@sha256:abc", "registry.k8s.io/gateway-api/echo-basic"},
		{"localhost:5000/echo", "localhost:5000/echo"},
		{"localhost:5000/echo:v2", "localhost:5000/echo"},
		{"busybox", "busybox"},
	}
	for _, tt := range tests {
		if got := imageRepository(tt.ref); got != tt.want {
			t.Errorf("imageRepository(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
}

func TestResolveImage(t *testing.T) {
	maps := append(EchoBasicImages("/cache/echo-basic"), ImageMapping{Repository: "ghcr.io/false-systems/rauta", Layout: "/dist/oci"})
	maps = append(maps, CoreDNSImages("/tmp/rauta-echo")...)
	tests := []struct {
		image   string
		want    string
		wantErr bool
	}{
		{image: "registry.k8s.io/gateway-api/echo-basic:v1.6.0-dev.2", want: "/cache/echo-basic"},
		{image: "gcr.io/k8s-staging-gateway-api/echo-basic:v20240412-v1.0.0-394-g40c666fd", want: "/cache/echo-basic"},
		{image: "registry.k8s.io/gateway-api/echo-advanced:v1.5.1", wantErr: true},
		{image: "registry.k8s.io/coredns/coredns:v1.12.2", want: "/tmp/rauta-echo"},
		{image: "registry.k8s.io/gateway-api/echo-basic-evil:v1", wantErr: true},
		{image: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := resolveImage(maps, tt.image)
		if (err != nil) != tt.wantErr || got.Binary != tt.want {
			t.Errorf("resolveImage(%q) = %+v, %v; want binary %q, error %v", tt.image, got, err, tt.want, tt.wantErr)
		}
	}
	if got, err := resolveImage(maps, "ghcr.io/false-systems/rauta:v0.3.0"); err != nil || got.Layout != "/dist/oci" || got.Binary != "" {
		t.Errorf("layout mapping: %+v, %v", got, err)
	}
}
