package audited_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/ethsig"
	"github.com/countersign/countersign/keys/envelope"
	"github.com/countersign/countersign/keys/keystore"
	"github.com/countersign/countersign/signer/audited"
	"github.com/countersign/countersign/signer/derived"
	"github.com/countersign/countersign/signer/local"
	"github.com/countersign/countersign/store/sqlite"
)

const (
	master = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	omni   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	typed  = `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"Mail":[{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"t"},"message":{"contents":"the secret contents"}}`
)

// recorder keeps what it is asked to record; err makes Record fail.
type recorder struct {
	changes []countersign.Change
	err     error
}

func (r *recorder) Record(_ context.Context, c countersign.Change, apply func(context.Context) error) error {
	if apply != nil {
		return errors.New("a signature is a pure record")
	}
	if r.err != nil {
		return r.err
	}
	r.changes = append(r.changes, c)
	return nil
}

// failing is a DerivedSigner that refuses everything.
type failing struct{ countersign.DerivedSigner }

func (failing) SignMessage(context.Context, string, []byte) ([]byte, error) {
	return nil, countersign.Errorf(countersign.BadRequest, "refused")
}
func (failing) SignTypedData(context.Context, string, []byte) ([]byte, error) {
	return nil, countersign.Errorf(countersign.BadRequest, "refused")
}

func newDerived(t *testing.T) *derived.Signer {
	t.Helper()
	d, err := derived.New(master)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type signFn func(s countersign.DerivedSigner) ([]byte, error)

var kinds = []struct {
	name, action, kind string
	sign               signFn
	hash               func(t *testing.T) []byte
}{
	{"eip191", audited.ActionMessage, "eip191",
		func(s countersign.DerivedSigner) ([]byte, error) {
			return s.SignMessage(context.Background(), omni, []byte("the secret message"))
		},
		func(*testing.T) []byte { return accounts.TextHash([]byte("the secret message")) }},
	{"eip712", audited.ActionTypedData, "eip712",
		func(s countersign.DerivedSigner) ([]byte, error) {
			return s.SignTypedData(context.Background(), omni, []byte(typed))
		},
		func(t *testing.T) []byte {
			_, h, err := ethsig.ParseTypedData([]byte(typed), ethsig.AnyChain)
			if err != nil {
				t.Fatal(err)
			}
			return h
		}},
}

// Each signature is recorded once, on the omni account's chain, by the
// service actor, naming the signed hash only; the signature is the inner
// signer's, unchanged.
func TestSigner(t *testing.T) {
	for _, k := range kinds {
		t.Run("ok/"+k.name, func(t *testing.T) {
			inner := newDerived(t)
			rec := &recorder{}
			sig, err := k.sign(audited.New(inner, rec))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := k.sign(inner) // deterministic (RFC 6979)
			if hex.EncodeToString(sig) != hex.EncodeToString(want) {
				t.Fatal("the decorator changed the signature")
			}
			if len(rec.changes) != 1 {
				t.Fatalf("%d changes recorded, want 1", len(rec.changes))
			}
			c := rec.changes[0]
			if c.Owner != "omni:"+omni || c.Actor != audited.Actor || c.Action != k.action || c.Subject != omni || len(c.Events) != 0 {
				t.Fatalf("recorded %+v", c)
			}
			d, _ := json.Marshal(c.Details)
			wantDetails := `{"kind":"` + k.kind + `","message_hash":"` + hex.EncodeToString(k.hash(t)) + `"}`
			if string(d) != wantDetails {
				t.Fatalf("details %s, want %s", d, wantDetails)
			}
			// the signed hash recovers the derived address: it is what was signed
			pub, err := crypto.SigToPub(k.hash(t), append(append([]byte{}, sig[:64]...), sig[64]-27))
			if err != nil {
				t.Fatal(err)
			}
			addr, _ := inner.DeriveAddress(context.Background(), omni)
			if crypto.PubkeyToAddress(*pub).Hex() != addr {
				t.Fatal("the recorded hash is not the one that was signed")
			}
		})
		t.Run("fail/inner-refuses/"+k.name, func(t *testing.T) {
			rec := &recorder{}
			if _, err := k.sign(audited.New(failing{}, rec)); countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("err = %v, want the inner signer's", err)
			}
			if len(rec.changes) != 0 {
				t.Fatalf("a refused signature was recorded: %+v", rec.changes)
			}
		})
		t.Run("fail/record-fails/"+k.name, func(t *testing.T) {
			rec := &recorder{err: errors.New("disk full")}
			sig, err := k.sign(audited.New(newDerived(t), rec))
			if err == nil || sig != nil {
				t.Fatalf("sig %x, err %v: an unaudited signature was released", sig, err)
			}
		})
	}
	t.Run("ok/derive-address-not-recorded", func(t *testing.T) {
		rec := &recorder{}
		if _, err := audited.New(newDerived(t), rec).DeriveAddress(context.Background(), omni); err != nil {
			t.Fatal(err)
		}
		if len(rec.changes) != 0 {
			t.Fatal("deriving an address signs nothing and must record nothing")
		}
	})
}

// TestSecurity_DerivedAuditHoldsNoSecret: the audit entry of a signature
// must hold neither the message (it may carry anything) nor the master
// secret or the derived key.
func TestSecurity_DerivedAuditHoldsNoSecret(t *testing.T) {
	inner := newDerived(t)
	key, err := inner.DeriveKey(omni)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{master, hex.EncodeToString(crypto.FromECDSA(key)), "the secret message", "the secret contents",
		hex.EncodeToString([]byte("the secret message"))}
	for _, k := range kinds {
		rec := &recorder{}
		if _, err := k.sign(audited.New(inner, rec)); err != nil {
			t.Fatal(err)
		}
		d, _ := json.Marshal(rec.changes)
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(string(d)), strings.ToLower(s)) {
				t.Fatalf("%s: the audit entry holds %q: %s", k.name, s, d)
			}
		}
	}
}

// chain is the one Chain method core.New needs.
type chain struct{ countersign.Chain }

func (chain) ChainID(context.Context) (*big.Int, error) { return big.NewInt(1337), nil }

type clock struct{}

func (clock) Now() time.Time { return time.Unix(1_800_000_000, 0) }

// Through the real state-change path: each signature appends exactly one
// entry to the omni account's chain, and the chain verifies.
func TestSigner_RealAuditChain(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := make([]byte, 32)
	_, _ = io.ReadFull(rand.Reader, kek)
	sealer, err := envelope.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := core.New(ctx, st, chain{}, local.New(sealer, keystore.Dir{Path: filepath.Join(t.TempDir(), "ks")}), sealer, clock{},
		slog.New(slog.NewTextHandler(io.Discard, nil)), core.Config{Argon2: auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	s := audited.New(newDerived(t), svc)
	for i, k := range kinds {
		if _, err := k.sign(s); err != nil {
			t.Fatal(err)
		}
		entries, err := svc.AuditLog(ctx, audited.Owner(omni), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != i+1 || entries[i].Action != k.action || entries[i].Actor != audited.Actor {
			t.Fatalf("after %s: %d entries (%+v), want %d", k.name, len(entries), entries, i+1)
		}
		if _, err := k.sign(audited.New(failing{}, svc)); err == nil {
			t.Fatal("failing signer signed")
		}
	}
	n, err := core.VerifyAudit(ctx, st)
	if err != nil || n != len(kinds) {
		t.Fatalf("VerifyAudit: %d entries, %v", n, err)
	}
}
