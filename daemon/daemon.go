// Package daemon is the local wallet daemon's service: the operator's HD
// and single-key wallets (create, import, unlock for a while, derive,
// sign, export, tags) and the mock ledger's transfers, with every key held
// behind the countersign.HDKeyring port and every state change recorded
// through countersign.Recorder.
package daemon

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
)

// The daemon acts as the operator: agents never reach it (they go through
// the countersigned flow). It decides policy — who is asking is settled by
// the route, then how long an unlock lasts, which account signs, how often
// (ratelimit.go), and what the audit log says (audit.go) — and leaves the
// cryptography to the keyring.

// Owner owns the daemon's audit chain and event outbox.
const Owner = "daemon"

// actor is who the daemon's audit entries say acted.
const actor = "operator"

// Curves.
const (
	CurveEd25519   = countersign.CurveEd25519
	CurveSecp256k1 = countersign.CurveSecp256k1
)

// Store is what the daemon reads and writes in the database: its
// accounts. (countersign.Store implements it.)
type Store interface {
	CreateDaemonAccount(ctx context.Context, a *countersign.DaemonAccount) error
	DaemonAccount(ctx context.Context, id string) (*countersign.DaemonAccount, error)
	DaemonAccounts(ctx context.Context, walletID string) ([]*countersign.DaemonAccount, error)
	DaemonAccountByAddress(ctx context.Context, address string) (*countersign.DaemonAccount, error)
	SetDaemonAccountTags(ctx context.Context, id string, tags map[string]string) error
}

// Config configures the daemon.
type Config struct {
	UnlockTTL time.Duration // default 120 s (UNLOCK_TTL_SEC)
	SignRate  float64       // signatures per second, process-wide (default 100; SIGN_RATE)
	SignBurst int           // (default 200; SIGN_BURST)
	// Ledger holds balances and transfers (WALLET_CHAIN; ledger/mock).
	Ledger countersign.Ledger
}

// Service is the wallet daemon's service.
type Service struct {
	store Store
	rec   countersign.Recorder
	clock countersign.Clock
	cfg   Config

	// keys is the keyring itself, for what is not a signature (wallet
	// files, unlock, derivation, export); signer is the same keyring
	// behind the rate-limit and audit decorators, for every signature.
	keys   countersign.HDKeyring
	signer countersign.HDKeyring

	accounts sync.Map  // account id → *countersign.DaemonAccount (rows never change but for tags)
	kdf      kdfMemory // returns the key files' Argon2id memory to the OS when idle
}

// New returns the daemon over a keyring. rec records every state change
// (core.Service: one transaction per change, signatures group-committed).
func New(st Store, keys countersign.HDKeyring, rec countersign.Recorder, clock countersign.Clock, cfg Config) *Service {
	if cfg.UnlockTTL == 0 {
		cfg.UnlockTTL = 120 * time.Second
	}
	if cfg.SignRate == 0 {
		cfg.SignRate = 100
	}
	if cfg.SignBurst == 0 {
		cfg.SignBurst = 200
	}
	if clock == nil {
		clock = countersign.SystemClock{}
	}
	return &Service{store: st, rec: rec, clock: clock, cfg: cfg, keys: keys,
		signer: RateLimited(Audited(keys, rec), cfg.SignRate, cfg.SignBurst)}
}

// Close is kept for the wiring's shutdown order; the daemon holds nothing
// to stop (the Recorder's group commit belongs to core and drains there).
func (d *Service) Close() {}

// Config returns the daemon's configuration.
func (d *Service) Config() Config { return d.cfg }

// Parameters are what /about shows of the daemon: the keyring's public
// parameters, the unlock TTL and the ledger.
func (d *Service) Parameters() map[string]any {
	p := map[string]any{}
	for k, v := range d.keys.Parameters() {
		p[k] = v
	}
	ledger := "none"
	if d.cfg.Ledger != nil {
		ledger = d.cfg.Ledger.Name()
	}
	p["unlock_ttl_seconds"], p["ledger"] = d.cfg.UnlockTTL.Seconds(), ledger
	return p
}

