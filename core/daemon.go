package core

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
	"github.com/countersign/countersign/keys/hd"
	"github.com/countersign/countersign/keys/keystore"
)

// The local wallet daemon (seed 001): HD and single-key wallets in v1-kdb
// files, unlocked into memory for a while, accounts derived on several
// curves, messages signed. It acts as the operator: agents never reach it
// (they go through the countersigned flow).

// WalletLocked is the seed's error code for a wallet that must be unlocked
// (defined in the root with the other codes; kept here for callers of core).
const WalletLocked = countersign.WalletLocked

// Curves.
const (
	CurveEd25519   = "ed25519"
	CurveSecp256k1 = "secp256k1"
)

// DefaultPaths are the derivation paths used when none is given, and
// CoinType the seed's provisional coin type in them.
var DefaultPaths = map[string]string{CurveEd25519: hd.DefaultEd25519Path, CurveSecp256k1: hd.DefaultSecp256k1Path}

// CoinType is seed 001's provisional coin type.
const CoinType = hd.CoinType

// DaemonConfig configures the daemon.
type DaemonConfig struct {
	UnlockTTL time.Duration   // default 120 s (UNLOCK_TTL_SEC)
	Argon2    keystore.Params // default keystore.DefaultParams
	SignRate  float64         // signatures per second, process-wide (default 100; SIGN_RATE)
	SignBurst int             // (default 200; SIGN_BURST)
	// Ledger holds balances and transfers (WALLET_CHAIN; ledger/mock).
	Ledger countersign.Ledger
}

// walletMeta is the readable metadata of a .kdb file.
// apiWalletKind marks the keystore files of API wallets (signer/local),
// which the daemon neither lists nor unlocks.
const apiWalletKind = "api"

