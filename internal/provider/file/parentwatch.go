package file

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// parentWatch watches the folder holding the watched root for entries that
// appear, go or are renamed there (the root itself created, deleted or
// replaced, a ConfigMap volume's "..data" swap), and for nothing else.
//
// Why not fsnotify: it watches a folder for every write to every file in
// it, and a busy file beside the configuration (an access log, a load
// tool's per-request log) then woke the watcher on each write: 3 us more
// CPU per request, 16 %, at 40,000 HTTP/2 requests a second
// (docs/performance.md, round 25). This watch asks the kernel for entry
// events only.
type parentWatch struct {
	f     *os.File
	names chan string // names of entries that changed; "" when events were lost
	done  chan struct{}
}

// parentEvents are the entry events the parent folder is watched for.
const parentEvents = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// watchParent starts watching dir's entries.
func watchParent(dir string) (*parentWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch %s: inotify: %w", dir, err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, parentEvents); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	// A non-blocking descriptor makes a File the runtime's poller waits
	// on, so a Read parks instead of holding a thread, and Close ends it.
	p := &parentWatch{f: os.NewFile(uintptr(fd), "inotify "+dir), names: make(chan string, 16), done: make(chan struct{})}
	go p.read()
	return p, nil
}

// inotifyHeader is the size of struct inotify_event before its name.
const inotifyHeader = unix.SizeofInotifyEvent

// read delivers the names of the events until the watch is closed. An
// overflow of the kernel's queue is delivered as "": something changed.
func (p *parentWatch) read() {
	defer close(p.names)
	buf := make([]byte, 16*(inotifyHeader+unix.NAME_MAX+1))
	for {
		n, err := p.f.Read(buf)
		if err != nil {
			return // closed
		}
		for off := 0; off+inotifyHeader <= n; {
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			size := int(binary.NativeEndian.Uint32(buf[off+12:]))
			end := min(off+inotifyHeader+size, n)
			name := strings.TrimRight(string(buf[off+inotifyHeader:end]), "\x00")
			off = end
			if mask&unix.IN_IGNORED != 0 {
				continue // the watch went with its folder; IN_DELETE_SELF said so
			}
			if mask&unix.IN_Q_OVERFLOW != 0 {
				name = ""
			}
			select {
			case p.names <- name:
			case <-p.done:
				return
			}
		}
	}
}

// Close ends the watch and its reader.
func (p *parentWatch) Close() {
	close(p.done)
	_ = p.f.Close()
}
