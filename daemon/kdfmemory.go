package daemon

import (
	"runtime/debug"
	"sync"
	"time"
)

// kdfMemory gives Argon2id's memory back to the OS once the daemon's key
// file operations have been idle for a moment. Each create, import, unlock
// and export runs Argon2id at the keystore's cost (256 MiB by default, and
// an import pays it twice: the write and its verification); the blocks are
// garbage afterwards, but the Go runtime keeps the pages for reuse for
// minutes, so one unlock held the server at several hundred MB.
type kdfMemory struct {
	mu      sync.Mutex
	running int
	idle    *time.Timer
	after   time.Duration // 0: kdfIdleAfter
	release func()        // nil: debug.FreeOSMemory (tests count calls)
}

// kdfIdleAfter is how long no key file operation must run before the
// memory goes back: long enough that a burst shares one collection.
const kdfIdleAfter = 2 * time.Second

// begin marks a KDF operation as running; the returned func ends it.
func (m *kdfMemory) begin() func() {
	m.mu.Lock()
	m.running++
	if m.idle != nil {
		m.idle.Stop()
	}
	m.mu.Unlock()
	return m.end
}

func (m *kdfMemory) end() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running--
	if m.running > 0 {
		return
	}
	after := m.after
	if after == 0 {
		after = kdfIdleAfter
	}
	m.idle = time.AfterFunc(after, func() {
		m.mu.Lock()
		idle := m.running == 0
		release := m.release
		m.mu.Unlock()
		if !idle {
			return
		}
		if release == nil {
			release = debug.FreeOSMemory
		}
		release()
	})
}
