package envelope

import (
	"os"
	"time"
)

// RefreshEvery is how often, at most, a Sealer opened with OpenFile looks
// at its master key file again. It looks only when it seals, or meets a
// KEK id it does not know, so an idle server does not stat the file.
var RefreshEvery = time.Second

// OpenFile returns a Sealer over the master key file at path (creating
// the file with one new KEK on the first start: created says so) that
// follows the file: when the file is replaced (a rotation installed a new
// current key, or retired old ones), the next Seal or the next Open of an
// unknown KEK id loads it again. That is how every replica picks up a
// rotation's key without a restart, as soon as the file reaches it. A
// replaced file that does not load (malformed, readable by others, gone)
// is ignored and the keys already loaded stay: a bad copy never takes a
// working key away mid-flight.
func OpenFile(path string) (s *Sealer, created bool, err error) {
	return NewSealer(Options{File: path, Create: true, Follow: true})
}

// follow makes s reload path when it changes (refresh).
func (s *Sealer) follow(path string) {
	s.file = path
	s.loaded, _ = os.Stat(path)
	s.checked.Store(time.Now().UnixNano())
}

// refresh reloads the key file if it changed since it was loaded, and
// reports whether the key set changed. Sealing looks at most once per
// RefreshEvery; an Open that meets an unknown KEK id (force) always looks,
// since the value it holds was sealed by a replica that already has the
// new file: waiting would fail a signature. Such a miss costs one stat
// when the file has not changed.
func (s *Sealer) refresh(force bool) bool {
	if s.file == "" {
		return false
	}
	if !force && time.Now().UnixNano()-s.checked.Load() < int64(RefreshEvery) {
		return false
	}
	// Callers that find a look due wait for the one that looks: a seal
	// must not go on with the key set the file no longer holds (its
	// current key may just have been retired, and a value sealed under it
	// would open nowhere once the reload lands).
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixNano()
	if !force && now-s.checked.Load() < int64(RefreshEvery) {
		return false // another caller looked while this one waited
	}
	// Marked looked at only once the set is what the file holds: a caller
	// that sees the mark skips the lock and seals with the set it loads.
	defer s.checked.Store(now)
	info, err := os.Stat(s.file)
	if err != nil || (s.loaded != nil && os.SameFile(info, s.loaded) && info.ModTime().Equal(s.loaded.ModTime()) && info.Size() == s.loaded.Size()) {
		return false
	}
	keks, err := LoadKeys(s.file)
	if err != nil {
		return false
	}
	set, err := s.compose(keks) // the external KEKs stay
	clearAll(keks)
	if err != nil {
		return false
	}
	s.set.Store(set)
	s.loaded = info
	return true
}
