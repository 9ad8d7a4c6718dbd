// Package tlsprobe reads plaintext HTTP from inside TLS libraries: uprobes
// on OpenSSL's SSL_write/SSL_read (and the _ex variants) in every libssl
// that processes on the node have mapped, and on Go's crypto/tls in every
// Go binary they run (bpf/tlsprobe.c). The packet
// programs see only ciphertext on those connections; these probes see the
// bytes before encryption and after decryption, with the process that
// handled them.
package tlsprobe

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/false-systems/rauta/bpf"
)

// Options bound the probe. Zero fields take the defaults.
type Options struct {
	// RingBytes sizes the ring buffer (a power of two, multiple of the
	// page size; default 4 MiB: ~20k requests of 200 bytes between two
	// drains).
	RingBytes uint32
	// MaxConns bounds the TLS connections whose plaintext offsets the
	// kernel tracks (default 16384, LRU).
	MaxConns uint32
	// MaxLibraries bounds the files probed, libssl libraries and Go
	// binaries (default 64): a libssl takes four uprobes and four
	// uretprobes, a Go binary two uprobes and one per RET of Read.
	MaxLibraries int
}

func (o Options) withDefaults() Options {
	if o.RingBytes == 0 {
		o.RingBytes = 4 << 20
	}
	if o.MaxConns == 0 {
		o.MaxConns = 16384
	}
	if o.MaxLibraries <= 0 {
		o.MaxLibraries = 64
	}
	return o
}

// ErrLibraryLimit is returned by Attach when Options.MaxLibraries files
// are probed already.
var ErrLibraryLimit = errors.New("tls library limit reached")

// Probe holds the loaded programs, the tracepoint links that name each
// connection's socket, and the uprobes of every library attached.
// Attach and Close may be called from any goroutine; the Reader from one.
type Probe struct {
	opts Options
	objs bpf.TlsprobeObjects

	// NoAddresses is set when the socket tracepoints could not be
	// attached (Linux before 6.3): events then carry no addresses.
	NoAddresses error

	mu    sync.Mutex
	socks []link.Link
	libs  map[fileID]*library
}

// fileID identifies a library file whatever path it was reached by (a
// container's root, a symlink, the host path).
type fileID struct{ dev, ino uint64 }

type library struct {
	path  string
	links []link.Link
}

// Open loads the programs and attaches the socket tracepoints. No library is probed
// yet: see Attach and Scanner.
func Open(opts Options) (*Probe, error) {
	opts = opts.withDefaults()
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", err)
	}
	spec, err := bpf.LoadTlsprobe()
	if err != nil {
		return nil, fmt.Errorf("tls probe spec: %w", err)
	}
	spec.Maps["tls_events"].MaxEntries = opts.RingBytes
	spec.Maps["tls_conns"].MaxEntries = opts.MaxConns
	if err := spec.Variables["self_tgid"].Set(uint32(os.Getpid())); err != nil {
		return nil, fmt.Errorf("tls probe: %w", err)
	}
	p := &Probe{opts: opts, libs: make(map[fileID]*library)}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		return nil, fmt.Errorf("load tls probe: %w", err)
	}
	for _, tp := range []struct {
		name string
		prog *ebpf.Program
	}{{"sock_send_length", p.objs.TlsSockSend}, {"sock_recv_length", p.objs.TlsSockRecv}} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: tp.prog})
		if err != nil {
			// Before Linux 6.3: plaintext still flows, without addresses.
			p.NoAddresses = fmt.Errorf("raw tracepoint %s: %w", tp.name, err)
			break
		}
		p.socks = append(p.socks, l)
	}
	return p, nil
}

// Events is the ring buffer map (for NewReader).
func (p *Probe) Events() *ebpf.Map { return p.objs.TlsEvents }

