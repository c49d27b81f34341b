package daemon

import (
	"sync/atomic"
	"testing"
	"time"
)

// The memory goes back once, after the last of overlapping operations has
// been idle for the delay, and not while one still runs.
func TestKDFMemoryReleasedWhenIdle(t *testing.T) {
	var n atomic.Int32
	m := &kdfMemory{after: 30 * time.Millisecond, release: func() { n.Add(1) }}
	endA := m.begin()
	endB := m.begin()
	endA()
	time.Sleep(80 * time.Millisecond)
	if n.Load() != 0 {
		t.Fatal("released while an operation still ran")
	}
	endB()
	endC := m.begin() // a new one before the delay: no release yet
	time.Sleep(10 * time.Millisecond)
	endC()
	deadline := time.Now().Add(2 * time.Second)
	for n.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(80 * time.Millisecond)
	if got := n.Load(); got != 1 {
		t.Fatalf("released %d times, want 1", got)
	}
}
