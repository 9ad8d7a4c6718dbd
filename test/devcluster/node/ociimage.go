package node

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// unpackedImage is an image from an OCI layout, unpacked once and shared by every
// container that runs it (each gets its own hard-linked copy of rootfs).
type unpackedImage struct {
	digest string
	rootfs string
	config v1.Config
}

// imageStore unpacks OCI layouts into dir/<digest>/rootfs, once per image digest. The
// layout is read again for every pod, so an image rebuilt in place is picked up.
type imageStore struct {
	dir string

	mu       sync.Mutex
	unpacked map[string]*unpackedImage
}

func newImageStore(dir string) *imageStore {
	return &imageStore{dir: dir, unpacked: map[string]*unpackedImage{}}
}

// get returns the unpacked image of the OCI layout folder layoutDir, unpacking it if this
// digest is new. Pods wait for one another here; an image unpacks in about a second.
func (s *imageStore) get(layoutDir string) (*unpackedImage, error) {
	img, err := LayoutImage(layoutDir)
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("image digest: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.unpacked[digest.String()]; ok {
		return u, nil
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s config: %w", digest, err)
	}
	dir := filepath.Join(s.dir, digest.Algorithm+"-"+digest.Hex)
	rootfs := filepath.Join(dir, "rootfs")
	if _, err := os.Stat(rootfs); err != nil {
		if err := unpackImage(img, dir); err != nil {
			return nil, fmt.Errorf("unpack image %s from %s: %w", digest, layoutDir, err)
		}
	}
	u := &unpackedImage{digest: digest.String(), rootfs: rootfs, config: cf.Config}
	s.unpacked[u.digest] = u
	return u, nil
}

// LayoutImage picks the image of an OCI layout: the only image of its index, or the one
// for this machine's platform (nested indexes included).
func LayoutImage(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	img, err := pickImage(idx, 0)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	return img, nil
}

func pickImage(idx v1.ImageIndex, depth int) (v1.Image, error) {
	if depth > 4 {
		return nil, fmt.Errorf("image indexes nested too deep")
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Image
	for _, d := range m.Manifests {
		if d.Platform != nil && (d.Platform.OS != runtime.GOOS || d.Platform.Architecture != runtime.GOARCH) {
			continue
		}
		switch {
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			found = append(found, img)
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			img, err := pickImage(child, depth+1)
			if err != nil {
				return nil, err
			}
			found = append(found, img)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no image for %s/%s", runtime.GOOS, runtime.GOARCH)
	case 1:
		return found[0], nil
	default:
		return nil, fmt.Errorf("%d images for %s/%s, want one", len(found), runtime.GOOS, runtime.GOARCH)
	}
}

// unpackImage writes the flattened file system of img (mutate.Extract applies the
// whiteouts) to dir/rootfs through a temporary folder renamed at the end, so a rootfs that
// exists is complete.
func unpackImage(img v1.Image, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".unpack-")
	if err != nil {
		return err
	}
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return errors.Join(err, os.RemoveAll(tmp))
	}
	rc := mutate.Extract(img)
	err = extractTar(tar.NewReader(rc), rootfs)
	if err == nil {
		// Extract writes the end-of-archive marker even when it fails (a deferred Close),
		// and reports the failure only after it: read on to see it.
		_, err = io.Copy(io.Discard, rc)
	}
	err = errors.Join(err, rc.Close())
	if err == nil {
		// A folder left by an earlier agent with the same state folder is replaced.
		err = os.RemoveAll(dir)
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		return errors.Join(err, os.RemoveAll(tmp))
	}
	return nil
}

// extractTar writes a flattened image tar into dir. Every path is resolved inside dir
// (resolveIn, os.Root), so no entry can write outside it. Ownership is kept when running
// as root; set-user-ID and set-group-ID bits are dropped (no container here may gain
// privileges). Devices and FIFOs are skipped. mutate.Extract emits upper layers first, so
// an entry whose path exists already lost to an upper layer and is skipped, and hard
// links are made last, once their targets exist.
func extractTar(tr *tar.Reader, dir string) error {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	chown := os.Geteuid() == 0
	type hardlink struct {
		name, target string
	}
	var links []hardlink
	// explicit holds the entries written; other folders were made as parents and take
	// their mode and owner from their own entry when it comes.
	explicit := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read image tar: %w", err)
		}
		name := path.Clean("/" + hdr.Name)
		if name == "/" {
			continue
		}
		parent, err := mkdirIn(r, path.Dir(name))
		if err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
		rel := path.Join(parent, path.Base(name))
		mode := fs.FileMode(hdr.Mode).Perm()
		if hdr.Mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		fi, err := r.Lstat(rel)
		exists := err == nil
		if exists && (hdr.Typeflag != tar.TypeDir || !fi.IsDir() || explicit[rel]) {
			// An upper layer's entry (mutate.Extract emits those first) wins.
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if !exists {
				if err := r.Mkdir(rel, 0o755); err != nil {
					return fmt.Errorf("%s: %w", hdr.Name, err)
				}
			}
			if err := r.Chmod(rel, mode); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeReg:
			if err := writeEntry(r, rel, tr, mode); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			if err := r.Symlink(hdr.Linkname, rel); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			links = append(links, hardlink{name: rel, target: hdr.Linkname})
			continue
		default:
			continue
		}
		explicit[rel] = true
		if chown {
			if err := r.Lchown(rel, hdr.Uid, hdr.Gid); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		}
	}
	for _, l := range links {
		target, err := resolveIn(r, path.Clean("/"+l.target))
		if err != nil {
			return fmt.Errorf("hard link %s: %w", l.name, err)
		}
		if _, err := r.Lstat(l.name); err == nil {
			continue
		}
		if err := r.Link(target, l.name); err != nil {
			return fmt.Errorf("hard link %s -> %s: %w", l.name, l.target, err)
		}
	}
	return nil
}

func writeEntry(r *os.Root, rel string, src io.Reader, mode fs.FileMode) error {
	f, err := r.OpenFile(rel, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, src)
	err = errors.Join(err, f.Close())
	if err != nil {
		return err
	}
	return r.Chmod(rel, mode)
}
