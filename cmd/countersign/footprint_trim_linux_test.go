//go:build linux

package main

import (
	"os"
	"testing"
)

// footprintProbe is written before the trim and read after: a trim that
// dropped a writable mapping's pages would lose it (MADV_DONTNEED on a
// private file mapping throws written pages away).
var footprintProbe = []byte("initial contents of a package variable in .data")

// TestFootprintTrimBinaryPages: the trim unmaps the test binary's resident
// read-only pages, skips its writable ones and what holds anonymous pages,
// and the process goes on running code and reading data as before.
func TestFootprintTrimBinaryPages(t *testing.T) {
	footprintProbe[0] = 'I' // a written (copied-on-write) page of .data
	before, err := exeMappings()
	if err != nil {
		t.Fatal(err)
	}
	var ro, rw int
	var roRSS int64
	for _, m := range before {
		if m.trimmable() {
			ro++
			roRSS += m.rss
		} else if m.perms[1] == 'w' {
			rw++
			if m.trimmable() {
				t.Fatalf("writable mapping %+v counted as trimmable", m)
			}
		}
	}
	if ro == 0 || rw == 0 || roRSS == 0 {
		t.Fatalf("no read-only or writable mapping of the executable found: %+v", before)
	}
	n, err := trimBinaryPages(false)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("trim reported %d bytes resident before, smaps said %d", n, roRSS)
	}
	after, err := exeMappings()
	if err != nil {
		t.Fatal(err)
	}
	var roAfter int64
	for _, m := range after {
		if m.trimmable() {
			roAfter += m.rss
		}
	}
	// what the test runs between the trim and the read comes back; most
	// of what init and the test runner touched does not
	if roAfter >= roRSS {
		t.Fatalf("read-only resident bytes %d after the trim, %d before", roAfter, roRSS)
	}
	if string(footprintProbe) != "Initial contents of a package variable in .data" {
		t.Fatalf("a written page of .data was lost: %q", footprintProbe)
	}
	if _, err := os.Stat("/proc/self/exe"); err != nil { // code and the runtime still work
		t.Fatal(err)
	}
	// the evicting trim (start-up's) works as well
	if _, err := trimBinaryPages(true); err != nil {
		t.Fatal(err)
	}
	if string(footprintProbe) != "Initial contents of a package variable in .data" {
		t.Fatalf("a written page of .data was lost: %q", footprintProbe)
	}
}

// An anonymous page in a read-only mapping (a relocated RELRO segment, a
// debugger's breakpoint) makes it untrimmable: its contents are not the
// file's.
func TestFootprintTrimSkipsCopiedPages(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    exeMapping
		want bool
	}{
		{"ok/text", exeMapping{lo: 0x1000, hi: 0x2000, perms: "r-xp"}, true},
		{"ok/rodata", exeMapping{lo: 0x1000, hi: 0x2000, perms: "r--p"}, true},
		{"fail/data", exeMapping{lo: 0x1000, hi: 0x2000, perms: "rw-p"}, false},
		{"fail/relro with copied pages", exeMapping{lo: 0x1000, hi: 0x2000, perms: "r--p", anon: 4096}, false},
		{"fail/no Anonymous line", exeMapping{lo: 0x1000, hi: 0x2000, perms: "r--p", anon: -1}, false},
		{"fail/empty", exeMapping{lo: 0x2000, hi: 0x2000, perms: "r--p"}, false},
	} {
		if got := tc.m.trimmable(); got != tc.want {
			t.Errorf("%s: trimmable %v, want %v", tc.name, got, tc.want)
		}
	}
}
