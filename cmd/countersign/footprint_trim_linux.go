//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

const trimSupported = true

// exeMapping is one mapping of the executable in /proc/self/smaps.
type exeMapping struct {
	lo, hi    uintptr
	perms     string
	rss, anon int64 // bytes
}

// exeMappings lists the executable's mappings with their resident and
// anonymous bytes.
func exeMappings() ([]exeMapping, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	var out []exeMapping
	var cur *exeMapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			cur = nil
			path := ""
			if len(f) >= 6 {
				path = strings.TrimSuffix(strings.Join(f[5:], " "), " (deleted)")
			}
			if path != exe {
				continue
			}
			lo, hi, ok := strings.Cut(f[0], "-")
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if !ok || err1 != nil || err2 != nil {
				return nil, errors.New("footprint: unreadable /proc/self/smaps")
			}
			out = append(out, exeMapping{lo: uintptr(l), hi: uintptr(h), perms: f[1], anon: -1})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil || len(f) < 2 {
			continue
		}
		var dst *int64
		switch f[0] {
		case "Rss:":
			dst = &cur.rss
		case "Anonymous:":
			dst = &cur.anon
		default:
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, errors.New("footprint: unreadable /proc/self/smaps")
		}
		*dst = kb << 10
	}
	return out, sc.Err()
}

// trimmable reports whether dropping m's page-table entries loses
// nothing: it is not writable, holds no anonymous (copied-on-write) page —
// a relocated RELRO segment or a debugger's breakpoint would — and so
// every page of it is the file's own, which the page cache still has.
func (m exeMapping) trimmable() bool {
	return len(m.perms) >= 2 && m.perms[0] == 'r' && m.perms[1] != 'w' && m.anon == 0 && m.hi > m.lo
}

// trimBinaryPages drops the page-table entries of the executable's
// read-only mappings (MADV_DONTNEED) and returns how many of their bytes
// were resident before.
//
// With evict it also drops the binary's clean pages from the page cache
// (POSIX_FADV_DONTNEED: pages another process maps stay) and turns
// read-ahead off for these mappings (MADV_RANDOM). Why: the kernel maps a
// page-cache folio whole when one byte of it is touched, and read-ahead
// (or the linker's write) made the binary's folios up to 2 MiB, so an idle
// server that runs a few hundred functions spread over the binary had it
// nearly all mapped again within a second of a plain MADV_DONTNEED. Read
// back page by page, what the server runs from then on is what is
// resident. The cost: each page of the binary the server needs after the
// trim is read again once (from the disk or its cache), without
// read-ahead, and the next start of the binary reads it again. It is done
// once, after start-up (startFootprintTrim); later trims keep the page
// cache.
func trimBinaryPages(evict bool) (int64, error) {
	ms, err := exeMappings()
	if err != nil {
		return 0, err
	}
	var n int64
	var errs []error
	madvise := func(m exeMapping, advice int) {
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, m.lo, m.hi-m.lo, uintptr(advice)); e != 0 {
			errs = append(errs, e)
		}
	}
	var trim []exeMapping
	for _, m := range ms {
		if m.trimmable() {
			trim = append(trim, m)
			n += m.rss
		}
	}
	rounds := 1
	var f *os.File
	if evict {
		if f, err = os.Open("/proc/self/exe"); err != nil {
			evict = false
		} else {
			defer f.Close()
			rounds = 2 // what other threads faulted in between is unmapped and dropped by the second
			for _, m := range trim {
				madvise(m, syscall.MADV_RANDOM)
			}
		}
	}
	for range rounds {
		for _, m := range trim {
			madvise(m, syscall.MADV_DONTNEED)
		}
		if evict {
			const fadvDontNeed = 4 // POSIX_FADV_DONTNEED
			if _, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0); e != 0 {
				errs = append(errs, e)
			}
		}
	}
	return n, errors.Join(errs...)
}
