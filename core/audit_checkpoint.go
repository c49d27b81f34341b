package core

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/countersign/countersign"
)

// Audit checkpoints. The hash chain shows a row edited or deleted in the
// middle of an owner's chain, but not the newest rows deleted: the
// shortened chain still links. A checkpoint is the chains' heads (owner,
// seq, hash) signed with the server's Ed25519 audit key; kept somewhere
// the database's writers cannot reach, it proves which entries existed when
// it was taken, so `audit verify --checkpoint FILE` detects any entry up to
// those heads that has since gone. (Entries newer than the last checkpoint
// are covered only by the next one: take them regularly.)

// AuditCheckpointVersion is the only checkpoint format.
const AuditCheckpointVersion = 1

// auditKeyAlg and auditKeyID name the audit key among the sealed signing
// keys. One fixed id: replicas starting at once race to insert it and the
// losers load the winner's (a taken id is Conflict).
const (
	auditKeyAlg = "Ed25519-audit"
	auditKeyID  = "audit-ed25519-1"
)

// AuditCheckpoint is a signed statement of audit chain heads.
type AuditCheckpoint struct {
	Version   int         `json:"version"`
	CreatedAt time.Time   `json:"created_at"`
	PublicKey []byte      `json:"public_key"` // Ed25519, base64 in JSON
	Heads     []AuditHead `json:"heads"`      // sorted by owner
	Signature []byte      `json:"signature"`  // Ed25519 over the canonical encoding, base64 in JSON
}

// AuditHead is the newest entry of one owner's chain.
type AuditHead struct {
	Owner string `json:"owner"`
	Seq   int64  `json:"seq"`
	Hash  string `json:"hash"` // hex
}

// AuditCheckpointMessage is what the signature covers: a domain separator
// and every field but the signature, each length-prefixed (as in
// auditHash), so no two checkpoints encode alike and the JSON's spelling
// does not matter. Public, for verifiers written elsewhere.
func AuditCheckpointMessage(cp *AuditCheckpoint) []byte {
	var b bytes.Buffer
	put := func(p []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		b.Write(n[:])
		b.Write(p)
	}
	num := func(v int64) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(v))
		put(n[:])
	}
	put([]byte("countersign audit checkpoint"))
	num(int64(cp.Version))
	num(cp.CreatedAt.UnixNano())
	put(cp.PublicKey)
	num(int64(len(cp.Heads)))
	for _, h := range cp.Heads {
		put([]byte(h.Owner))
		num(h.Seq)
		put([]byte(h.Hash))
	}
	return b.Bytes()
}

// auditKey loads the audit signing key, creating it on first use. The
// private half is sealed under the key-encryption key like the session
// token keys; the public half is stored beside it for verifiers that have
// no master key.
func auditKey(ctx context.Context, st countersign.Store, sealer countersign.Sealer, now time.Time) (ed25519.PrivateKey, error) {
	for range 2 {
		stored, err := st.SigningKeys(ctx)
		if err != nil {
			return nil, err
		}
		for _, sk := range stored {
			if sk.Alg != auditKeyAlg || sk.KID != auditKeyID {
				continue
			}
			seed, err := sealer.Open("signing-key:"+sk.KID, sk.Sealed)
			if err != nil {
				return nil, fmt.Errorf("open the audit key: %w", err)
			}
			if len(seed) != ed25519.SeedSize {
				clear(seed)
				return nil, errors.New("the audit key is malformed")
			}
			k := ed25519.NewKeyFromSeed(seed)
			clear(seed)
			if !bytes.Equal(k.Public().(ed25519.PublicKey), sk.Public) {
				clear(k)
				return nil, errors.New("the audit key's stored public half does not match its private half")
			}
			return k, nil
		}
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		k := ed25519.NewKeyFromSeed(seed)
		sealed, err := sealer.Seal("signing-key:"+auditKeyID, seed)
		clear(seed)
		if err != nil {
			return nil, err
		}
		err = st.AddSigningKey(ctx, &countersign.SigningKey{KID: auditKeyID, Alg: auditKeyAlg, Sealed: sealed,
			Public: k.Public().(ed25519.PublicKey), CreatedAt: now})
		if err == nil {
			return k, nil
		}
		clear(k)
		if countersign.ErrorCode(err) != countersign.Conflict {
			return nil, err
		}
		// another replica created it first: load theirs
	}
	return nil, errors.New("the audit key could not be created")
}

// AuditPublicKey returns the public half of the audit key in st (no
// master key needed), or NotFound when this database has none.
func AuditPublicKey(ctx context.Context, st countersign.Store) (ed25519.PublicKey, error) {
	stored, err := st.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, sk := range stored {
		if sk.Alg == auditKeyAlg && sk.KID == auditKeyID && len(sk.Public) == ed25519.PublicKeySize {
			return ed25519.PublicKey(sk.Public), nil
		}
	}
	return nil, countersign.Errorf(countersign.NotFound, "this database has no audit key")
}

// EnsureAuditKey creates the audit key at first start, so its public half
// exists before the first checkpoint is taken.
func (s *Service) EnsureAuditKey(ctx context.Context) error {
	k, err := auditKey(ctx, s.store, s.sealer, s.clock.Now().UTC())
	clear(k)
	return err
}

