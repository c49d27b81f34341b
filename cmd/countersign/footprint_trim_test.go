package main

import (
	"io"
	"testing"
	"time"
)

// The trim policy: a trim once the process has been quiet for quietN
// intervals after a busy one, once per burst, never while busy and never
// at idle without a burst before.
func TestFootprintTrimPolicy(t *testing.T) {
	const d = 2 * time.Second
	busy, quiet := 500*time.Millisecond, 40*time.Millisecond
	for _, tc := range []struct {
		name string
		cpu  []time.Duration
		want []bool
	}{
		{"ok/after a burst, once", []time.Duration{busy, quiet, quiet, quiet, quiet, quiet, quiet}, []bool{false, false, false, true, false, false, false}},
		{"ok/a second burst trims again", []time.Duration{busy, quiet, quiet, quiet, busy, quiet, quiet, quiet}, []bool{false, false, false, true, false, false, false, true}},
		{"fail/idle never trims", []time.Duration{quiet, quiet, quiet, quiet, quiet, quiet}, []bool{false, false, false, false, false, false}},
		{"fail/busy again before quiet long enough", []time.Duration{busy, quiet, quiet, busy, quiet, quiet}, []bool{false, false, false, false, false, false}},
		{"fail/a single login is not a burst", []time.Duration{150 * time.Millisecond, quiet, quiet, quiet}, []bool{false, false, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTrimPolicy()
			for i, c := range tc.cpu {
				if got := p.observe(c, d); got != tc.want[i] {
					t.Fatalf("interval %d (cpu %v): trim %v, want %v", i, c, got, tc.want[i])
				}
			}
		})
	}
	if newTrimPolicy().observe(time.Second, 0) {
		t.Fatal("an empty interval decided a trim")
	}
}

// MEMORY_TRIM is on unless set off; anything else stops the start.
func TestMemoryTrimSetting(t *testing.T) {
	for v, want := range map[string]bool{"": true, "on": true, "off": false, "0": false, "OFF": false} {
		env := map[string]string{"MEMORY_TRIM": v}
		cfg, err := parseServeConfig(nil, func(k string) string { return env[k] }, io.Discard)
		if err != nil || cfg.MemoryTrim != want {
			t.Errorf("MEMORY_TRIM=%q: %v %v, want %v", v, cfg.MemoryTrim, err, want)
		}
	}
	env := map[string]string{"MEMORY_TRIM": "sometimes"}
	if _, err := parseServeConfig(nil, func(k string) string { return env[k] }, io.Discard); err == nil {
		t.Error("MEMORY_TRIM=sometimes accepted")
	}
}
