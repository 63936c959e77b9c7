package bench

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssSampler reads VmRSS of a process every second.
type rssSampler struct {
	pid  int
	mu   sync.Mutex
	last float64
	max  float64
	n    int
	done chan struct{}
}

func startRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, done: make(chan struct{})}
	s.sample()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	v, ok := vmRSSMiB(s.pid)
	if !ok {
		return
	}
	s.mu.Lock()
	s.last, s.n = v, s.n+1
	if v > s.max {
		s.max = v
	}
	s.mu.Unlock()
}

func (s *rssSampler) stop() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}
func (s *rssSampler) current() float64 { s.mu.Lock(); defer s.mu.Unlock(); return round1(s.last) }
func (s *rssSampler) peak() float64    { s.mu.Lock(); defer s.mu.Unlock(); return round1(s.max) }
func (s *rssSampler) count() int       { s.mu.Lock(); defer s.mu.Unlock(); return s.n }

func round1(v float64) float64 { return float64(int(v*10+0.5)) / 10 }

// vmRSSMiB reads VmRSS from /proc/<pid>/status.
func vmRSSMiB(pid int) (float64, bool) { return procStatusMiB(pid, "VmRSS:") }

// rssAnonMiB reads RssAnon: the resident memory that is the process's own
// (heap, stacks), without the pages of the mapped binary (RssFile), which the
// page cache shares and can reclaim.
func rssAnonMiB(pid int) (float64, bool) { return procStatusMiB(pid, "RssAnon:") }

func procStatusMiB(pid int, field string) (float64, bool) {
	if pid <= 0 {
		return 0, false
	}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, field) {
			fs := strings.Fields(l)
			kb, err := strconv.ParseFloat(fs[1], 64)
			return kb / 1024, err == nil
		}
	}
	return 0, false
}

// scrapeMemory returns the operator's go_memory_classes_* (and, when those
// are absent, go_memstats_*_bytes) gauges from its /metrics, in MiB.
func scrapeMemory(url string) map[string]float64 {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return map[string]float64{"error: " + err.Error(): 0}
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	memstats := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		fs := strings.Fields(l)
		if len(fs) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(fs[1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(fs[0], "go_memory_classes_"):
			out[strings.TrimPrefix(fs[0], "go_memory_classes_")] = round1(v / (1 << 20))
		case strings.HasPrefix(fs[0], "go_memstats_") && strings.HasSuffix(fs[0], "_bytes"):
			memstats[strings.TrimPrefix(fs[0], "go_memstats_")] = round1(v / (1 << 20))
		}
	}
	if len(out) == 0 {
		return memstats
	}
	return out
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
