package file

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/false-systems/rauta/internal/resources"
)

// Coalescing of change bursts: an editor's save, a git checkout or a
// ConfigMap update is many events; reload once, holdOff after the last one,
// but never later than maxDelay after the first.
const (
	holdOff  = 20 * time.Millisecond
	maxDelay = 100 * time.Millisecond
)

// Watch loads path, then reloads whenever a file below it changes (writes,
// editors that save by rename, new and deleted files, new subfolders, a
// ConfigMap volume's symlink swap), coalescing bursts of events, and calls
// onChange with each new snapshot or the error. A reload whose input bytes
// equal the previous one's is not delivered again. onChange runs on Watch's
// goroutine. Watch returns nil when ctx ends, or an error when it cannot
// watch at all (path's parent folder missing, no inotify).
func Watch(ctx context.Context, path string, onChange func(*resources.Resources, []Warning, error)) error {
	return watch(ctx, path, onChange, func() {})
}

// watch is Watch; seen runs for every event a watch delivers (tests count
// them).
func watch(ctx context.Context, path string, onChange func(*resources.Resources, []Warning, error), seen func()) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	parent, err := watchParent(filepath.Dir(abs))
	if err != nil {
		return err
	}
	defer parent.Close()
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	defer fsw.Close()
	// Watches and event names use the absolute path; Load uses the path as
	// given, so messages name files the way the user does.
	w := &watcher{fs: fsw, path: path, root: abs}
	// Watch before the first read, so a change in between is not lost.
	w.sync()
	w.reload(onChange)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var burst coalescer
	schedule := func() { timer.Reset(burst.event(time.Now())) }
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fsw.Events:
			if !ok {
				return errors.New("watch " + path + ": watcher closed")
			}
			seen()
			if ev.Op != fsnotify.Chmod {
				schedule()
			}
		case name, ok := <-parent.names:
			if !ok {
				return errors.New("watch " + path + ": watcher closed")
			}
			seen()
			if w.relevantEntry(name) {
				schedule()
			}
		case _, ok := <-fsw.Errors:
			if !ok {
				return errors.New("watch " + path + ": watcher closed")
			}
			// Typically a queue overflow: events were lost, so re-read.
			schedule()
		case <-timer.C:
			burst.fired()
			w.sync() // a root that vanished meanwhile shows in the reload
			w.reload(onChange)
		}
	}
}

// coalescer turns a burst of events into one reload: each event pushes the
// reload holdOff later, but never beyond maxDelay after the burst's first.
type coalescer struct {
	pending bool
	first   time.Time
}

// event records an event at now and returns how long to wait to reload.
func (c *coalescer) event(now time.Time) time.Duration {
	if !c.pending {
		c.pending, c.first = true, now
	}
	wait := holdOff
	if left := c.first.Add(maxDelay).Sub(now); left < wait {
		wait = max(left, 0)
	}
	return wait
}

// fired ends the burst.
func (c *coalescer) fired() { c.pending = false }

// watcher keeps fsnotify watches on root: a file, or a folder and every
// folder below it. The folder holding root is watched for its entries
// only (parentWatch).
type watcher struct {
	fs     *fsnotify.Watcher
	path   string // as given
	root   string // absolute
	isDir  bool
	last   [sha256.Size]byte
	loaded bool
}

// sync adds watches for folders that appeared and drops those no longer
// wanted. fsnotify itself forgets the watch of a folder that is deleted or
// moved away, so a folder re-created under the same name is added again.
// A file root is watched anew each time: an editor that saves by rename,
// or a ConfigMap's symlink swap, leaves the old watch on the old file.
func (w *watcher) sync() {
	want := map[string]bool{}
	info, err := os.Stat(w.root)
	w.isDir = err == nil && info.IsDir()
	switch {
	case w.isDir:
		_ = filepath.WalkDir(w.root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil //nolint:nilerr // vanished meanwhile; the reload reports it
			}
			if d.IsDir() {
				if p != w.root && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				want[p] = true
			}
			return nil
		})
	case err == nil:
		_ = w.fs.Remove(w.root)
		want[w.root] = true
	}
	have := map[string]bool{}
	for _, p := range w.fs.WatchList() {
		have[p] = true
		if !want[p] {
			_ = w.fs.Remove(p)
		}
	}
	for p := range want {
		if !have[p] {
			_ = w.fs.Add(p) // one that cannot be watched shows in the reload
		}
	}
}

// relevantEntry reports whether a change to the entry name of root's
// folder ("" when events were lost) can change what Load(root) returns:
// root itself, or, when root is a file, any entry, since it may be a
// symlink through "..data" that a ConfigMap update swaps.
func (w *watcher) relevantEntry(name string) bool {
	return name == "" || name == filepath.Base(w.root) || !w.isDir
}

// reload reads the input and delivers it unless it is byte for byte what
// was delivered last.
func (w *watcher) reload(onChange func(*resources.Resources, []Warning, error)) {
	names, listErr := listFiles(w.path)
	var srcs []source
	var readErrs []error
	if listErr == nil {
		srcs, readErrs = readFiles(names)
	}
	sum := fingerprint(srcs, readErrs, listErr)
	if w.loaded && sum == w.last {
		return
	}
	w.last, w.loaded = sum, true
	if listErr != nil {
		onChange(nil, nil, listErr)
		return
	}
	onChange(parse(srcs, readErrs))
}

func fingerprint(srcs []source, readErrs []error, listErr error) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range srcs {
		h.Write([]byte(s.name + "\x00" + strconv.Itoa(len(s.data)) + "\x00"))
		h.Write(s.data)
	}
	for _, err := range append(readErrs, listErr) {
		if err != nil {
			h.Write([]byte("\x00error\x00" + err.Error()))
		}
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
