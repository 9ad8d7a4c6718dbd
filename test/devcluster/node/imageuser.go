package node

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// identity is who a container process runs as.
type identity struct {
	uid, gid uint32
	groups   []uint32
}

// userSettings are the securityContext fields that decide a container's user.
type userSettings struct {
	runAsUser, runAsGroup *int64
	runAsNonRoot          *bool
	groups                []int64
}

// securityFor merges the pod's and the container's securityContext the way the kubelet
// does: a container field wins over the pod field.
func securityFor(pod *corev1.Pod, c *corev1.Container) userSettings {
	var s userSettings
	if p := pod.Spec.SecurityContext; p != nil {
		s.runAsUser, s.runAsGroup, s.runAsNonRoot = p.RunAsUser, p.RunAsGroup, p.RunAsNonRoot
		// The kubelet adds fsGroup, then the supplemental groups.
		if p.FSGroup != nil {
			s.groups = append(s.groups, *p.FSGroup)
		}
		s.groups = append(s.groups, p.SupplementalGroups...)
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			s.runAsUser = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			s.runAsGroup = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			s.runAsNonRoot = sc.RunAsNonRoot
		}
	}
	return s
}

// verifyNonRoot refuses what the kubelet refuses under runAsNonRoot: runAsUser 0, an image
// user that is uid 0 (or empty: root), or an image user given by name, which the kubelet
// cannot check before the container exists.
func verifyNonRoot(s userSettings, imageUser string) error {
	if s.runAsNonRoot == nil || !*s.runAsNonRoot {
		return nil
	}
	if s.runAsUser != nil {
		if *s.runAsUser == 0 {
			return fmt.Errorf("container's runAsUser breaks non-root policy")
		}
		return nil
	}
	user, _, _ := strings.Cut(imageUser, ":")
	if user == "" {
		return fmt.Errorf("container has runAsNonRoot and image will run as root")
	}
	uid, err := strconv.ParseUint(user, 10, 32)
	if err != nil {
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root", user)
	}
	if uid == 0 {
		return fmt.Errorf("container has runAsNonRoot and image will run as root")
	}
	return nil
}

// resolveUser computes the process identity as containerd's CRI plugin does:
//   - uid: runAsUser, else the image config's User ("uid", "uid:gid", "name", "name:group";
//     a name is looked up in the image's /etc/passwd), else 0;
//   - gid: runAsGroup, else the group of the image User ("gid" or a name from the image's
//     /etc/group) when the image user is used, else the passwd entry of the uid, else 0;
//   - supplementary groups: only fsGroup and supplementalGroups of the pod, never the
//     agent's own.
func resolveUser(s userSettings, imageUser string, passwd, group []byte) (identity, error) {
	var id identity
	user, grp, hasGroup := strings.Cut(imageUser, ":")
	var gidKnown bool
	switch {
	case s.runAsUser != nil:
		uid, err := idOf(*s.runAsUser, "runAsUser")
		if err != nil {
			return identity{}, err
		}
		id.uid = uid
		if e, ok := findPasswd(passwd, "", uid); ok {
			id.gid = e.gid
		}
		gidKnown = true
	case user == "":
		id.uid = 0
	default:
		if n, err := strconv.ParseUint(user, 10, 32); err == nil {
			id.uid = uint32(n)
			if e, ok := findPasswd(passwd, "", id.uid); ok {
				id.gid = e.gid
			}
		} else {
			e, ok := findPasswd(passwd, user, 0)
			if !ok {
				return identity{}, fmt.Errorf("image user %q: no matching entry in the image's /etc/passwd", user)
			}
			id.uid, id.gid = e.uid, e.gid
		}
	}
	if !gidKnown && hasGroup && grp != "" {
		if n, err := strconv.ParseUint(grp, 10, 32); err == nil {
			id.gid = uint32(n)
		} else {
			gid, ok := findGroup(group, grp)
			if !ok {
				return identity{}, fmt.Errorf("image group %q: no matching entry in the image's /etc/group", grp)
			}
			id.gid = gid
		}
	}
	if s.runAsGroup != nil {
		gid, err := idOf(*s.runAsGroup, "runAsGroup")
		if err != nil {
			return identity{}, err
		}
		id.gid = gid
	}
	id.groups = []uint32{}
	for _, g := range s.groups {
		gid, err := idOf(g, "supplemental group")
		if err != nil {
			return identity{}, err
		}
		id.groups = append(id.groups, gid)
	}
	return id, nil
}

func idOf(v int64, what string) (uint32, error) {
	if v < 0 || v > 1<<31-1 {
		return 0, fmt.Errorf("%s %d out of range", what, v)
	}
	return uint32(v), nil
}

type passwdEntry struct{ uid, gid uint32 }

// findPasswd finds an /etc/passwd entry by name, or by uid when name is empty.
func findPasswd(passwd []byte, name string, uid uint32) (passwdEntry, bool) {
	sc := bufio.NewScanner(bytes.NewReader(passwd))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		u, err1 := strconv.ParseUint(f[2], 10, 32)
		g, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		if (name != "" && f[0] == name) || (name == "" && uint32(u) == uid) {
			return passwdEntry{uid: uint32(u), gid: uint32(g)}, true
		}
	}
	return passwdEntry{}, false
}

// findGroup finds a group's gid in /etc/group by name.
func findGroup(group []byte, name string) (uint32, bool) {
	sc := bufio.NewScanner(bytes.NewReader(group))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || f[0] != name {
			continue
		}
		if g, err := strconv.ParseUint(f[2], 10, 32); err == nil {
			return uint32(g), true
		}
	}
	return 0, false
}