// record writes one of the daemon's changes: apply (may be nil), the audit
// entry and its events, together.
func (d *Service) record(ctx context.Context, action, subject string, details any, apply func(ctx context.Context) error, events ...countersign.ChangeEvent) error {
	return d.rec.Record(ctx, countersign.Change{Owner: Owner, Actor: actor, Action: action, Subject: subject, Details: details, Events: events}, apply)
}

func checkPassword(pw string) error {
	if pw == "" || len(pw) > 1024 {
		return countersign.Errorf(countersign.BadRequest, "password is required")
	}
	return nil
}

// newWallet checks a new wallet's password and name and gives it an id.
func (d *Service) newWallet(name, password string) (*countersign.HDWallet, error) {
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, countersign.Errorf(countersign.BadRequest, "name is required (at most %d characters)", countersign.MaxName)
	}
	if err := countersign.CheckText("name", name, countersign.MaxName, false); err != nil {
		return nil, err
	}
	return &countersign.HDWallet{ID: uuid.NewString(), Name: name, CreatedAt: d.clock.Now().UTC()}, nil
}

func (d *Service) auditCreated(ctx context.Context, w *countersign.HDWallet) error {
	return d.record(ctx, "daemon.wallet.create", w.ID, map[string]string{"name": w.Name, "kind": w.Kind}, nil)
}

// CreateWallet makes an HD wallet from a new mnemonic of 12 or 24 words and
// returns the mnemonic (to show once, if asked).
func (d *Service) CreateWallet(ctx context.Context, name, password string, words int) (id, mnemonic string, err error) {
	if words == 0 {
		words = 24
	}
	if words != 12 && words != 24 {
		return "", "", countersign.Errorf(countersign.BadRequest, "mnemonic_len must be 12 or 24")
	}
	w, err := d.newWallet(name, password)
	if err != nil {
		return "", "", err
	}
	defer d.kdf.begin()()
	if mnemonic, err = d.keys.CreateMnemonic(ctx, w, password, words); err != nil {
		return "", "", err
	}
	return w.ID, mnemonic, d.auditCreated(ctx, w)
}

// ImportMnemonic makes an HD wallet from a BIP-39 mnemonic and passphrase.
func (d *Service) ImportMnemonic(ctx context.Context, name, password, mnemonic, passphrase string) (string, error) {
	w, err := d.newWallet(name, password)
	if err != nil {
		return "", err
	}
	defer d.kdf.begin()()
	if err := d.keys.ImportMnemonic(ctx, w, password, mnemonic, passphrase); err != nil {
		return "", err
	}
	return w.ID, d.auditCreated(ctx, w)
}

// ImportKey makes a single-key wallet and its one account.
func (d *Service) ImportKey(ctx context.Context, name, password, curve, keyHex string) (string, *countersign.DaemonAccount, error) {
	if curve != CurveEd25519 && curve != CurveSecp256k1 {
		return "", nil, countersign.Errorf(countersign.BadRequest, "curve must be ed25519 or secp256k1")
	}
	w, err := d.newWallet(name, password)
	if err != nil {
		return "", nil, err
	}
	w.Curve = curve
	defer d.kdf.begin()()
	pub, err := d.keys.ImportKey(ctx, w, password, keyHex)
	if err != nil {
		return "", nil, err
	}
	return d.importedAccount(ctx, w, pub)
}

// ImportKeystore imports an Ethereum keystore (Web3 Secret Storage v3,
// scrypt or pbkdf2, as geth, MetaMask and ethers write them) as a
// single-key secp256k1 wallet, re-encrypted under password.
func (d *Service) ImportKeystore(ctx context.Context, name, password string, keystoreJSON []byte, keystorePassword string) (string, *countersign.DaemonAccount, error) {
	w, err := d.newWallet(name, password)
	if err != nil {
		return "", nil, err
	}
	defer d.kdf.begin()()
	pub, err := d.keys.ImportKeystore(ctx, w, password, keystoreJSON, keystorePassword)
	if countersign.ErrorCode(err) == countersign.BadPassword {
		_ = d.record(ctx, "daemon.import.failure", "keystore", map[string]string{}, nil)
	}
	if err != nil {
		return "", nil, err
	}
	return d.importedAccount(ctx, w, pub)
}

