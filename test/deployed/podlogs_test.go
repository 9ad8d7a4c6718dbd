package deployed_test

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// podLogs follows the logs of every data-plane pod of a namespace while a
// load runs, so that a failure shows what the pods said, the ones a
// rollout deleted included (their logs are gone by the time a dump runs,
// and a dump's tail of a busy pod holds only its last requests). Access
// log lines of 2xx answers are counted, not kept; everything else is kept,
// up to maxKeptLines a pod.
type podLogs struct {
	cs     kubernetes.Interface
	ns     string
	prefix string // pod names followed
	mu     sync.Mutex
	pods   map[string]*podLog
}

type podLog struct {
	ok      int
	kept    []string
	dropped int
}

const maxKeptLines = 200

func followPodLogs(ctx context.Context, cs kubernetes.Interface, ns, prefix string) *podLogs {
	l := &podLogs{cs: cs, ns: ns, prefix: prefix, pods: map[string]*podLog{}}
	go l.watch(ctx)
	return l
}

// watch lists the pods every 100 ms and follows each new running one, from
// its first line.
func (l *podLogs) watch(ctx context.Context) {
	for ctx.Err() == nil {
		pods, err := l.cs.CoreV1().Pods(l.ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, p := range pods.Items {
				if strings.HasPrefix(p.Name, l.prefix) && p.Status.Phase == corev1.PodRunning && l.start(p.Name) {
					go l.follow(ctx, p.Name)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// start records pod as followed; false when it is already.
func (l *podLogs) start(pod string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pods[pod] != nil {
		return false
	}
	l.pods[pod] = &podLog{}
	return true
}

func (l *podLogs) follow(ctx context.Context, pod string) {
	rd, err := l.cs.CoreV1().Pods(l.ns).GetLogs(pod, &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		l.add(pod, fmt.Sprintf("(following the log: %v)", err))
		return
	}
	defer rd.Close()
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.add(pod, sc.Text())
	}
}

func (l *podLogs) add(pod, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pods[pod]
	switch {
	case strings.Contains(line, `"status":2`):
		p.ok++
	case len(p.kept) < maxKeptLines:
		p.kept = append(p.kept, line)
	default:
		p.dropped++
	}
}

// report logs what each pod said.
func (l *podLogs) report(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.pods))
	for name := range l.pods {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := l.pods[name]
		t.Logf("log of %s/%s during the subtest: %d access lines of 2xx answers left out, %d other lines past %d left out:\n%s",
			l.ns, name, p.ok, p.dropped, maxKeptLines, strings.Join(p.kept, "\n"))
	}
}
