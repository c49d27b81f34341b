package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"
)

// The server's resident memory after start and after bursts of work.
//
// Most of an idle server's RSS is not memory it allocated but the pages of
// its own ~90 MiB binary: package initialisation, the wiring and the dev
// chain's genesis touch code and tables all over .text, .rodata and
// .gopclntab, and the kernel maps page-cache folios whole (large folios:
// up to 2 MiB per fault), so start-up leaves ~50 MB of the binary mapped
// that an idle server never runs again. A burst of work (logins: Argon2id,
// the flow) does the same to the code it ran, and leaves heap pages the
// runtime keeps for reuse.
//
// trimFootprint gives both back: the binary's read-only mappings lose
// their page-table entries (madvise MADV_DONTNEED; the pages stay in the
// page cache and what runs next faults them back in, minor faults, no
// I/O), and the heap's free pages go back to the OS (debug.FreeOSMemory).
// It runs once when the server is ready and then each time the process
// goes quiet after being busy (trimPolicy), never while it works.
//
// What it never touches: writable mappings (.data, .bss: a private file
// mapping's written pages would be lost), any mapping with anonymous
// (copied-on-write) pages, and anything that is not the executable.

// memoryEnvSettings are the environment variables memoryEnv reads.
var memoryEnvSettings = []setting{
	{"MEMORY_TRIM", "", "on", "on (Linux): after start and after each busy period, give the heap's free pages back and unmap the binary's read-only pages the server no longer runs (they stay on disk and fault back in when needed; the first trim also drops them from the page cache, so the next start reads the binary again); off: leave memory to the Go runtime and the kernel"},
}

// memoryEnv reads MEMORY_TRIM.
func memoryEnv(c *Config, env func(...string) string) error {
	switch v := strings.ToLower(strings.TrimSpace(env("MEMORY_TRIM"))); v {
	case "", "on", "1", "true":
		c.MemoryTrim = true
	case "off", "0", "false":
		c.MemoryTrim = false
	default:
		return fmt.Errorf("MEMORY_TRIM: %q is neither on nor off", v)
	}
	return nil
}

// trimInterval is how often the CPU time is sampled.
const trimInterval = 2 * time.Second

// trimPolicy decides, from CPU time per sampling interval, when the
// process has gone quiet after being busy. An interval is busy when the
// process used more than busyFrac of one core in it (a login's Argon2id
// run alone is ~15% of a 2 s interval; the idle server's background
// work about 2%); the trim comes after quietN quiet intervals in a row
// that follow a busy one, so once per burst.
type trimPolicy struct {
	busyFrac float64
	quietN   int

	pending bool // a busy interval since the last trim
	quiet   int  // quiet intervals since the last busy one
}

func newTrimPolicy() *trimPolicy { return &trimPolicy{busyFrac: 0.10, quietN: 3} }

// observe takes the CPU time used during an interval of length d and
// reports whether to trim now.
func (p *trimPolicy) observe(cpu, d time.Duration) bool {
	if d <= 0 {
		return false
	}
	if float64(cpu) > p.busyFrac*float64(d) {
		p.pending, p.quiet = true, 0
		return false
	}
	p.quiet++
	if p.pending && p.quiet >= p.quietN {
		p.pending = false
		return true
	}
	return false
}

// trimFootprint returns the heap's free pages to the OS and drops the
// mappings of the binary's read-only pages; it returns how many bytes of
// the binary were mapped before.
func trimFootprint(evict bool) (int64, error) {
	debug.FreeOSMemory()
	return trimBinaryPages(evict) // footprint_trim_linux.go
}

// startFootprintTrim trims once now and then after each busy period until
// ctx ends. It is a no-op where the platform cannot read its own CPU time
// or mappings.
func startFootprintTrim(ctx context.Context, log *slog.Logger) {
	if !trimSupported {
		return
	}
	t0 := time.Now()
	if n, err := trimFootprint(true); err != nil {
		log.Debug("footprint trim", "err", err)
	} else {
		log.Debug("footprint trim", "binary_mapped_bytes", n, "took", time.Since(t0))
	}
	go func() {
		p := newTrimPolicy()
		tick := time.NewTicker(trimInterval)
		defer tick.Stop()
		last, lastAt := processCPU(), time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				cpu := processCPU()
				trim := p.observe(cpu-last, now.Sub(lastAt))
				last, lastAt = cpu, now
				if trim {
					_, _ = trimFootprint(false)
					last = processCPU() // the trim's own GC is not work
				}
			}
		}
	}()
}