// importedAccount audits a new single-key wallet and adds its account.
func (d *Service) importedAccount(ctx context.Context, w *countersign.HDWallet, pub *countersign.HDPublicKey) (string, *countersign.DaemonAccount, error) {
	if err := d.auditCreated(ctx, w); err != nil {
		return "", nil, err
	}
	a, err := d.addAccount(ctx, w.ID, pub, nil)
	return w.ID, a, err
}

// addAccount stores a new account's row and audits it, together.
func (d *Service) addAccount(ctx context.Context, walletID string, pub *countersign.HDPublicKey, tags map[string]string) (*countersign.DaemonAccount, error) {
	if tags == nil {
		tags = map[string]string{}
	}
	a := &countersign.DaemonAccount{ID: uuid.NewString(), WalletID: walletID, Curve: pub.Curve, Path: pub.Path, Address: pub.Address,
		PublicKey: pub.PublicKey, EVMAddress: pub.EVMAddress, Tags: tags, CreatedAt: d.clock.Now().UTC()}
	err := d.record(ctx, "daemon.account.derive", a.ID, map[string]string{"wallet_id": walletID, "curve": a.Curve, "path": a.Path, "address": a.Address},
		func(ctx context.Context) error { return d.store.CreateDaemonAccount(ctx, a) })
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Unlock decrypts a wallet into memory until the TTL passes.
func (d *Service) Unlock(ctx context.Context, walletID, password string) (time.Time, error) {
	exp := d.clock.Now().Add(d.cfg.UnlockTTL)
	defer d.kdf.begin()()
	if _, err := d.keys.Unlock(ctx, walletID, password, exp); err != nil {
		if countersign.ErrorCode(err) == countersign.BadPassword {
			_ = d.record(ctx, "daemon.unlock.failure", walletID, map[string]string{}, nil)
		}
		return time.Time{}, err
	}
	return exp, d.record(ctx, "daemon.unlock", walletID, map[string]string{"until": exp.UTC().Format(time.RFC3339)}, nil)
}

// Lock zeroes and forgets one wallet's secret, or every wallet's when
// walletID is empty. It returns how many were locked.
func (d *Service) Lock(ctx context.Context, walletID string) (int, error) {
	n := d.keys.Lock(walletID)
	return n, d.record(ctx, "daemon.lock", walletID, map[string]int{"locked": n}, nil)
}

// Sweep zeroes every wallet whose TTL has passed.
func (d *Service) Sweep() { d.keys.Sweep() }

// Derive derives an account of an unlocked HD wallet.
func (d *Service) Derive(ctx context.Context, walletID, curve, path string, tags map[string]string) (*countersign.DaemonAccount, error) {
	if err := CheckTags(tags); err != nil {
		return nil, err
	}
	if curve == "" {
		curve = CurveEd25519
	}
	pub, err := d.keys.Derive(ctx, walletID, curve, path)
	if err != nil {
		return nil, err
	}
	return d.addAccount(ctx, walletID, pub, tags)
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
func (d *Service) Wallets(ctx context.Context) ([]WalletInfo, error) {
	list, err := d.keys.Wallets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]WalletInfo, 0, len(list))
	for _, w := range list {
		curves := []string{CurveEd25519, CurveSecp256k1}
		if w.Curve != "" {
			curves = []string{w.Curve}
		}
		out = append(out, WalletInfo{WalletID: w.ID, Name: w.Name, Kind: w.Kind, Curve: w.Curve, Curves: curves, CreatedAt: w.CreatedAt, Unlocked: w.Unlocked})
	}
	return out, nil
}

// Accounts lists a wallet's accounts.
// With tag "name" only accounts carrying that tag are listed; with
// "name=value", only those where it has that value.
func (d *Service) Accounts(ctx context.Context, walletID, tag string) ([]*countersign.DaemonAccount, error) {
	list, err := d.store.DaemonAccounts(ctx, walletID)
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
func (d *Service) Account(ctx context.Context, id string) (*countersign.DaemonAccount, error) {
	return d.account(ctx, id)
}

// account returns an account's row, from memory after the first read.
func (d *Service) account(ctx context.Context, id string) (*countersign.DaemonAccount, error) {
	if a, ok := d.accounts.Load(id); ok {
		return a.(*countersign.DaemonAccount), nil
	}
	a, err := d.store.DaemonAccount(ctx, id)
	if err != nil {
		return nil, err
	}
	d.accounts.Store(id, a)
	return a, nil
}
