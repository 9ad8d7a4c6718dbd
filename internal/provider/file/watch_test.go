package file

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/resources"
)

// The deadline for a change to arrive. In practice it takes tens of
// milliseconds (hold-off 20 ms, at most 100 ms); the margin absorbs a loaded
// machine and is not a performance assertion.
const deliveryDeadline = 5 * time.Second

type delivery struct {
	res      *resources.Resources
	warnings []Warning
	err      error
}

// startWatch runs Watch on path until the test ends and returns its deliveries.
func startWatch(t *testing.T, path string) <-chan delivery {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan delivery, 100)
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, path, func(r *resources.Resources, w []Warning, err error) {
			ch <- delivery{r, w, err}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch returned %v after cancel, want nil", err)
			}
		case <-time.After(deliveryDeadline):
			t.Error("Watch did not return after its context ended")
		}
	})
	return ch
}

// next returns the next delivery, failing the test after the deadline.
func next(t *testing.T, ch <-chan delivery, what string) delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(deliveryDeadline):
		t.Fatalf("no delivery within %v: %s", deliveryDeadline, what)
		return delivery{}
	}
}

// expectSnapshot waits for the next delivery and checks it is a snapshot.
func expectSnapshot(t *testing.T, ch <-chan delivery, what string) *resources.Resources {
	t.Helper()
	d := next(t, ch, what)
	if d.err != nil {
		t.Fatalf("%s: got error %v", what, d.err)
	}
	return d.res
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.TrimPrefix(content, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// renameOver saves content the way many editors do: a temporary file,
// then a rename over the original.
func renameOver(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	write(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func namespace(name string) string {
	return "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + name + "}\n"
}

func TestWatchFolder(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "class.yaml"), gatewayClass)
	ch := startWatch(t, dir)

	res := expectSnapshot(t, ch, "initial load")
	if len(res.GatewayClasses) != 1 || len(res.Gateways) != 0 {
		t.Fatalf("initial snapshot %+v", res)
	}

	write(t, filepath.Join(dir, "gateway.yaml"), gateway)
	res = expectSnapshot(t, ch, "new file")
	if len(res.Gateways) != 1 || res.Gateways[0].Spec.Listeners[0].Port != 80 {
		t.Fatalf("after new file: %+v", res.Gateways)
	}

	renameOver(t, filepath.Join(dir, "gateway.yaml"), strings.Replace(gateway, "port: 80", "port: 8080", 1))
	res = expectSnapshot(t, ch, "rename over")
	if len(res.Gateways) != 1 || res.Gateways[0].Spec.Listeners[0].Port != 8080 {
		t.Fatalf("after rename over: %+v", res.Gateways)
	}

	// A new nested folder whose file is written before a watch on it can
	// exist: the reload after adding the watches must still see it.
	nested := filepath.Join(dir, "teams", "a", "b")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(nested, "ns.yaml"), namespace("team-a"))
	res = expectSnapshot(t, ch, "new nested folder")
	if len(res.Namespaces) != 1 {
		t.Fatalf("after new folder: %+v", res.Namespaces)
	}
	// ... and later changes inside it are watched.
	write(t, filepath.Join(nested, "ns2.yaml"), namespace("team-b"))
	res = expectSnapshot(t, ch, "file in the new folder")
	if len(res.Namespaces) != 2 {
		t.Fatalf("after second file in new folder: %+v", res.Namespaces)
	}

	if err := os.Remove(filepath.Join(dir, "gateway.yaml")); err != nil {
		t.Fatal(err)
	}
	res = expectSnapshot(t, ch, "deleted file")
	if len(res.Gateways) != 0 {
		t.Fatalf("after delete: %+v", res.Gateways)
	}

	write(t, filepath.Join(dir, "bad.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, nam: y}\n")
	d := next(t, ch, "broken file")
	if d.err == nil || !strings.Contains(d.err.Error(), "bad.yaml:3: Namespace x: metadata.nam: unknown field") || d.res != nil {
		t.Fatalf("after broken file: %+v", d)
	}

	// Rewriting identical bytes is not a change, so the next delivery is
	// the fix.
	write(t, filepath.Join(dir, "bad.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, nam: y}\n")
	write(t, filepath.Join(dir, "bad.yaml"), namespace("x"))
	res = expectSnapshot(t, ch, "fixed file")
	if len(res.Namespaces) != 3 {
		t.Fatalf("after fix: %+v", res.Namespaces)
	}

	if err := os.RemoveAll(filepath.Join(dir, "teams")); err != nil {
		t.Fatal(err)
	}
	res = expectSnapshot(t, ch, "removed folder")
	if len(res.Namespaces) != 1 || res.Namespaces[0].Name != "x" {
		t.Fatalf("after removing a folder: %+v", res.Namespaces)
	}

	// A folder removed and created again under the same name is watched again.
	again := filepath.Join(dir, "teams")
	if err := os.Mkdir(again, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(again, "c.yaml"), namespace("team-c"))
	res = expectSnapshot(t, ch, "re-created folder")
	if len(res.Namespaces) != 2 {
		t.Fatalf("after re-created folder: %+v", res.Namespaces)
	}
	write(t, filepath.Join(again, "d.yaml"), namespace("team-d"))
	if res = expectSnapshot(t, ch, "file in re-created folder"); len(res.Namespaces) != 3 {
		t.Fatalf("after file in re-created folder: %+v", res.Namespaces)
	}
}

func TestWatchFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rauta.yaml")
	write(t, path, gateway)
	write(t, filepath.Join(dir, "other.yaml"), namespace("unrelated"))
	ch := startWatch(t, path)
	if res := expectSnapshot(t, ch, "initial load"); len(res.Gateways) != 1 || len(res.Namespaces) != 0 {
		t.Fatalf("initial snapshot %+v", res)
	}

	renameOver(t, path, gateway+"---\n"+namespace("apps"))
	if res := expectSnapshot(t, ch, "rename over"); len(res.Namespaces) != 1 {
		t.Fatalf("after rename over: %+v", res)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if d := next(t, ch, "file removed"); d.err == nil || !strings.Contains(d.err.Error(), "no such file") {
		t.Fatalf("after remove: %+v", d)
	}

	write(t, path, namespace("back"))
	if res := expectSnapshot(t, ch, "file re-created"); len(res.Namespaces) != 1 || res.Namespaces[0].Name != "back" {
		t.Fatalf("after re-create: %+v", res)
	}
}

// A ConfigMap volume updates atomically: a new hidden timestamped folder, a
// "..data" symlink swapped by rename, and stable symlinks through it.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	publish := func(version, content string) {
		t.Helper()
		data := filepath.Join(dir, "..2026_"+version)
		if err := os.Mkdir(data, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(data, "gateway.yaml"), content)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(data), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	publish("1", gateway)
	if err := os.Symlink(filepath.Join("..data", "gateway.yaml"), filepath.Join(dir, "gateway.yaml")); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, path string
		port       int32
	}{
		{"folder", dir, 8081},
		{"file", filepath.Join(dir, "gateway.yaml"), 8082},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := startWatch(t, tc.path)
			res := expectSnapshot(t, ch, "initial load")
			if len(res.Gateways) != 1 {
				t.Fatalf("initial snapshot %+v (the hidden ..data folder must not be read twice)", res)
			}
			port := strconv.Itoa(int(tc.port))
			publish(port, strings.Replace(gateway, "port: 80", "port: "+port, 1))
			res = expectSnapshot(t, ch, "..data swap")
			if got := res.Gateways[0].Spec.Listeners[0].Port; got != tc.port {
				t.Fatalf("after swap: port %d, want %d", got, tc.port)
			}
		})
	}
}

