package core

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/keys/keystore"
	"github.com/countersign/countersign/store/sqlite"
)

type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Lock and TTL expiry overwrite the secret in memory, not just forget it.
func TestDaemonZeroesSecrets(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &fixedClock{t: time.Unix(1_800_000_000, 0)}
	svc := &Service{Store: st, Clock: clock, Broker: NewBroker()}
	d := NewDaemon(svc, keystore.Dir{Path: filepath.Join(t.TempDir(), "ks")}, DaemonConfig{UnlockTTL: time.Minute,
		Argon2: keystore.Params{Time: 1, MemoryKiB: 8 << 10, Threads: 1}})
	id, _, err := d.CreateWallet(ctx, "w", "pw", 12)
	if err != nil {
		t.Fatal(err)
	}
	secretOf := func() []byte {
		if _, err := d.Unlock(ctx, id, "pw"); err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.unlocked[id].secret
	}
	s := secretOf()
	if bytes.Equal(s, make([]byte, len(s))) {
		t.Fatal("secret is zero while unlocked")
	}
	a, err := d.Derive(ctx, id, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.SignMessage(ctx, a.ID, []byte("m")); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	k := d.unlocked[id].derived[a.ID]
	d.mu.Unlock()
	if len(k) != 32 {
		t.Fatal("the derived key is not cached while unlocked")
	}
	if n, _ := d.Lock(ctx, ""); n != 1 || !bytes.Equal(s, make([]byte, len(s))) || !bytes.Equal(k, make([]byte, 32)) {
		t.Fatal("lock did not zero the seed and the derived keys")
	}
	s = secretOf()
	clock.mu.Lock()
	clock.t = clock.t.Add(61 * time.Second)
	clock.mu.Unlock()
	d.Sweep()
	if !bytes.Equal(s, make([]byte, len(s))) {
		t.Fatal("TTL expiry did not zero the secret")
	}
	if _, err := d.Derive(ctx, id, "", ""); err == nil {
		t.Fatal("derived from an expired unlock")
	}
}
