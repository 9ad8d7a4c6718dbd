package node

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

const testPasswd = `root:x:0:0:root:/root:/sbin/nologin
# a comment
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
web:x:1000:2000::/:/sbin/nologin
`

const testGroup = `root:x:0:
nonroot:x:65532:
www:x:3000:web
`

func i64(v int64) *int64 { return &v }

func TestResolveUser(t *testing.T) {
	tests := []struct {
		name      string
		s         userSettings
		imageUser string
		uid, gid  uint32
		groups    []uint32
		wantErr   string
	}{
		{name: "empty image user is root", uid: 0, gid: 0},
		{name: "numeric uid:gid", imageUser: "65532:65532", uid: 65532, gid: 65532},
		{name: "numeric uid takes its passwd group", imageUser: "1000", uid: 1000, gid: 2000},
		{name: "numeric uid not in passwd gets group 0", imageUser: "4242", uid: 4242, gid: 0},
		{name: "name from passwd", imageUser: "nonroot", uid: 65532, gid: 65532},
		{name: "name with group name", imageUser: "web:www", uid: 1000, gid: 3000},
		{name: "uid with numeric group", imageUser: "1000:7", uid: 1000, gid: 7},
		{name: "unknown name", imageUser: "nobody", wantErr: `image user "nobody"`},
		{name: "unknown group", imageUser: "1000:staff", wantErr: `image group "staff"`},
		{name: "runAsUser wins, group from its passwd entry", s: userSettings{runAsUser: i64(1000)}, imageUser: "65532:65532", uid: 1000, gid: 2000},
		{name: "runAsUser unknown to passwd gets group 0", s: userSettings{runAsUser: i64(5000)}, imageUser: "65532:65532", uid: 5000, gid: 0},
		{name: "runAsGroup wins over the image group", s: userSettings{runAsGroup: i64(9)}, imageUser: "65532:65532", uid: 65532, gid: 9},
		{name: "both set", s: userSettings{runAsUser: i64(10), runAsGroup: i64(11)}, imageUser: "nonroot", uid: 10, gid: 11},
		{name: "pod groups only", s: userSettings{groups: []int64{2000, 3000}}, imageUser: "65532", uid: 65532, gid: 65532, groups: []uint32{2000, 3000}},
		{name: "negative runAsUser", s: userSettings{runAsUser: i64(-1)}, wantErr: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := resolveUser(tt.s, tt.imageUser, []byte(testPasswd), []byte(testGroup))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.uid != tt.uid || id.gid != tt.gid {
				t.Errorf("uid:gid %d:%d, want %d:%d", id.uid, id.gid, tt.uid, tt.gid)
			}
			// Never nil: an empty, non-nil slice makes the child call setgroups(0), dropping
			// the agent's own supplementary groups.
			if id.groups == nil || !slices.Equal(id.groups, tt.groups) {
				t.Errorf("groups %#v, want %v", id.groups, tt.groups)
			}
		})
	}
}

func TestVerifyNonRoot(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name      string
		s         userSettings
		imageUser string
		wantErr   string
	}{
		{name: "not asked", imageUser: ""},
		{name: "false", s: userSettings{runAsNonRoot: &no}, imageUser: "0"},
		{name: "non-root image", s: userSettings{runAsNonRoot: &yes}, imageUser: "65532:65532"},
		{name: "root image", s: userSettings{runAsNonRoot: &yes}, imageUser: "0:0", wantErr: "image will run as root"},
		{name: "no image user", s: userSettings{runAsNonRoot: &yes}, wantErr: "image will run as root"},
		{name: "named image user", s: userSettings{runAsNonRoot: &yes}, imageUser: "nonroot", wantErr: "non-numeric user (nonroot)"},
		{name: "runAsUser rescues a root image", s: userSettings{runAsNonRoot: &yes, runAsUser: i64(1000)}, imageUser: "0"},
		{name: "runAsUser 0", s: userSettings{runAsNonRoot: &yes, runAsUser: i64(0)}, imageUser: "65532", wantErr: "runAsUser breaks non-root policy"},
	}
	for _, tt := range tests {
		err := verifyNonRoot(tt.s, tt.imageUser)
		if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestSecurityForContainerWins(t *testing.T) {
	yes, no := true, false
	pod := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{
		RunAsUser: i64(1), RunAsGroup: i64(2), RunAsNonRoot: &yes, FSGroup: i64(3), SupplementalGroups: []int64{4},
	}}}
	c := &corev1.Container{SecurityContext: &corev1.SecurityContext{RunAsUser: i64(10), RunAsNonRoot: &no}}
	s := securityFor(pod, c)
	if *s.runAsUser != 10 || *s.runAsGroup != 2 || *s.runAsNonRoot || !slices.Equal(s.groups, []int64{3, 4}) {
		t.Errorf("merged %+v (runAsUser %d runAsGroup %d nonRoot %v)", s, *s.runAsUser, *s.runAsGroup, *s.runAsNonRoot)
	}
}
