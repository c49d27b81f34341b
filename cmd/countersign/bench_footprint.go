package main

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"
)

// The footprint scenario: what the server costs to keep, as the issue
// lists it — idle RSS after start, RSS while flow runs, RSS a while after a
// burst of logins (Argon2id's 64 MiB per hash must not stay), the size of
// the binary and its cold start to /readyz. Cold starts need --spawn: the
// first start of a data directory generates its keys (excluded), the
// following ones are timed.

type footprintReport struct {
	PID               int       `json:"pid,omitempty"`
	Binary            string    `json:"binary,omitempty"`
	BinaryBytes       int64     `json:"binary_bytes,omitempty"`
	BinaryStripped    bool      `json:"binary_stripped"`
	ColdStartMs       []float64 `json:"cold_start_ms,omitempty"`
	ColdStartMedianMs float64   `json:"cold_start_median_ms,omitempty"`
	IdleRSSMB         float64   `json:"idle_rss_mb"`
	IdleAnonMB        float64   `json:"idle_anon_mb"` // heap, stacks: what the server allocated
	IdleFileMB        float64   `json:"idle_file_mb"` // the binary's pages (and shmem when it runs from tmpfs)
	FlowRSSMaxMB      float64   `json:"flow_rss_max_mb"`
	FlowSpends        int64     `json:"flow_spends"`
	Logins            int       `json:"logins"`
	LoginPeakRSSMB    float64   `json:"login_peak_rss_mb"`
	AfterLoginsRSSMB  float64   `json:"after_logins_rss_mb"`
	AfterLoginsAnonMB float64   `json:"after_logins_anon_mb"`
	SettleSeconds     float64   `json:"settle_seconds"`
	Note              string    `json:"note,omitempty"`
}

func runFootprint(ctx context.Context, o *benchOpts, srv *spawned, stderr io.Writer) (*footprintReport, error) {
	fp := &footprintReport{}
	if srv != nil {
		fp.Binary = srv.binary
		// cold starts on the same data directory: keys exist, migrations ran
		for range o.coldStarts {
			srv.halt()
			if err := srv.start(ctx); err != nil {
				return nil, err
			}
			fp.ColdStartMs = append(fp.ColdStartMs, float64(srv.readyAfter.Microseconds())/1000)
		}
		fp.ColdStartMedianMs = median(fp.ColdStartMs)
		o.base, o.host, o.pid = srv.url, srv.host, srv.pid
	} else if exe, err := os.Executable(); err == nil {
		fp.Binary = exe
		fp.Note = "not started by the bench (--spawn): no cold start, and the binary is this bench's, which may not be the server's"
	}
	if fi, err := os.Stat(fp.Binary); err == nil {
		fp.BinaryBytes = fi.Size()
		if f, err := elf.Open(fp.Binary); err == nil {
			fp.BinaryStripped = f.Section(".symtab") == nil
			f.Close()
		}
	}
	fp.PID = o.pid
	if o.pid == 0 {
		return nil, errors.New("no server process to read RSS from: use --spawn, or --server-pid")
	}
	time.Sleep(2 * time.Second) // idle: after start, before any request of the bench
	m, err := procMem(o.pid)
	if err != nil {
		return nil, err
	}
	fp.IdleRSSMB, fp.IdleAnonMB, fp.IdleFileMB = mb(m.rss), mb(m.anon), mb(m.file+m.shmem)
	o.flowSettle = 4 * time.Second // the flow's setup hashes passwords: let that memory go first

	flow, err := runScenario(ctx, o, "flow", &benchReport{InProcess: map[string]float64{}}, stderr)
	if err != nil {
		return nil, err
	}
	if flow.Server != nil {
		fp.FlowRSSMaxMB = flow.Server.RSSMaxMB
	}
	fp.FlowSpends = flow.Requests

	peak, after, err := loginBurst(ctx, o, stderr)
	if err != nil {
		return nil, err
	}
	fp.Logins, fp.LoginPeakRSSMB, fp.AfterLoginsRSSMB, fp.AfterLoginsAnonMB, fp.SettleSeconds = o.logins, mb(peak), mb(after.rss), mb(after.anon), o.settle.Seconds()
	return fp, nil
}

// loginBurst registers o.logins users and logs each in, all at once (at
// most 16 in flight: the limiter counts a guess before checking it, and
// allows 20 per client address; a full hashing pool's 503s are retried),
// then waits o.settle. It returns the peak RSS during the burst and the
// RSS after the wait.
func loginBurst(ctx context.Context, o *benchOpts, stderr io.Writer) (int64, procMemory, error) {
	c := benchSpendClient(o)
	run := make([]byte, 4)
	if _, err := rand.Read(run); err != nil {
		return 0, procMemory{}, err
	}
	s := startSampler(o.pid)
	var wg sync.WaitGroup
	errs := make([]error, o.logins)
	slots := make(chan struct{}, 16)
	for i := range o.logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			name, password := fmt.Sprintf("bench-login-%x-%d", run, i), hex.EncodeToString(run)+"-password"
			if errs[i] = c.callBusy(ctx, 0, "POST", "/api/register", map[string]string{"username": name, "password": password}, nil, 201); errs[i] == nil {
				errs[i] = c.callBusy(ctx, 0, "POST", "/api/login", map[string]string{"username": name, "password": password}, nil, 200)
			}
		}()
	}
	wg.Wait()
	burst := s.stop(int64(o.logins))
	if err := errors.Join(errs...); err != nil {
		return 0, procMemory{}, err
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "footprint: %d logins done, RSS now; reading it again in %s\n", o.logins, o.settle)
	}
	select {
	case <-ctx.Done():
		return 0, procMemory{}, ctx.Err()
	case <-time.After(o.settle):
	}
	after, err := procMem(o.pid)
	if err != nil {
		return 0, procMemory{}, err
	}
	var peak int64
	if burst != nil {
		peak = int64(burst.RSSMaxMB * (1 << 20))
	}
	return peak, after, nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printFootprint(w io.Writer, f *footprintReport) {
	fmt.Fprintf(w, "\nfootprint (pid %d):\n", f.PID)
	fmt.Fprintf(w, "  idle RSS after start        %.1f MB (anonymous %.1f MB, the binary's pages %.1f MB)\n", f.IdleRSSMB, f.IdleAnonMB, f.IdleFileMB)
	fmt.Fprintf(w, "  RSS during flow (max)       %.1f MB (%d spends)\n", f.FlowRSSMaxMB, f.FlowSpends)
	fmt.Fprintf(w, "  RSS during %d logins (max)  %.1f MB\n", f.Logins, f.LoginPeakRSSMB)
	fmt.Fprintf(w, "  RSS %.0f s after the logins   %.1f MB (anonymous %.1f MB)\n", f.SettleSeconds, f.AfterLoginsRSSMB, f.AfterLoginsAnonMB)
	if f.BinaryBytes > 0 {
		strip := "not stripped"
		if f.BinaryStripped {
			strip = "stripped"
		}
		fmt.Fprintf(w, "  binary                      %.1f MiB (%d bytes, %s): %s\n", float64(f.BinaryBytes)/(1<<20), f.BinaryBytes, strip, f.Binary)
	}
	if len(f.ColdStartMs) > 0 {
		fmt.Fprintf(w, "  cold start to /readyz       median %.0f ms of %d (%v ms)\n", f.ColdStartMedianMs, len(f.ColdStartMs), f.ColdStartMs)
	}
	if f.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", f.Note)
	}
}
