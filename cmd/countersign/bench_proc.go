package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The server's side of a bench run, read from /proc (Linux): its CPU time
// and resident memory while a scenario runs, the process behind a local
// URL, and a server the bench starts itself (--spawn).

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on
// every Linux platform Go supports (sysconf would need cgo).
const clockTicks = 100

// procCPU returns the process's user+system CPU time.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// the command name (field 2) is in parentheses and may hold spaces
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unreadable /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // utime is field 14 of the line
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unreadable /proc stat")
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procRSS returns the process's resident set size in bytes (VmRSS).
func procRSS(pid int) (int64, error) {
	m, err := procMem(pid)
	return m.rss, err
}

// procMemory is a process's resident memory in bytes: all of it, and its
// anonymous (heap, stacks) and file-backed (the binary's own pages: clean,
// shared, dropped by the kernel under pressure) parts.
type procMemory struct{ rss, anon, file, shmem int64 }

// procMem reads /proc/PID/status.
func procMem(pid int) (procMemory, error) {
	var m procMemory
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m, err
	}
	defer f.Close()
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst, found = &m.rss, true
		case "RssAnon":
			dst = &m.anon
		case "RssFile":
			dst = &m.file
		case "RssShmem":
			dst = &m.shmem
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return m, err
		}
		*dst = kb << 10
	}
	if !found {
		return m, errors.New("no VmRSS in /proc status")
	}
	return m, nil
}

// sampler reads a process's RSS every 100 ms and its CPU at both ends.
type sampler struct {
	pid      int
	cpu0     time.Duration
	t0       time.Time
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	sum, max int64
	n        int
}

// startSampler starts sampling pid; pid 0 (unknown) samples nothing.
func startSampler(pid int) *sampler {
	s := &sampler{pid: pid, done: make(chan struct{}), t0: time.Now()}
	if pid == 0 {
		return s
	}
	cpu, err := procCPU(pid)
	if err != nil {
		s.pid = 0
		return s
	}
	s.cpu0 = cpu
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) sample() {
	rss, err := procRSS(s.pid)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.sum += rss
	s.max = max(s.max, rss)
	s.n++
	s.mu.Unlock()
}

// stop ends the sampling; requests divides the CPU time.
func (s *sampler) stop(requests int64) *serverSample {
	if s.pid == 0 {
		return nil
	}
	close(s.done)
	s.wg.Wait()
	s.sample()
	cpu, err := procCPU(s.pid)
	if err != nil || s.n == 0 {
		return nil
	}
	wall := time.Since(s.t0)
	out := &serverSample{PID: s.pid, CPUCores: (cpu - s.cpu0).Seconds() / wall.Seconds(),
		RSSMeanMB: float64(s.sum) / float64(s.n) / (1 << 20), RSSMaxMB: float64(s.max) / (1 << 20), Samples: s.n}
	if requests > 0 {
		out.CPUMsPerReq = float64((cpu - s.cpu0).Microseconds()) / 1000 / float64(requests)
	}
	return out
}

// localServerPID finds the process listening on host's port when host is
// a loopback address (/proc/net/tcp*, then the /proc/PID/fd that holds the
// socket), or 0. Only processes of this user are visible, which is the
// case the bench is for: a server started by the same person.
func localServerPID(host string) int {
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		return 0
	}
	if ip := net.ParseIP(h); (ip == nil && h != "localhost") || (ip != nil && !ip.IsLoopback()) {
		return 0
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return 0
	}
	inodes := map[string]bool{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, lp, ok := strings.Cut(f[1], ":")
			if v, err := strconv.ParseUint(lp, 16, 16); ok && err == nil && v == port {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	procs, _ := os.ReadDir("/proc")
	for _, d := range procs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir("/proc/" + d.Name() + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink("/proc/" + d.Name() + "/fd/" + fd.Name()); err == nil && inodes[l] {
				return pid
			}
		}
	}
	return 0
}

// spawned is a server the bench started.
type spawned struct {
	cmd                *exec.Cmd
	url, host, dataDir string
	pid                int
	ownDir             bool
	readyAfter         time.Duration
	exited             chan struct{}
	binary             string
	env                []string
	logPath            string
	stopOnce           sync.Once
}

// spawnServer starts `countersign serve` (o.binary, else this binary) on
// dataDir (a new temporary directory when "") and a free loopback port,
// with signing rate limits above any bench rate and the events socket
// off, and waits for /readyz. Its log goes to DATA_DIR/bench-server.log.
func spawnServer(ctx context.Context, o *benchOpts, dataDir string, stderr io.Writer) (*spawned, error) {
	bin := o.binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		bin = exe
	}
	s := &spawned{binary: bin, dataDir: dataDir}
	if dataDir == "" {
		d, err := os.MkdirTemp("", "countersign-bench-")
		if err != nil {
			return nil, err
		}
		s.dataDir, s.ownDir = d, true
	}
	s.env = append(os.Environ(), "SIGN_RATE=1000000000", "SIGN_BURST=1000000000", "EVENTS_SOCKET=off")
	if err := s.start(ctx); err != nil {
		s.stop()
		return nil, err
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "started %s serve (pid %d) on %s, data %s: ready after %.0f ms\n", bin, s.pid, s.url, s.dataDir, float64(s.readyAfter.Microseconds())/1000)
	}
	return s, nil
}

// start runs the server once and waits until /readyz answers 200.
func (s *spawned) start(ctx context.Context) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.host = l.Addr().String()
	l.Close()
	s.url = "http://" + s.host
	s.logPath = filepath.Join(s.dataDir, "bench-server.log")
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd = exec.Command(s.binary, "serve", "--addr", s.host, "--data-dir", s.dataDir)
	s.cmd.Env, s.cmd.Stdout, s.cmd.Stderr = s.env, logf, logf
	s.stopOnce = sync.Once{}
	t0 := time.Now()
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.pid = s.cmd.Process.Pid
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	c := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("the server exited before it was ready; its log: %s", s.logPath)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if res, err := c.Get(s.url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				s.readyAfter = time.Since(t0)
				return nil
			}
		}
		if time.Since(t0) > 2*time.Minute {
			return fmt.Errorf("the server was not ready after 2 minutes; its log: %s", s.logPath)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// halt stops the running server (SIGTERM, then SIGKILL after 20 s).
func (s *spawned) halt() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

// stop halts the server and removes a data directory the bench made.
func (s *spawned) stop() {
	s.halt()
	if s.ownDir {
		_ = os.RemoveAll(s.dataDir)
	}
}
