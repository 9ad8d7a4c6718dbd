package node

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// linkTree makes dst a copy of the unpacked image src that costs almost nothing: folders
// and symlinks are recreated (so the container can add and remove entries in its own
// folders), regular files are hard links to the shared image. A file the container could
// change in place (owned by a non-root user, or writable by group or others) is copied
// instead, so one container cannot change another's image. A container running as root
// (or with CAP_DAC_OVERRIDE and friends) could write any file, so for it (copyAll) every
// file is copied. Ownership and modes are
// kept.
func linkTree(src, dst string, copyAll bool) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		uid, gid := owner(info)
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			if err := os.Chmod(target, info.Mode()&(fs.ModePerm|fs.ModeSticky)); err != nil {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case d.Type().IsRegular():
			if !copyAll && uid == 0 && info.Mode().Perm()&0o022 == 0 {
				if err := os.Link(p, target); err == nil {
					return nil
				} else if !errors.Is(err, syscall.EXDEV) {
					return err
				}
			}
			if err := copyFile(p, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return nil
		}
		if os.Geteuid() == 0 {
			return os.Lchown(target, uid, gid)
		}
		return nil
	})
}

func owner(info fs.FileInfo) (int, int) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err = errors.Join(err, out.Close()); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// imageMount is a volume mounted into an image container: written at mountPath inside
// the container's root.
type imageMount struct {
	volume    string
	mountPath string
}

// buildRoot gives an image container a fresh root at dir, as a runtime gives every
// container run a fresh writable layer: the image's files, the volumes at their mount
// paths, /etc/hosts and /etc/hostname, /etc/resolv.conf when resolv is not empty, and the
// working folder. asRoot: the process may
// write any file (uid 0, or a capability to) and gets copies of every file.
func buildRoot(img *unpackedImage, dir string, asRoot bool, mounts []imageMount, volumes map[string]*volumeData, gid int, hosts, hostname, resolv, workDir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove old root: %w", err)
	}
	if err := linkTree(img.rootfs, dir, asRoot); err != nil {
		return fmt.Errorf("copy image root: %w", err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := writeFileIn(r, "/etc/hosts", []byte(hosts), 0o644, -1); err != nil {
		return err
	}
	if err := writeFileIn(r, "/etc/hostname", []byte(hostname+"\n"), 0o644, -1); err != nil {
		return err
	}
	if resolv != "" {
		if err := writeFileIn(r, "/etc/resolv.conf", []byte(resolv), 0o644, -1); err != nil {
			return err
		}
	}
	if _, err := mkdirIn(r, workDir); err != nil {
		return fmt.Errorf("working folder %s: %w", workDir, err)
	}
	for _, m := range mounts {
		if err := writeVolumeIn(r, m.mountPath, volumes[m.volume], gid); err != nil {
			return fmt.Errorf("volume %q at %s: %w", m.volume, m.mountPath, err)
		}
	}
	return nil
}

// hostsFile is the /etc/hosts of a pod, as the kubelet writes it.
func hostsFile(podIP, hostname string) string {
	s := "# Kubernetes-managed hosts file (devcluster node).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if podIP != "" {
		s += podIP + "\t" + hostname + "\n"
	}
	return s
}
