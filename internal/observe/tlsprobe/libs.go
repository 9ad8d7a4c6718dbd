package tlsprobe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ScanOptions bound a scan of the node's processes.
type ScanOptions struct {
	// Proc is the procfs mount (default /proc; the node's, i.e. the
	// observer runs with hostPID).
	Proc string
	// MaxProcesses bounds the processes whose maps one pass reads
	// (default 8192).
	MaxProcesses int
	// MaxMapsBytes bounds what is read of one process's maps file
	// (default 1 MiB: thousands of mappings).
	MaxMapsBytes int64
}

func (o ScanOptions) withDefaults() ScanOptions {
	if o.Proc == "" {
		o.Proc = "/proc"
	}
	if o.MaxProcesses <= 0 {
		o.MaxProcesses = 8192
	}
	if o.MaxMapsBytes <= 0 {
		o.MaxMapsBytes = 1 << 20
	}
	return o
}

// FindLibraries lists the OpenSSL libraries (libssl.so*) in the host's
// library folders and those mapped by the node's processes, one path per file (deduplicated by device and inode),
// each reachable from this process: /proc/PID/root/<path in the process's
// mount namespace>, so libraries inside containers are found too.
func FindLibraries(o ScanOptions) ([]string, error) {
	ssl, _, err := find(o)
	return ssl, err
}

// find returns the libssl files (see FindLibraries) and the processes'
// executables (/proc/PID/exe, one per file), which may be Go binaries.
func find(o ScanOptions) (ssl, exes []string, err error) {
	o = o.withDefaults()
	ents, err := os.ReadDir(o.Proc)
	if err != nil {
		return nil, nil, fmt.Errorf("scan processes: %w", err)
	}
	seen := make(map[fileID]bool)
	var out []string
	// The host's own libraries first (init's root is the host's with
	// hostPID; the observer's own root where that is not readable): a
	// short-lived client such as curl maps libssl for less than a scan
	// interval, and a library probed before it starts covers it from its
	// first call.
	var matches []string
	for _, root := range []string{filepath.Join(o.Proc, "1", "root"), "/"} {
		for _, dir := range hostLibDirs {
			m, _ := filepath.Glob(filepath.Join(root, dir, "libssl.so*"))
			matches = append(matches, m...)
		}
	}
	for _, p := range matches {
		id, err := statID(p)
		if err != nil || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, p)
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if n >= o.MaxProcesses {
			break
		}
		n++
		exe := filepath.Join(o.Proc, e.Name(), "exe")
		if id, err := statID(exe); err == nil && !seen[id] {
			seen[id] = true
			exes = append(exes, exe)
		}
		libs, err := mappedSSL(filepath.Join(o.Proc, e.Name(), "maps"), o.MaxMapsBytes)
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, l := range libs {
			p := filepath.Join(o.Proc, e.Name(), "root", l)
			id, err := statID(p)
			if err != nil || seen[id] {
				continue
			}
			seen[id] = true
			out = append(out, p)
		}
	}
	return out, exes, nil
}

// hostLibDirs are where distributions keep libssl.
var hostLibDirs = []string{"usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "usr/lib64", "lib64", "usr/lib", "lib"}

// mappedSSL returns the distinct libssl paths in a maps file.
func mappedSSL(maps string, limit int64) ([]string, error) {
	f, err := os.Open(maps)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(io.LimitReader(f, limit))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		path := line[i:]
		if !IsOpenSSL(path) {
			continue
		}
		if len(out) == 0 || out[len(out)-1] != path {
			out = append(out, path)
		}
	}
	return out, sc.Err()
}

// IsOpenSSL reports whether a mapped file is an OpenSSL libssl (a
// " (deleted)" file, replaced by a package upgrade, is not probed: its
// path now names another file).
func IsOpenSSL(path string) bool {
	if strings.HasSuffix(path, " (deleted)") {
		return false
	}
	base := filepath.Base(path)
	return strings.HasPrefix(base, "libssl.so")
}

func statID(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, fmt.Errorf("stat %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, fmt.Errorf("stat %s: no device and inode", path)
	}
	return fileID{dev: st.Dev, ino: st.Ino}, nil
}

// Scanner attaches the probe to every OpenSSL library it finds, at start
// and then every Interval, plus the Extra paths given by the operator.
type Scanner struct {
	Probe *Probe
	Scan  ScanOptions
	// Interval between passes (default 10s): a process started between
	// two passes is seen at the next one, and its TLS calls before that
	// are not. A library already probed (any process) is covered at once.
	Interval time.Duration
	// Extra are library paths probed at start whether or not a process
	// maps them yet (-tls-libs).
	Extra []string
	// Report is called after each pass with the libraries attached in it
	// and the errors met (optional).
	Report func(attached []string, errs []error)

	// notGo remembers executables without crypto/tls symbols, so that
	// each is parsed once (bounded by maxChecked).
	notGo map[fileID]bool
}

// maxChecked bounds the executables remembered as not Go TLS binaries.
const maxChecked = 65536

// Pass runs one scan and attach pass.
func (s *Scanner) Pass() (attached []string, errs []error) {
	libs, exes, err := find(s.Scan)
	if err != nil {
		errs = append(errs, err)
	}
	if s.notGo == nil || len(s.notGo) >= maxChecked {
		s.notGo = make(map[fileID]bool)
	}
	for _, p := range exes {
		id, err := statID(p)
		if err != nil || s.notGo[id] {
			continue
		}
		ok, err := s.Probe.AttachGo(p)
		switch {
		case errors.Is(err, ErrLibraryLimit):
			return attached, append(errs, err)
		case err != nil:
			// Not a Go binary with crypto/tls (most), or one that cannot
			// be probed: either way, not again.
			s.notGo[id] = true
			if !errors.Is(err, ErrNotGoTLS) {
				errs = append(errs, err)
			}
		case ok:
			attached = append(attached, p)
		}
	}
	for _, p := range append(append([]string(nil), s.Extra...), libs...) {
		ok, err := s.Probe.Attach(p)
		if err != nil {
			errs = append(errs, err)
			if errors.Is(err, ErrLibraryLimit) {
				break
			}
			continue
		}
		if ok {
			attached = append(attached, p)
		}
	}
	return attached, errs
}

// Run makes a pass every Interval until ctx ends (the first one after an
// Interval: callers make the first pass themselves, before they report
// ready).
func (s *Scanner) Run(ctx context.Context) {
	every := s.Interval
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a, errs := s.Pass()
		if s.Report != nil {
			s.Report(a, errs)
		}
	}
}