type walletMeta struct {
	WalletID  string    `json:"wallet_id"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"` // "hd" (secret = BIP-39 seed) | "key" (secret = private key)
	Curve     string    `json:"curve,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

type unlocked struct {
	secret  []byte
	kind    string
	curve   string
	expires time.Time

	// mu guards the wiping of everything: users of the secret or a key
	// hold it for reading, wipe holds it for writing, so nothing is zeroed
	// mid-signature. (Lock order: Daemon.mu, then this.)
	mu    sync.RWMutex
	keys  sync.Map // account id → *accountKey, derived once per unlock
	wiped bool
}

// key returns the account's key, deriving it on first use. The caller
// holds u.mu for reading.
func (u *unlocked) key(a *countersign.DaemonAccount) (*accountKey, error) {
	if k, ok := u.keys.Load(a.ID); ok {
		return k.(*accountKey), nil
	}
	k, err := deriveAccountKey(u, a)
	if err != nil {
		return nil, err
	}
	if prev, loaded := u.keys.LoadOrStore(a.ID, k); loaded { // another signer derived it first
		k.wipe()
		return prev.(*accountKey), nil
	}
	return k, nil
}

// accountKey is an account's private key, ready to sign with: the raw
// bytes (for export), and the parsed form so a signature costs no key
// setup (an ed25519 expansion or a secp256k1 public-key multiplication).
type accountKey struct {
	raw []byte
	ed  ed25519.PrivateKey
	ec  *ecdsa.PrivateKey
}

func (k *accountKey) wipe() {
	clear(k.raw)
	clear(k.ed)
	if k.ec != nil {
		keystore.ZeroKey(k.ec)
	}
}

// wipe zeroes the seed and every derived key. The caller holds Daemon.mu.
func (u *unlocked) wipe() {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.secret)
	u.keys.Range(func(id, k any) bool {
		k.(*accountKey).wipe()
		u.keys.Delete(id)
		return true
	})
	u.wiped = true
}

// Daemon is the wallet daemon's service.
type Daemon struct {
	svc  *Service
	keys countersign.KeyStore
	cfg  DaemonConfig

	mu       sync.RWMutex
	unlocked map[string]*unlocked
	limiter  *rate.Limiter
	accounts sync.Map // account id → *countersign.DaemonAccount (rows never change)
	commits  *groupCommit
}

// NewDaemon returns the daemon over a key store.
func NewDaemon(svc *Service, ks countersign.KeyStore, cfg DaemonConfig) *Daemon {
	if cfg.UnlockTTL == 0 {
		cfg.UnlockTTL = 120 * time.Second
	}
	if cfg.Argon2.Time == 0 {
		cfg.Argon2 = keystore.DefaultParams
	}
	if cfg.SignRate == 0 {
		cfg.SignRate = 100
	}
	if cfg.SignBurst == 0 {
		cfg.SignBurst = 200
	}
	return &Daemon{svc: svc, keys: ks, cfg: cfg, unlocked: map[string]*unlocked{}, limiter: rate.NewLimiter(rate.Limit(cfg.SignRate), cfg.SignBurst),
		commits: svc.commits}
}

// Close stops the daemon's commit worker once every signature waiting on
// it is recorded. Call it after the HTTP server has stopped and before the
// store closes.
func (d *Daemon) Close() {}

// signedEvent audits a signature and emits the "signed" event (webhooks,
// streams) in one transaction — shared with concurrent signatures (group
// commit) — and returns once it has committed: what was signed is named by
// its hash only.
func (d *Daemon) signedEvent(ctx context.Context, a *countersign.DaemonAccount, action string, details map[string]string) error {
	payload := map[string]string{"account_id": a.ID, "address": a.Address}
	for k, v := range details {
		payload[k] = v
	}
	// the JSON is made here, on the caller's core, not in the commit worker
	rec := &auditRecord{owner: DaemonOwner, actor: "operator", action: action, subject: a.ID, details: jsonString(details)}
	ev := &countersign.Event{OwnerID: DaemonOwner, Type: "signed", Subject: a.ID, Payload: jsonString(payload), CreatedAt: d.svc.clock.Now().UTC()}
	return d.commits.record(ctx, rec, ev)
}

// Config returns the daemon's configuration (for /about).
func (d *Daemon) Config() DaemonConfig { return d.cfg }

// DaemonOwner owns the daemon's audit chain.
const DaemonOwner = "daemon"

func (d *Daemon) audit(ctx context.Context, action, subject string, details any) error {
	return d.svc.inTx(ctx, func(ctx context.Context) error {
		return d.svc.audit(ctx, DaemonOwner, "operator", action, subject, details)
	})
}

// store encrypts and writes a new wallet.
func (d *Daemon) store(ctx context.Context, name, kind, curve string, secret []byte, password string) (string, error) {
	if err := checkDaemonPassword(password); err != nil {
		return "", err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", countersign.Errorf(countersign.BadRequest, "name is required (at most %d characters)", MaxName)
	}
	if err := CheckText("name", name, MaxName, false); err != nil {
		return "", err
	}
	m := walletMeta{WalletID: uuid.NewString(), Name: name, Kind: kind, Curve: curve, CreatedAt: d.svc.clock.Now().UTC()}
	meta, _ := json.Marshal(m)
	if err := keystore.Put(ctx, d.keys, m.WalletID, secret, []byte(password), meta, d.cfg.Argon2); err != nil {
		return "", err
	}
	return m.WalletID, d.audit(ctx, "daemon.wallet.create", m.WalletID, map[string]string{"name": name, "kind": kind})
}

func checkDaemonPassword(pw string) error {
	if pw == "" || len(pw) > 1024 {
		return countersign.Errorf(countersign.BadRequest, "password is required")
	}
	return nil
}

// CreateWallet makes an HD wallet from a new mnemonic of 12 or 24 words and
// returns the mnemonic (to show once, if asked).
func (d *Daemon) CreateWallet(ctx context.Context, name, password string, words int) (id, mnemonic string, err error) {
	if words == 0 {
		words = 24
	}
	if mnemonic, err = hd.NewMnemonic(words); err != nil {
		return "", "", countersign.Errorf(countersign.BadRequest, "mnemonic_len must be 12 or 24")
	}
	seed, err := hd.Seed(mnemonic, "")
	if err != nil {
		return "", "", err
	}
	defer clear(seed)
	id, err = d.store(ctx, name, "hd", "", seed, password)
	return id, mnemonic, err
}

// ImportMnemonic makes an HD wallet from a BIP-39 mnemonic and passphrase.
func (d *Daemon) ImportMnemonic(ctx context.Context, name, password, mnemonic, passphrase string) (string, error) {
	seed, err := hd.Seed(mnemonic, passphrase)
	if err != nil {
		return "", countersign.Errorf(countersign.BadRequest, "%v", err)
	}
	defer clear(seed)
	return d.store(ctx, name, "hd", "", seed, password)
}

// ImportKey makes a single-key wallet and its one account.
func (d *Daemon) ImportKey(ctx context.Context, name, password, curve, keyHex string) (string, *countersign.DaemonAccount, error) {
	key, err := hex.DecodeString(strings.TrimPrefix(keyHex, "0x"))
	if err != nil || len(key) != 32 {
		return "", nil, countersign.Errorf(countersign.BadRequest, "private_key_hex must be 32 bytes of hex")
	}
	defer clear(key)
	if _, err := publicKey(curve, key); err != nil {
		return "", nil, err
	}
	id, err := d.store(ctx, name, "key", curve, key, password)
	if err != nil {
		return "", nil, err
	}
	a, err := d.addAccount(ctx, id, curve, "", key, nil)
	return id, a, err
}

// ImportKeystore imports an Ethereum keystore (Web3 Secret Storage v3,
// scrypt or pbkdf2, as geth, MetaMask and ethers write them) as a
// single-key secp256k1 wallet, re-encrypted under password.
func (d *Daemon) ImportKeystore(ctx context.Context, name, password string, keystoreJSON []byte, keystorePassword string) (string, *countersign.DaemonAccount, error) {
	if len(keystoreJSON) == 0 {
		return "", nil, countersign.Errorf(countersign.BadRequest, "keystore_json is required")
	}
	key, _, err := keystore.ImportV3(keystoreJSON, keystorePassword)
	switch {
	case errors.Is(err, keystore.ErrDecrypt):
		_ = d.audit(ctx, "daemon.import.failure", "keystore", map[string]string{})
		return "", nil, countersign.Errorf(countersign.BadPassword, "wrong keystore_password (or the keystore was altered)")
	case err != nil:
		return "", nil, countersign.Errorf(countersign.BadRequest, "keystore_json: %v", err)
	}
	defer clear(key)
	id, err := d.store(ctx, name, "key", CurveSecp256k1, key, password)
	if err != nil {
		return "", nil, err
	}
	a, err := d.addAccount(ctx, id, CurveSecp256k1, "", key, nil)
	return id, a, err
}

func publicKey(curve string, priv []byte) ([]byte, error) {
	switch curve {
	case CurveEd25519:
		return ed25519.NewKeyFromSeed(priv).Public().(ed25519.PublicKey), nil
	case CurveSecp256k1:
		k, err := crypto.ToECDSA(priv)
		if err != nil {
			return nil, countersign.Errorf(countersign.BadRequest, "not a valid secp256k1 private key")
		}
		return crypto.CompressPubkey(&k.PublicKey), nil
	default:
		return nil, countersign.Errorf(countersign.BadRequest, "curve must be ed25519 or secp256k1")
	}
}

func (d *Daemon) addAccount(ctx context.Context, walletID, curve, path string, priv []byte, tags map[string]string) (*countersign.DaemonAccount, error) {
	pub, err := publicKey(curve, priv)
	if err != nil {
		return nil, err
	}
	addr, err := hd.Address(pub)
	if err != nil {
		return nil, err
	}
	if tags == nil {
		tags = map[string]string{}
	}
	a := &countersign.DaemonAccount{ID: uuid.NewString(), WalletID: walletID, Curve: curve, Path: path, Address: addr, PublicKey: pub, Tags: tags, CreatedAt: d.svc.clock.Now().UTC()}
	if curve == CurveSecp256k1 {
		k, _ := crypto.ToECDSA(priv)
		a.EVMAddress = crypto.PubkeyToAddress(k.PublicKey).Hex()
	}
	if err := d.svc.store.CreateDaemonAccount(ctx, a); err != nil {
		return nil, err
	}
	return a, d.audit(ctx, "daemon.account.derive", a.ID, map[string]string{"wallet_id": walletID, "curve": curve, "path": path, "address": a.Address})
}

// Account tags: the operator's labels for accounts (seed 001 §15), such as
// {"role": "payout"}.
const (
	maxTags      = 16
	maxTagKey    = 32
	maxTagValue  = 128
	tagKeyDetail = "tag names are 1 to 32 characters of a-z, 0-9, '_', '-' and '.'"
)

// CheckTags validates a set of tags.
func CheckTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return countersign.Errorf(countersign.BadRequest, "at most %d tags", maxTags)
	}
	for k, v := range tags {
		if k == "" || len(k) > maxTagKey || strings.IndexFunc(k, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
		}) >= 0 {
			return countersign.Errorf(countersign.BadRequest, "tag %q: %s", truncate(k, 40), tagKeyDetail)
		}
		if err := CheckText(`tag "`+k+`"`, v, maxTagValue, false); err != nil {
			return err
		}
	}
	return nil
}

// SetAccountTags replaces an account's tags.
func (d *Daemon) SetAccountTags(ctx context.Context, accountID string, tags map[string]string) (*countersign.DaemonAccount, error) {
	if err := CheckTags(tags); err != nil {
		return nil, err
	}
	if tags == nil {
		tags = map[string]string{}
	}
	err := d.svc.inTx(ctx, func(ctx context.Context) error {
		if err := d.svc.store.SetDaemonAccountTags(ctx, accountID, tags); err != nil {
			return err
		}
		return d.svc.audit(ctx, DaemonOwner, "operator", "daemon.account.tags", accountID, tags)
	})
	d.accounts.Delete(accountID) // the cached row is stale now (or was never there)
	if err != nil {
		return nil, err
	}
	return d.account(ctx, accountID)
}

// Unlock decrypts a wallet into memory until the TTL passes.
func (d *Daemon) Unlock(ctx context.Context, walletID, password string) (time.Time, error) {
	blob, err := d.keys.Get(ctx, walletID)
	if err != nil {
		return time.Time{}, err
	}
	if h, err := keystore.ReadHeader(blob); err == nil {
		var m walletMeta
		if json.Unmarshal(h.Meta, &m) == nil && m.Kind == apiWalletKind {
			return time.Time{}, countersign.Errorf(countersign.NotFound, "wallet not found")
		}
	}
	secret, meta, err := keystore.Decrypt(blob, []byte(password))
	if err != nil {
		if err == keystore.ErrDecrypt {
			_ = d.audit(ctx, "daemon.unlock.failure", walletID, map[string]string{})
			return time.Time{}, countersign.Errorf(countersign.BadPassword, "wrong password (or the wallet file was altered)")
		}
		return time.Time{}, countersign.Wrap(countersign.Internal, err, "the wallet file is unreadable")
	}
	var m walletMeta
	if err := json.Unmarshal(meta, &m); err != nil || m.WalletID != walletID {
		clear(secret)
		return time.Time{}, countersign.Errorf(countersign.Internal, "the wallet file belongs to another wallet")
	}
	exp := d.svc.clock.Now().Add(d.cfg.UnlockTTL)
	d.mu.Lock()
	if old := d.unlocked[walletID]; old != nil {
		old.wipe()
	}
	d.unlocked[walletID] = &unlocked{secret: secret, kind: m.Kind, curve: m.Curve, expires: exp}
	d.mu.Unlock()
	return exp, d.audit(ctx, "daemon.unlock", walletID, map[string]string{"until": exp.UTC().Format(time.RFC3339)})
}

// Lock zeroes and forgets one wallet's secret, or every wallet's when
// walletID is empty. It returns how many were locked.
func (d *Daemon) Lock(ctx context.Context, walletID string) (int, error) {
	d.mu.Lock()
	n := 0
	for id, u := range d.unlocked {
		if walletID == "" || id == walletID {
			u.wipe()
			delete(d.unlocked, id)
			n++
		}
	}
	d.mu.Unlock()
	return n, d.audit(ctx, "daemon.lock", walletID, map[string]int{"locked": n})
}

// Sweep zeroes every wallet whose TTL has passed.
func (d *Daemon) Sweep() {
	now := d.svc.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, u := range d.unlocked {
		if !now.Before(u.expires) {
			u.wipe()
			delete(d.unlocked, id)
		}
	}
}

// useWallet runs fn with an unlocked wallet under its read lock, so lock
// and expiry (which zero it) wait for fn to finish. An unlock found expired
// is zeroed here and now, not at the next sweep.
func (d *Daemon) useWallet(walletID string, fn func(u *unlocked) error) error {
	d.mu.RLock()
	u := d.unlocked[walletID]
	d.mu.RUnlock()
	if u != nil && !d.svc.clock.Now().Before(u.expires) {
		d.mu.Lock()
		if d.unlocked[walletID] == u {
			u.wipe()
			delete(d.unlocked, walletID)
		}
		d.mu.Unlock()
		u = nil
	}
	locked := countersign.Errorf(WalletLocked, "wallet %s is locked: POST /v1/wallet/unlock first", walletID)
	if u == nil {
		return locked
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.wiped {
		return locked
	}
	return fn(u)
}

// Derive derives an account of an unlocked HD wallet.
func (d *Daemon) Derive(ctx context.Context, walletID, curve, path string, tags map[string]string) (*countersign.DaemonAccount, error) {
	if err := CheckTags(tags); err != nil {
		return nil, err
	}
	if curve == "" {
		curve = CurveEd25519
	}
	if path == "" {
		path = DefaultPaths[curve]
	}
	p, err := hd.ParsePath(path)
	if err != nil {
		return nil, countersign.Errorf(countersign.BadRequest, "%v", err)
	}
	var priv []byte
	err = d.useWallet(walletID, func(u *unlocked) error {
		if u.kind != "hd" {
			return countersign.Errorf(countersign.BadRequest, "a single-key wallet has one account and derives none")
		}
		var err error
		priv, err = deriveHD(u.secret, curve, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer clear(priv)
	return d.addAccount(ctx, walletID, curve, p.String(), priv, tags)
}

// account returns an account's row, from memory after the first read.
func (d *Daemon) account(ctx context.Context, id string) (*countersign.DaemonAccount, error) {
	if a, ok := d.accounts.Load(id); ok {
		return a.(*countersign.DaemonAccount), nil
	}
	a, err := d.svc.store.DaemonAccount(ctx, id)
	if err != nil {
		return nil, err
	}
	d.accounts.Store(id, a)
	return a, nil
}

// withKey runs fn with the account's key while its wallet is unlocked,
// deriving and parsing the key on first use. fn must not keep the key.
func (d *Daemon) withKey(a *countersign.DaemonAccount, fn func(k *accountKey) error) error {
	return d.useWallet(a.WalletID, func(u *unlocked) error {
		k, err := u.key(a)
		if err != nil {
			return err
		}
		return fn(k)
	})
}

// deriveHD derives the private key at path p of a BIP-39 seed: SLIP-10 for
// ed25519 (its 32-byte seed), BIP-32 for secp256k1.
func deriveHD(seed []byte, curve string, p hd.Path) ([]byte, error) {
	switch curve {
	case CurveEd25519:
		m, err := hd.NewEd25519Master(seed)
		if err != nil {
			return nil, err
		}
		k, err := m.Derive(p)
		if err != nil {
			return nil, countersign.Errorf(countersign.BadRequest, "%v", err)
		}
		return k.Seed, nil
	case CurveSecp256k1:
		m, err := hd.NewMaster(seed)
		if err != nil {
			return nil, err
		}
		k, err := m.Derive(p)
		if err != nil {
			return nil, countersign.Errorf(countersign.BadRequest, "%v", err)
		}
		return k.PrivateKey(), nil
	default:
		return nil, countersign.Errorf(countersign.BadRequest, "curve must be ed25519 or secp256k1")
	}
}

// deriveAccountKey derives (HD) or takes (single key) an account's key
// from an unlocked wallet's secret.
func deriveAccountKey(u *unlocked, a *countersign.DaemonAccount) (*accountKey, error) {
	var raw []byte
	if u.kind == "key" {
		raw = append([]byte(nil), u.secret...)
	} else {
		p, err := hd.ParsePath(a.Path)
		if err != nil {
			return nil, err
		}
		if raw, err = deriveHD(u.secret, a.Curve, p); err != nil {
			return nil, err
		}
	}
	k := &accountKey{raw: raw}
	if a.Curve == CurveEd25519 {
		k.ed = ed25519.NewKeyFromSeed(raw)
		return k, nil
	}
	ec, err := crypto.ToECDSA(raw)
	if err != nil {
		clear(raw)
		return nil, err
	}
	k.ec = ec
	return k, nil
}

// SignedMessage is a signature with what verifies it.
type SignedMessage struct {
	Signature []byte
	PublicKey []byte
	Algo      string // "ed25519" or "secp256k1-eip191"
}

// SignMessage signs with an account: ed25519 signs the bytes; secp256k1
// signs EIP-191 personal_sign (65 bytes, v = 27/28).
func (d *Daemon) SignMessage(ctx context.Context, accountID string, msg []byte) (*SignedMessage, error) {
	if len(msg) > MaxMessage {
		return nil, countersign.Errorf(countersign.BadRequest, "message larger than %d KiB", MaxMessage>>10)
	}
	if err := d.allowSign(); err != nil {
		return nil, err
	}
	a, err := d.account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	out := &SignedMessage{PublicKey: a.PublicKey}
	err = d.withKey(a, func(k *accountKey) error {
		if a.Curve == CurveEd25519 {
			out.Signature, out.Algo = ed25519.Sign(k.ed, msg), "ed25519"
			return nil
		}
		sig, err := ethsig.SignHash(k.ec, accounts.TextHash(msg))
		if err != nil {
			return err
		}
		out.Signature, out.Algo = sig, "secp256k1-eip191"
		return nil
	})
	if err != nil {
		return nil, err
	}
	hash := hex.EncodeToString(crypto.Keccak256(msg))
	return out, d.signedEvent(ctx, a, "daemon.sign.message", map[string]string{"algo": out.Algo, "message_hash": hash})
}

// WalletInfo is a wallet as listed (never secrets).
type WalletInfo struct {
	WalletID  string    `json:"wallet_id"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Curve     string    `json:"curve,omitempty"`
	Curves    []string  `json:"curves"` // the design's WalletMeta.curves: both for HD (it derives either), else the key's
	CreatedAt time.Time `json:"created_at"`
	Unlocked  bool      `json:"unlocked"`
}

