package tlsprobe

import (
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/arch/x86/x86asm"
)

// Go's crypto/tls entry points, as the Go linker names them.
const (
	goWrite = "crypto/tls.(*Conn).Write"
	goRead  = "crypto/tls.(*Conn).Read"
)

// ErrNotGoTLS is returned by AttachGo for a file that is not an amd64 Go
// binary with crypto/tls symbols (stripped binaries have none).
var ErrNotGoTLS = errors.New("no crypto/tls symbols")

// maxFuncBytes bounds the machine code disassembled per function.
const maxFuncBytes = 64 << 10

// goFuncs are the file offsets of (*Conn).Write and (*Conn).Read in a Go
// binary and the offsets of Read's RET instructions from its start. The
// functions are found in the pclntab (debug/gosym), which every Go binary
// keeps for the runtime, so stripped binaries (go test's among them) work
// too.
type goFuncs struct {
	write, read uint64 // file offsets of the entries
	rets        []uint64
}

func findGoTLS(path string) (goFuncs, error) {
	var g goFuncs
	f, err := elf.Open(path)
	if err != nil {
		return g, fmt.Errorf("%s: %w: %w", path, ErrNotGoTLS, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return g, fmt.Errorf("%s: %w (not amd64)", path, ErrNotGoTLS)
	}
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	if pcln == nil || text == nil || pcln.Size > maxPclntab {
		return g, fmt.Errorf("%s: %w (no pclntab)", path, ErrNotGoTLS)
	}
	data, err := pcln.Data()
	if err != nil {
		return g, fmt.Errorf("%s: read pclntab: %w", path, err)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return g, fmt.Errorf("%s: %w: %w", path, ErrNotGoTLS, err)
	}
	read, write := tab.LookupFunc(goRead), tab.LookupFunc(goWrite)
	if read == nil || write == nil || read.End <= read.Entry || read.End-read.Entry > maxFuncBytes {
		return g, fmt.Errorf("%s: %w", path, ErrNotGoTLS)
	}
	if read.Entry < text.Addr || read.End > text.Addr+text.Size {
		return g, fmt.Errorf("%s: crypto/tls.(*Conn).Read outside .text", path)
	}
	code := make([]byte, read.End-read.Entry)
	if _, err := text.ReadAt(code, int64(read.Entry-text.Addr)); err != nil {
		return g, fmt.Errorf("%s: read crypto/tls.(*Conn).Read: %w", path, err)
	}
	if g.rets, err = retOffsets(code); err != nil {
		return g, fmt.Errorf("%s: %w", path, err)
	}
	var ok1, ok2 bool
	g.read, ok1 = fileOffset(f, read.Entry)
	g.write, ok2 = fileOffset(f, write.Entry)
	if !ok1 || !ok2 {
		return g, fmt.Errorf("%s: crypto/tls functions outside a loadable segment", path)
	}
	return g, nil
}

// maxPclntab bounds the pclntab read per binary (big Go binaries have
// tens of MiB).
const maxPclntab = 256 << 20

// fileOffset converts a virtual address to its offset in the file, as
// uprobes want it.
func fileOffset(f *elf.File, addr uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && addr >= p.Vaddr && addr < p.Vaddr+p.Filesz {
			return addr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}

// retOffsets disassembles code and returns the offsets of its RET
// instructions. Decoding stops at the first byte sequence that is not an
// instruction (padding after the function's end).
func retOffsets(code []byte) ([]uint64, error) {
	var rets []uint64
	for off := 0; off < len(code); {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil || inst.Len == 0 {
			break
		}
		if inst.Op == x86asm.RET {
			rets = append(rets, uint64(off))
		}
		off += inst.Len
	}
	if len(rets) == 0 {
		return nil, errors.New("no RET found in crypto/tls.(*Conn).Read")
	}
	return rets, nil
}

// AttachGo probes Go's crypto/tls in the Go binary at path: a uprobe on
// the entry of (*Conn).Write, one on the entry of (*Conn).Read and one on
// each RET of Read. It returns false when the file is probed already.
func (p *Probe) AttachGo(path string) (bool, error) {
	return p.attachFile(path, func(ex *link.Executable, lib *library) error {
		g, err := findGoTLS(path)
		if err != nil {
			return err
		}
		attach := func(sym string, prog *ebpf.Program, addr, off uint64) error {
			l, err := ex.Uprobe(sym, prog, &link.UprobeOptions{Address: addr, Offset: off})
			if err != nil {
				return fmt.Errorf("uprobe %s+%#x in %s: %w", sym, off, path, err)
			}
			lib.links = append(lib.links, l)
			return nil
		}
		if err := attach(goWrite, p.objs.TlsGoWrite, g.write, 0); err != nil {
			return err
		}
		if err := attach(goRead, p.objs.TlsGoRead, g.read, 0); err != nil {
			return err
		}
		for _, off := range g.rets {
			if err := attach(goRead, p.objs.TlsGoReadRet, g.read, off); err != nil {
				return err
			}
		}
		return nil
	})
}
