package node

import (
	"archive/tar"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func testImageLayers() [][]TestEntry {
	lower := []TestEntry{
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "bin/server", Body: []byte("#!binary"), Mode: 0o755},
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/passwd", Body: []byte("root:x:0:0::/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n"), Mode: 0o644},
		{Name: "etc/old.conf", Body: []byte("removed above"), Mode: 0o644},
		{Name: "home/nonroot/", Type: tar.TypeDir, Mode: 0o700, UID: 65532, GID: 65532},
		{Name: "home/nonroot/notes", Body: []byte("mine"), Mode: 0o644, UID: 65532, GID: 65532},
		{Name: "run/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "var/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "var/run", Type: tar.TypeSymlink, Link: "/run"},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
		{Name: "bin/setuid", Body: []byte("x"), Mode: 0o4755},
	}
	upper := []TestEntry{
		{Name: "etc/.wh.old.conf", Body: nil, Mode: 0o644},
		{Name: "bin/server2", Type: tar.TypeLink, Link: "bin/server"},
		// An upper layer replaces a lower one's file.
		{Name: "etc/passwd", Body: []byte("root:x:0:0::/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\nupper:x:1:1::/:/x\n"), Mode: 0o644},
	}
	return [][]TestEntry{lower, upper}
}

func TestImageStoreUnpacksOncePerDigest(t *testing.T) {
	layoutDir := filepath.Join(t.TempDir(), "oci")
	cfg := v1.Config{Entrypoint: []string{"/bin/server"}, User: "65532:65532", Env: []string{"IMAGE_ENV=1"}, WorkingDir: "/home/nonroot"}
	digest := BuildTestLayout(t, layoutDir, cfg, testImageLayers()...)
	store := newImageStore(filepath.Join(t.TempDir(), "images"))
	img, err := store.get(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	if img.digest != digest || img.config.User != "65532:65532" || !slices.Equal(img.config.Env, []string{"IMAGE_ENV=1"}) {
		t.Errorf("image %s config %+v, want digest %s", img.digest, img.config, digest)
	}
	if !strings.HasSuffix(img.rootfs, filepath.Join(strings.ReplaceAll(digest, ":", "-"), "rootfs")) {
		t.Errorf("rootfs %s not under the digest", img.rootfs)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(img.rootfs, name))
		if err != nil {
			return "error: " + err.Error()
		}
		return string(b)
	}
	if got := read("bin/server"); got != "#!binary" {
		t.Errorf("bin/server: %q", got)
	}
	if got := read("etc/passwd"); !strings.Contains(got, "upper:") {
		t.Errorf("etc/passwd from the lower layer: %q", got)
	}
	if _, err := os.Lstat(filepath.Join(img.rootfs, "etc/old.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("whited-out file present: %v", err)
	}
	a, _ := os.Stat(filepath.Join(img.rootfs, "bin/server"))
	b, _ := os.Stat(filepath.Join(img.rootfs, "bin/server2"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Errorf("hard link bin/server2 is not bin/server")
	}
	if fi, err := os.Stat(filepath.Join(img.rootfs, "bin/setuid")); err != nil || fi.Mode()&fs.ModeSetuid != 0 {
		t.Errorf("set-user-ID bit kept: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(img.rootfs, "tmp")); err != nil || fi.Mode()&fs.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("/tmp mode: %v %v", fi, err)
	}
	if os.Geteuid() == 0 {
		fi, err := os.Stat(filepath.Join(img.rootfs, "home/nonroot/notes"))
		if err != nil || fi.Sys().(*syscall.Stat_t).Uid != 65532 {
			t.Errorf("ownership not kept: %v", err)
		}
	}

	again, err := store.get(layoutDir)
	if err != nil || again != img {
		t.Errorf("second get %p %v, want the same unpacked image %p", again, err, img)
	}
	// A new store (an agent restarted on the same state folder) re-uses the folder.
	if again, err := newImageStore(store.dir).get(layoutDir); err != nil || again.rootfs != img.rootfs {
		t.Errorf("fresh store: %+v %v", again, err)
	}
	if _, err := store.get(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "OCI layout") {
		t.Errorf("missing layout: %v", err)
	}
}

// go-containerregistry refuses a layer entry with ".." in its path; the error must reach
// the pod instead of a silently truncated file system.
func TestUnpackReportsExtractErrors(t *testing.T) {
	layoutDir := filepath.Join(t.TempDir(), "oci")
	BuildTestLayout(t, layoutDir, v1.Config{}, append(testImageLayers(), []TestEntry{{Name: "../../outside", Body: []byte("x"), Mode: 0o644}})...)
	_, err := newImageStore(filepath.Join(t.TempDir(), "images")).get(layoutDir)
	if err == nil || !strings.Contains(err.Error(), "unsafe tar path") {
		t.Fatalf("error %v, want the extract error", err)
	}
}

func TestLinkTreeSharesOnlyImmutableFiles(t *testing.T) {
	layoutDir := filepath.Join(t.TempDir(), "oci")
	BuildTestLayout(t, layoutDir, v1.Config{}, testImageLayers()...)
	img, err := newImageStore(filepath.Join(t.TempDir(), "images")).get(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "c1", "rootfs")
	if err := linkTree(img.rootfs, dst, false); err != nil {
		t.Fatal(err)
	}
	same := func(name string) bool {
		a, err1 := os.Stat(filepath.Join(img.rootfs, name))
		b, err2 := os.Stat(filepath.Join(dst, name))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v %v", name, err1, err2)
		}
		return os.SameFile(a, b)
	}
	if os.Geteuid() == 0 && !same("bin/server") {
		t.Error("root-owned read-only file was copied, want a hard link")
	}
	if os.Geteuid() == 0 && same("home/nonroot/notes") {
		t.Error("file owned by the container user is a hard link: the container could change the shared image")
	}
	// For a container running as root every file is a copy.
	rootCopy := filepath.Join(t.TempDir(), "c2", "rootfs")
	if err := linkTree(img.rootfs, rootCopy, true); err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(filepath.Join(img.rootfs, "bin/server"))
	if b, err := os.Stat(filepath.Join(rootCopy, "bin/server")); err != nil || os.SameFile(a, b) {
		t.Errorf("root container's bin/server is the image's file (%v)", err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "var/run")); err != nil || l != "/run" {
		t.Errorf("symlink: %q %v", l, err)
	}
	// The copy's folders are its own: adding a file does not touch the image.
	if err := os.WriteFile(filepath.Join(dst, "tmp", "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(img.rootfs, "tmp", "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file created in a container root appeared in the image: %v", err)
	}
}

func TestLookPathIn(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"usr/bin", "app"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "usr/bin/tool"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "usr/bin/data"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/bin/tool", filepath.Join(dir, "app/tool-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/bin", filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tt := range []struct{ file, workDir, path, want string }{
		{"tool", "/", "/bin:/usr/bin", "/bin/tool"},
		{"/app/tool-link", "/", "", "/app/tool-link"},
		{"./tool-link", "/app", "", "/app/tool-link"},
		{"data", "/", "/usr/bin", ""},
		{"tool", "/", "/sbin", ""},
	} {
		got, err := lookPathIn(r, tt.file, tt.workDir, tt.path)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("lookPathIn(%q, %q, %q) = %q, %v; want %q", tt.file, tt.workDir, tt.path, got, err, tt.want)
		}
	}
}

// A layout with one image per platform (as multi-arch builds write) runs this machine's.
func TestLayoutPicksThisPlatform(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oci")
	BuildTestLayout(t, dir, v1.Config{Entrypoint: []string{"/bin/server"}}, testImageLayers()...)
	other := filepath.Join(t.TempDir(), "other")
	BuildTestLayout(t, other, v1.Config{Entrypoint: []string{"/bin/other"}}, testImageLayers()...)
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(other)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	otherImg, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	arch := "arm64"
	if runtime.GOARCH == "arm64" {
		arch = "amd64"
	}
	if err := p.AppendImage(otherImg, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: arch})); err != nil {
		t.Fatal(err)
	}
	img, err := newImageStore(filepath.Join(t.TempDir(), "images")).get(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.config.Entrypoint, []string{"/bin/server"}) {
		t.Errorf("picked the image with Entrypoint %q, want this platform's /bin/server", img.config.Entrypoint)
	}
	// A second image for no particular platform makes the choice ambiguous.
	if err := p.AppendImage(otherImg); err != nil {
		t.Fatal(err)
	}
	if _, err := newImageStore(filepath.Join(t.TempDir(), "images")).get(dir); err == nil || !strings.Contains(err.Error(), "2 images") {
		t.Errorf("two candidate images: error %v", err)
	}
}
