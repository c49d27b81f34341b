package core

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/countersign/countersign"
)

// SystemOwner owns audit entries that belong to no user (such as a failed
// login for an unknown username).
const SystemOwner = "system"

// auditHash is SHA-256 over the previous hash and every field of the entry,
// each length-prefixed so no two entries encode alike.
func auditHash(e *countersign.AuditEntry) []byte {
	h := sha256.New()
	put := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var num [8]byte
	put(e.PrevHash)
	put([]byte(e.OwnerID))
	binary.BigEndian.PutUint64(num[:], uint64(e.Seq))
	put(num[:])
	binary.BigEndian.PutUint64(num[:], uint64(e.At.UnixNano()))
	put(num[:])
	put([]byte(e.Actor))
	put([]byte(e.Action))
	put([]byte(e.Subject))
	put([]byte(e.Details))
	return h.Sum(nil)
}

// AuditLog returns an owner's entries after afterSeq, oldest first.
func (s *Service) AuditLog(ctx context.Context, owner string, afterSeq int64, limit int) ([]*countersign.AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.store.AuditEntries(ctx, owner, afterSeq, limit)
}

// VerifyAudit walks every owner's chain and returns the number of entries
// checked, or an error naming the first entry that does not link or hash.
func VerifyAudit(ctx context.Context, st countersign.Store) (int, error) {
	owners, err := st.AuditOwners(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, owner := range owners {
		prev := make([]byte, sha256.Size)
		var seq int64
		for {
			page, err := st.AuditEntries(ctx, owner, seq, 500)
			if err != nil {
				return n, err
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				if e.Seq != seq+1 {
					return n, fmt.Errorf("audit chain of %s: entry %d missing (found %d)", owner, seq+1, e.Seq)
				}
				if !bytes.Equal(e.PrevHash, prev) {
					return n, fmt.Errorf("audit chain of %s: entry %d does not link to entry %d", owner, e.Seq, seq)
				}
				if !bytes.Equal(auditHash(e), e.Hash) {
					return n, fmt.Errorf("audit chain of %s: entry %d was altered", owner, e.Seq)
				}
				prev, seq = e.Hash, e.Seq
				n++
			}
		}
	}
	return n, nil
}