func TestWatchRootCreatedLater(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "config")
	ch := startWatch(t, root)
	if d := next(t, ch, "initial load"); d.err == nil {
		t.Fatalf("initial load of a missing folder: %+v", d)
	}
	// Create the folder under another name and move it in, so its content
	// is complete when it appears (as deployment tools do).
	staging := filepath.Join(parent, ".staging")
	if err := os.Mkdir(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(staging, "ns.yaml"), namespace("late"))
	if err := os.Rename(staging, root); err != nil {
		t.Fatal(err)
	}
	if res := expectSnapshot(t, ch, "folder appeared"); len(res.Namespaces) != 1 {
		t.Fatalf("after folder appeared: %+v", res)
	}
	write(t, filepath.Join(root, "ns2.yaml"), namespace("later"))
	if res := expectSnapshot(t, ch, "file in the new folder"); len(res.Namespaces) != 2 {
		t.Fatalf("after second file: %+v", res)
	}
}

func TestWatchMissingParent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "folder")
	called := false
	err := Watch(context.Background(), path, func(*resources.Resources, []Warning, error) { called = true })
	if err == nil || !strings.Contains(err.Error(), "watch ") {
		t.Fatalf("Watch = %v, want an error naming the folder it cannot watch", err)
	}
	if called {
		t.Error("onChange called although nothing could be watched")
	}
}