// sslSymbols are the entry points probed in a libssl, each with the
// program that remembers the call; one return program serves all.
func (p *Probe) sslSymbols() []struct {
	sym  string
	prog *ebpf.Program
} {
	return []struct {
		sym  string
		prog *ebpf.Program
	}{
		{"SSL_write", p.objs.TlsSslWrite},
		{"SSL_read", p.objs.TlsSslRead},
		{"SSL_write_ex", p.objs.TlsSslWriteEx},
		{"SSL_read_ex", p.objs.TlsSslReadEx},
	}
}

// Attach probes the OpenSSL library at path (any path that reaches the
// file: /proc/PID/root/... for a container's). It returns false when that
// file is probed already. SSL_write and SSL_read are required; the _ex
// variants (OpenSSL 1.1.1+) are probed when the library has them.
func (p *Probe) Attach(path string) (bool, error) {
	return p.attachFile(path, func(ex *link.Executable, lib *library) error {
		for i, s := range p.sslSymbols() {
			up, err := ex.Uprobe(s.sym, s.prog, nil)
			if err != nil {
				if i >= 2 && errors.Is(err, link.ErrNoSymbol) {
					continue // OpenSSL before 1.1.1 has no _ex calls
				}
				return fmt.Errorf("uprobe %s in %s: %w", s.sym, path, err)
			}
			lib.links = append(lib.links, up)
			ret, err := ex.Uretprobe(s.sym, p.objs.TlsSslRet, nil)
			if err != nil {
				return fmt.Errorf("uretprobe %s in %s: %w", s.sym, path, err)
			}
			lib.links = append(lib.links, ret)
		}
		return nil
	})
}

// attachFile probes the file at path once (by device and inode) within
// the file budget: probe adds its links to lib, which are closed again
// when it fails.
func (p *Probe) attachFile(path string, probe func(*link.Executable, *library) error) (bool, error) {
	id, err := statID(path)
	if err != nil {
		return false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.libs == nil {
		return false, errors.New("tls probe closed")
	}
	if _, ok := p.libs[id]; ok {
		return false, nil
	}
	if len(p.libs) >= p.opts.MaxLibraries {
		return false, fmt.Errorf("%w (%d): %s not probed", ErrLibraryLimit, p.opts.MaxLibraries, path)
	}
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", path, err)
	}
	lib := &library{path: path}
	if err := probe(ex, lib); err != nil {
		return false, errors.Join(err, closeAll(lib.links))
	}
	p.libs[id] = lib
	return true, nil
}

// Stats reads the kernel counters.
func (p *Probe) Stats() (Stats, error) {
	var s Stats
	fields := []*uint64{&s.Events, &s.RingFull, &s.NonHTTP, &s.Truncated, &s.CallsLost}
	for i, f := range fields {
		var per []uint64
		if err := p.objs.TlsStats.Lookup(uint32(i), &per); err != nil {
			return s, fmt.Errorf("read tls stats: %w", err)
		}
		for _, v := range per {
			*f += v
		}
	}
	p.mu.Lock()
	s.Libraries = len(p.libs)
	p.mu.Unlock()
	return s, nil
}

// Stats are the kernel side's cumulative counters.
type Stats struct {
	Events    uint64 // records submitted
	RingFull  uint64 // records lost: ring full
	NonHTTP   uint64 // reads/writes that did not start like HTTP/1.x
	Truncated uint64 // records whose call carried more than was copied
	CallsLost uint64 // returns without their entry
	Libraries int    // library files probed now
}

// Close detaches every probe and frees the programs and maps.
func (p *Probe) Close() error {
	p.mu.Lock()
	var errs []error
	for _, l := range p.libs {
		errs = append(errs, closeAll(l.links))
	}
	p.libs = nil
	errs = append(errs, closeAll(p.socks))
	p.socks = nil
	p.mu.Unlock()
	errs = append(errs, p.objs.Close())
	return errors.Join(errs...)
}

func closeAll(ls []link.Link) error {
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}
