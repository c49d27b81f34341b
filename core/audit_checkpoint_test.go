package core

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/store/sqlite"
)

// prefixSealer binds plaintexts to their record id without encrypting:
// enough for tests of who uses which record id.
type prefixSealer struct{}

func (prefixSealer) Seal(id string, p []byte) ([]byte, error) {
	return append([]byte(id+"|"), p...), nil
}
func (prefixSealer) Open(id string, s []byte) ([]byte, error) {
	if !bytes.HasPrefix(s, []byte(id+"|")) {
		return nil, errors.New("wrong record")
	}
	return bytes.Clone(s[len(id)+1:]), nil
}

// truncated hides every entry of one owner above a seq: what deleting the
// newest rows with SQL leaves behind.
type truncated struct {
	countersign.Store
	owner string
	max   int64
}

func (t truncated) AuditEntries(ctx context.Context, owner string, after int64, limit int) ([]*countersign.AuditEntry, error) {
	list, err := t.Store.AuditEntries(ctx, owner, after, limit+1000)
	var out []*countersign.AuditEntry
	for _, e := range list {
		if owner != t.owner || e.Seq <= t.max {
			out = append(out, e)
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// TestMoney_AuditCheckpointTruncation: 5 entries, a checkpoint, the newest
// 3 gone: VerifyAudit still passes (the finding), the checkpoint does not,
// and says whose chain and which entries.
func TestMoney_AuditCheckpointTruncation(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &Service{store: st, sealer: prefixSealer{}, clock: &fixedClock{t: time.Unix(1_800_000_000, 0)}, broker: NewBroker()}
	for i := range 5 {
		if err := s.inTx(ctx, func(ctx context.Context) error {
			return s.audit(ctx, "u1", "user:u1", "test", "s", map[string]int{"i": i})
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.inTx(ctx, func(ctx context.Context) error { return s.audit(ctx, "u2", "user:u2", "test", "s", nil) }); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureAuditKey(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := NewAuditCheckpoint(ctx, st, s.sealer, s.clock.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cp.Heads) != 2 || cp.Heads[0].Owner != "u1" || cp.Heads[0].Seq != 5 || cp.Heads[1].Seq != 1 {
		t.Fatalf("heads: %+v", cp.Heads)
	}
	if n, err := VerifyAuditCheckpoint(ctx, st, cp); err != nil || n != 2 {
		t.Fatalf("untouched: %d %v", n, err)
	}
	mine, err := s.AuditCheckpoint(ctx, "u1")
	if err != nil || len(mine.Heads) != 1 || !bytes.Equal(mine.PublicKey, cp.PublicKey) {
		t.Fatalf("own checkpoint: %+v %v", mine, err)
	}

	cut := truncated{Store: st, owner: "u1", max: 2}
	if _, err := VerifyAudit(ctx, cut); err != nil {
		t.Fatalf("the truncated chain should still link (that is the finding): %v", err)
	}
	for _, c := range []*AuditCheckpoint{cp, mine} {
		if _, err := VerifyAuditCheckpoint(ctx, cut, c); err == nil || !strings.Contains(err.Error(), "audit chain of u1: entries 3 to 5") {
			t.Fatalf("truncation not detected: %v", err)
		}
	}
	if _, err := VerifyAuditCheckpoint(ctx, truncated{Store: st, owner: "u2", max: 0}, cp); err == nil || !strings.Contains(err.Error(), "u2") {
		t.Fatalf("a whole chain gone not detected: %v", err)
	}

	// edited checkpoints and a forger's key
	for name, edit := range map[string]func(c *AuditCheckpoint){
		"signature": func(c *AuditCheckpoint) { c.Signature = bytes.Clone(c.Signature); c.Signature[10] ^= 1 },
		"seq":       func(c *AuditCheckpoint) { c.Heads = []AuditHead{{Owner: "u1", Seq: 2, Hash: c.Heads[0].Hash}} },
		"version":   func(c *AuditCheckpoint) { c.Version = 2 },
		"forged": func(c *AuditCheckpoint) {
			pub, priv, _ := ed25519.GenerateKey(nil)
			c.PublicKey = pub
			c.Signature = ed25519.Sign(priv, AuditCheckpointMessage(c))
		},
	} {
		c := *mine
		edit(&c)
		if _, err := VerifyAuditCheckpoint(ctx, st, &c); err == nil {
			t.Errorf("%s: an edited checkpoint verified", name)
		}
	}
	// the key is made once and then reused
	again, err := NewAuditCheckpoint(ctx, st, s.sealer, s.clock.Now(), []string{"u2"})
	if err != nil || !bytes.Equal(again.PublicKey, cp.PublicKey) {
		t.Fatalf("a second key: %v", err)
	}
}