// AuditCheckpoint signs the head of owner's chain (the GET
// /api/audit/checkpoint route: a user's own chain).
func (s *Service) AuditCheckpoint(ctx context.Context, owner string) (*AuditCheckpoint, error) {
	return NewAuditCheckpoint(ctx, s.store, s.sealer, s.clock.Now(), []string{owner})
}

// NewAuditCheckpoint signs the heads of owners' chains (nil: every owner,
// for the operator's `countersign audit checkpoint`). Owners without
// entries have no head. A head whose own hash does not check is refused:
// a checkpoint must not bless an altered entry.
func NewAuditCheckpoint(ctx context.Context, st countersign.Store, sealer countersign.Sealer, now time.Time, owners []string) (*AuditCheckpoint, error) {
	if owners == nil {
		var err error
		if owners, err = st.AuditOwners(ctx); err != nil {
			return nil, err
		}
	}
	owners = slices.Clone(owners)
	slices.Sort(owners)
	owners = slices.Compact(owners)
	k, err := auditKey(ctx, st, sealer, now.UTC())
	if err != nil {
		return nil, err
	}
	defer clear(k)
	cp := &AuditCheckpoint{Version: AuditCheckpointVersion, CreatedAt: now.UTC(), PublicKey: k.Public().(ed25519.PublicKey), Heads: []AuditHead{}}
	for _, owner := range owners {
		newest, err := st.AuditEntries(ctx, owner, -1, 1)
		if err != nil {
			return nil, err
		}
		if len(newest) == 0 {
			continue
		}
		e := newest[0]
		if !bytes.Equal(auditHash(e), e.Hash) {
			return nil, fmt.Errorf("audit chain of %s: entry %d was altered; not signing it", owner, e.Seq)
		}
		cp.Heads = append(cp.Heads, AuditHead{Owner: owner, Seq: e.Seq, Hash: hex.EncodeToString(e.Hash)})
	}
	cp.Signature = ed25519.Sign(k, AuditCheckpointMessage(cp))
	return cp, nil
}

// CheckAuditCheckpointSignature checks a checkpoint's shape and signature
// under its own public key. Whether that key is this server's is the
// caller's question (VerifyAuditCheckpoint asks the store).
func CheckAuditCheckpointSignature(cp *AuditCheckpoint) error {
	if cp.Version != AuditCheckpointVersion {
		return fmt.Errorf("checkpoint version %d: only version %d is known", cp.Version, AuditCheckpointVersion)
	}
	if len(cp.PublicKey) != ed25519.PublicKeySize || len(cp.Signature) != ed25519.SignatureSize {
		return errors.New("checkpoint public_key or signature has the wrong length")
	}
	for i, h := range cp.Heads {
		if h.Owner == "" || h.Seq < 1 {
			return fmt.Errorf("checkpoint head %d has no owner or a seq below 1", i)
		}
		if b, err := hex.DecodeString(h.Hash); err != nil || len(b) != sha256.Size || h.Hash != strings.ToLower(h.Hash) {
			return fmt.Errorf("checkpoint head of %s: hash must be %d lowercase hex bytes", h.Owner, sha256.Size)
		}
		if i > 0 && cp.Heads[i-1].Owner >= h.Owner {
			return errors.New("checkpoint heads must be sorted by owner, each owner once")
		}
	}
	if !ed25519.Verify(ed25519.PublicKey(cp.PublicKey), AuditCheckpointMessage(cp), cp.Signature) {
		return errors.New("checkpoint signature does not verify: the file was altered or not made by countersign")
	}
	return nil
}

// VerifyAuditCheckpoint checks that cp was signed by st's audit key and
// that every head it names is still in its chain with the same hash. With
// VerifyAudit (every chain links and hashes from its first entry to its
// newest), this shows no entry up to the checkpoint was removed, edited or
// replaced. It returns the number of heads checked, or an error naming the
// owner and the missing or changed entries.
func VerifyAuditCheckpoint(ctx context.Context, st countersign.Store, cp *AuditCheckpoint) (int, error) {
	if err := CheckAuditCheckpointSignature(cp); err != nil {
		return 0, err
	}
	pub, err := AuditPublicKey(ctx, st)
	if err != nil {
		return 0, fmt.Errorf("cannot check the checkpoint's key: %w", err)
	}
	if !bytes.Equal(pub, cp.PublicKey) {
		return 0, errors.New("the checkpoint was signed by another key than this database's audit key")
	}
	for i, h := range cp.Heads {
		at, err := st.AuditEntries(ctx, h.Owner, h.Seq-1, 1)
		if err != nil {
			return i, err
		}
		if len(at) == 0 || at[0].Seq != h.Seq {
			newest, err := st.AuditEntries(ctx, h.Owner, -1, 1)
			if err != nil {
				return i, err
			}
			var last int64
			if len(newest) == 1 {
				last = newest[0].Seq
			}
			if last >= h.Seq {
				return i, fmt.Errorf("audit chain of %s: entry %d, in the checkpoint, is missing", h.Owner, h.Seq)
			}
			return i, fmt.Errorf("audit chain of %s: entries %d to %d, in the checkpoint, are missing (the chain now ends at %d)", h.Owner, last+1, h.Seq, last)
		}
		if hex.EncodeToString(at[0].Hash) != h.Hash {
			return i, fmt.Errorf("audit chain of %s: entry %d differs from the checkpoint (replaced or rewritten)", h.Owner, h.Seq)
		}
	}
	return len(cp.Heads), nil
}