func TestCoalescer(t *testing.T) {
	var c coalescer
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	steps := []struct {
		at   int
		want time.Duration
	}{
		{0, holdOff},  // first event of a burst
		{10, holdOff}, // each event pushes the reload back ...
		{50, holdOff},
		{85, 15 * time.Millisecond}, // ... but not past maxDelay after the first
		{99, time.Millisecond},
		{130, 0}, // already overdue: reload now
	}
	for _, s := range steps {
		if got := c.event(ms(s.at)); got != s.want {
			t.Errorf("event at %d ms: wait %v, want %v", s.at, got, s.want)
		}
	}
	c.fired()
	if got := c.event(ms(500)); got != holdOff {
		t.Errorf("first event after a reload: wait %v, want %v", got, holdOff)
	}
}

// TestWatchIgnoresBusySiblings: writes to a file beside the watched root
// (an access log next to the manifests) wake no watch at all, for a folder
// root and a file root; the root's own changes still arrive.
func TestWatchIgnoresBusySiblings(t *testing.T) {
	for _, isDir := range []bool{true, false} {
		t.Run(map[bool]string{true: "folder", false: "file"}[isDir], func(t *testing.T) {
			parent := t.TempDir()
			root := filepath.Join(parent, "rauta.yaml")
			if isDir {
				root = filepath.Join(parent, "config")
				if err := os.Mkdir(root, 0o755); err != nil {
					t.Fatal(err)
				}
				write(t, filepath.Join(root, "gw.yaml"), gateway)
			} else {
				write(t, root, gateway)
			}
			log, err := os.Create(filepath.Join(parent, "access.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()

			ctx, cancel := context.WithCancel(context.Background())
			ch := make(chan delivery, 10)
			var seen atomic.Int64
			done := make(chan error, 1)
			go func() {
				done <- watch(ctx, root, func(r *resources.Resources, w []Warning, err error) { ch <- delivery{r, w, err} }, func() { seen.Add(1) })
			}()
			defer func() {
				cancel()
				<-done
			}()
			expectSnapshot(t, ch, "initial load")
			// In bursts with pauses, so that events a watch did take
			// would not all merge into one (inotify merges a repeat of
			// the event still unread).
			for i := range 500 {
				if _, err := log.WriteString("line " + strconv.Itoa(i) + "\n"); err != nil {
					t.Fatal(err)
				}
				if i%25 == 24 {
					time.Sleep(2 * time.Millisecond)
				}
			}
			// The root's change comes after the writes: once it is
			// delivered, any event of theirs has been seen too.
			file := root
			if isDir {
				file = filepath.Join(root, "gw.yaml")
			}
			write(t, file, gateway+"---\n"+namespace("apps"))
			if res := expectSnapshot(t, ch, "root changed"); len(res.Namespaces) != 1 {
				t.Fatalf("after the root's change: %+v", res)
			}
			if n := seen.Load(); n > 5 {
				t.Errorf("%d events seen for 500 writes beside the root and one change of it", n)
			}
		})
	}
}

// TestWatchRootFolderReplaced: a folder moved over the watched one (as a
// deployment tool swaps a complete new version in) is watched from then
// on, not the old folder the watches were on.
func TestWatchRootFolderReplaced(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "config")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "ns.yaml"), namespace("first"))
	ch := startWatch(t, root)
	if res := expectSnapshot(t, ch, "initial load"); len(res.Namespaces) != 1 {
		t.Fatalf("initial snapshot %+v", res)
	}
	staging := filepath.Join(parent, ".staging")
	if err := os.Mkdir(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(staging, "ns.yaml"), namespace("second"))
	if err := os.Rename(root, filepath.Join(parent, "config.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staging, root); err != nil {
		t.Fatal(err)
	}
	for {
		d := next(t, ch, "folder replaced")
		if d.err == nil && len(d.res.Namespaces) == 1 && d.res.Namespaces[0].Name == "second" {
			break
		}
	}
	// The old folder's watch would see this, the new folder's must.
	write(t, filepath.Join(root, "more.yaml"), namespace("third"))
	if res := expectSnapshot(t, ch, "file in the replacing folder"); len(res.Namespaces) != 2 {
		t.Fatalf("after a file in the replacing folder: %+v", res)
	}
}