// Wallets lists the daemon's wallets from their readable metadata.
func (d *Daemon) Wallets(ctx context.Context) ([]WalletInfo, error) {
	ids, err := d.keys.List(ctx)
	if err != nil {
		return nil, err
	}
	d.Sweep()
	out := []WalletInfo{}
	for _, id := range ids {
		blob, err := d.keys.Get(ctx, id)
		if err != nil {
			continue
		}
		h, err := keystore.ReadHeader(blob)
		if err != nil {
			continue
		}
		var m walletMeta
		if json.Unmarshal(h.Meta, &m) != nil || m.Kind == apiWalletKind {
			continue // API wallets share the keystore but are not the operator's
		}
		d.mu.Lock()
		_, open := d.unlocked[id]
		d.mu.Unlock()
		curves := []string{CurveEd25519, CurveSecp256k1}
		if m.Curve != "" {
			curves = []string{m.Curve}
		}
		out = append(out, WalletInfo{WalletID: id, Name: m.Name, Kind: m.Kind, Curve: m.Curve, Curves: curves, CreatedAt: m.CreatedAt, Unlocked: open})
	}
	return out, nil
}

// Accounts lists a wallet's accounts.
// With tag "name" only accounts carrying that tag are listed; with
// "name=value", only those where it has that value.
func (d *Daemon) Accounts(ctx context.Context, walletID, tag string) ([]*countersign.DaemonAccount, error) {
	list, err := d.svc.store.DaemonAccounts(ctx, walletID)
	if err != nil || tag == "" {
		return list, err
	}
	name, value, withValue := strings.Cut(tag, "=")
	out := []*countersign.DaemonAccount{}
	for _, a := range list {
		if v, ok := a.Tags[name]; ok && (!withValue || v == value) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Account returns one account.
func (d *Daemon) Account(ctx context.Context, id string) (*countersign.DaemonAccount, error) {
	return d.account(ctx, id)
}

// SignedTx is a signed transaction.
type SignedTx struct {
	Signature []byte
	PublicKey []byte
	Algo      string
	Signed    []byte // the signed transaction (evm), or tx ‖ signature (aitbc_v0)
	TxHash    string // evm only
}

// SignTx signs a transaction of the given type with an account:
//
//   - "aitbc_v0": Ed25519 over the transaction bytes exactly as given (no
//     prefix, no hashing); the signed blob is the bytes followed by the
//     64-byte signature. Ed25519 accounts only.
//   - "evm": the bytes are an unsigned EIP-1559 or EIP-2930 transaction
//     (signed for the chain id it carries) or a legacy one (signed with
//     EIP-155 for chainID), in ethers' unsignedSerialized form (the
//     signing pre-image) or go-ethereum's (v, r, s zero): see
//     DecodeUnsignedEVMTx. The result is the signed raw transaction and
//     its hash. Secp256k1 accounts only.
func (d *Daemon) SignTx(ctx context.Context, accountID string, tx []byte, typ string, chainID *big.Int) (*SignedTx, error) {
	if len(tx) == 0 || len(tx) > 128<<10 {
		return nil, countersign.Errorf(countersign.BadRequest, "tx_bytes_base64 must hold 1 byte to 128 KiB")
	}
	if err := d.allowSign(); err != nil {
		return nil, err
	}
	a, err := d.account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "aitbc_v0":
		if a.Curve != CurveEd25519 {
			return nil, countersign.Errorf(countersign.BadRequest, "aitbc_v0 transactions are signed by ed25519 accounts")
		}
	case "evm":
		if a.Curve != CurveSecp256k1 {
			return nil, countersign.Errorf(countersign.BadRequest, "evm transactions are signed by secp256k1 accounts")
		}
	default:
		return nil, countersign.Errorf(countersign.BadRequest, "type must be aitbc_v0 or evm")
	}
	var unsigned *types.Transaction
	var signer types.Signer
	if typ == "evm" {
		if unsigned, signer, err = DecodeUnsignedEVMTx(tx, chainID); err != nil {
			return nil, err
		}
	}
	out := &SignedTx{PublicKey: a.PublicKey}
	err = d.withKey(a, func(k *accountKey) error {
		if typ == "aitbc_v0" {
			out.Signature, out.Algo = ed25519.Sign(k.ed, tx), "ed25519"
			out.Signed = append(append([]byte(nil), tx...), out.Signature...)
			return nil
		}
		signed, err := types.SignTx(unsigned, signer, k.ec)
		if err != nil {
			return countersign.Errorf(countersign.BadRequest, "cannot sign this transaction: %v", err)
		}
		raw, err := signed.MarshalBinary()
		if err != nil {
			return err
		}
		v, r, s := signed.RawSignatureValues()
		out.Signature = append(append(common.LeftPadBytes(r.Bytes(), 32), common.LeftPadBytes(s.Bytes(), 32)...), byte(v.Uint64()))
		out.Algo, out.Signed, out.TxHash = "secp256k1", raw, signed.Hash().Hex()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, d.signedEvent(ctx, a, "daemon.sign.tx", map[string]string{"type": typ, "tx_hash": out.TxHash, "bytes_hash": hex.EncodeToString(crypto.Keccak256(tx))})
}

// allowSign applies the signing rate limit.
func (d *Daemon) allowSign() error {
	if d.limiter != nil && !d.limiter.Allow() {
		return &countersign.Error{Code: countersign.RateLimit, RetryAfter: 1, Detail: "too many signing requests; slow down"}
	}
	return nil
}

// Export returns an account's key encrypted with exportPassword, so it only
// leaves encrypted: a Web3 v3 keystore (secp256k1; geth, MetaMask and ethers
// read it) or a v1-kdb file of the raw key (ed25519). The wallet must be
// unlocked.
func (d *Daemon) Export(ctx context.Context, accountID, exportPassword string, scryptN int) (format string, blob []byte, err error) {
	if len(exportPassword) < 8 {
		return "", nil, countersign.Errorf(countersign.BadRequest, "export_password must be at least 8 characters")
	}
	a, err := d.account(ctx, accountID)
	if err != nil {
		return "", nil, err
	}
	err = d.withKey(a, func(k *accountKey) (err error) {
		if a.Curve == CurveSecp256k1 {
			blob, err = keystore.ExportV3(k.raw, exportPassword, scryptN, 1)
			format = "web3-v3"
			return err
		}
		meta, _ := json.Marshal(map[string]string{"kind": "key", "curve": a.Curve, "address": a.Address})
		blob, err = keystore.Encrypt(k.raw, []byte(exportPassword), meta, d.cfg.Argon2)
		format = "v1-kdb"
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return format, blob, d.audit(ctx, "daemon.export", a.ID, map[string]string{"format": format})
}
