package countersign

import (
	"context"
	"math/big"
	"time"
)

// The local wallet daemon's keys (package daemon) sit behind HDKeyring, so
// that the service deciding who may sign, for how long and how often never
// holds a private key, and the adapter holding the keys (signer/hd)
// decides nothing.

// Curves of daemon accounts.
const (
	CurveEd25519   = "ed25519"
	CurveSecp256k1 = "secp256k1"
)

// Kinds of daemon wallet.
const (
	HDWalletSeed = "hd"  // the secret is a BIP-39 seed: accounts are derived
	HDWalletKey  = "key" // the secret is one private key: one account
)

// HDWallet is a daemon wallet's readable metadata (never a secret): what
// its sealed file says about it before it is unlocked.
type HDWallet struct {
	ID        string
	Name      string
	Kind      string // HDWalletSeed | HDWalletKey
	Curve     string // a single-key wallet's curve; "" for a seed
	CreatedAt time.Time
	Unlocked  bool // as listed: unlocked now (ignored when creating)
}

// HDPublicKey is what an account's key shows: enough to make the account's
// row, nothing that signs.
type HDPublicKey struct {
	Curve      string
	Path       string // canonical derivation path; "" for a single key
	PublicKey  []byte // 32-byte ed25519, or 33-byte compressed secp256k1
	Address    string // ait1… (bech32 of the public key's hash)
	EVMAddress string // EIP-55; secp256k1 only
}

// HDSignedTx is a transaction signed by HDKeyring.SignTx.
type HDSignedTx struct {
	Signature []byte // ed25519: 64 bytes; evm: r ‖ s ‖ v as the transaction carries it
	Algo      string // "ed25519" | "secp256k1"
	Signed    []byte // the signed transaction (evm), or tx ‖ signature (aitbc_v0)
	TxHash    string // evm only
}

// HDKeyring holds the local wallet daemon's key material: BIP-39 seeds and
// single keys sealed into wallet files in a KeyStore, unlocked into memory
// until a deadline, child keys derived from them (BIP-32/BIP-44 secp256k1,
// SLIP-10 ed25519), and the signatures made with them. Unlocked secrets
// never leave it and are zeroed on Lock, at the deadline and on
// replacement; keys leave only encrypted (Export). Adapter: signer/hd.
//
// Error contract (each a *Error): BadRequest for input that cannot be used
// (a mnemonic, key, keystore file, curve, path or transaction that is
// malformed or does not fit the account), BadPassword for a wrong password,
// NotFound for a wallet that is not a daemon wallet of this keyring,
// WalletLocked when the wallet is not unlocked (or its deadline has
// passed), Internal for an unreadable file. No error carries key material,
// a password or a mnemonic.
type HDKeyring interface {
	// CreateMnemonic seals a new seed wallet from a fresh mnemonic of words
	// words (12 or 24) and returns the mnemonic, which exists nowhere else.
	CreateMnemonic(ctx context.Context, w *HDWallet, password string, words int) (mnemonic string, err error)
	// ImportMnemonic seals a seed wallet from a BIP-39 mnemonic and passphrase.
	ImportMnemonic(ctx context.Context, w *HDWallet, password, mnemonic, passphrase string) error
	// ImportKey seals a single-key wallet of w.Curve from a hex private key
	// (32 bytes, optional 0x) and returns its account's public key.
	ImportKey(ctx context.Context, w *HDWallet, password, keyHex string) (*HDPublicKey, error)
	// ImportKeystore seals a single-key secp256k1 wallet from an Ethereum
	// v3 keystore file (scrypt or pbkdf2) and its password; BadPassword
	// when that password does not open it.
	ImportKeystore(ctx context.Context, w *HDWallet, password string, keystoreJSON []byte, keystorePassword string) (*HDPublicKey, error)

	// Unlock opens a wallet until the deadline and returns its metadata.
	// Unlocking an unlocked wallet replaces (and zeroes) the old secret.
	Unlock(ctx context.Context, walletID, password string, until time.Time) (*HDWallet, error)
	// Lock zeroes one wallet's secret and derived keys, or every wallet's
	// when walletID is "", and returns how many were unlocked.
	Lock(walletID string) int
	// Sweep zeroes every wallet whose deadline has passed.
	Sweep()
	// Wallets lists the daemon wallets of the KeyStore.
	Wallets(ctx context.Context) ([]*HDWallet, error)

	// Derive derives the public key at path ("" for the curve's default)
	// of an unlocked seed wallet.
	Derive(ctx context.Context, walletID, curve, path string) (*HDPublicKey, error)
	// SignMessage signs msg with account a's key: ed25519 over the bytes
	// ("ed25519"), secp256k1 over the EIP-191 personal-message hash, 65
	// bytes with v = 27/28 ("secp256k1-eip191").
	SignMessage(ctx context.Context, a *DaemonAccount, msg []byte) (sig []byte, algo string, err error)
	// SignTx signs a transaction with account a's key: "aitbc_v0" is
	// ed25519 over the bytes as given; "evm" is an unsigned legacy,
	// EIP-2930 or EIP-1559 transaction (ethsig.DecodeUnsignedEVMTx: legacy
	// ones are signed with EIP-155 for chainID). The caller has checked
	// that typ fits a's curve.
	SignTx(ctx context.Context, a *DaemonAccount, typ string, tx []byte, chainID *big.Int) (*HDSignedTx, error)
	// Export returns a's key encrypted under exportPassword: a Web3 v3
	// keystore (secp256k1, scrypt N = scryptN) or a v1-kdb file (ed25519).
	Export(ctx context.Context, a *DaemonAccount, exportPassword string, scryptN int) (format string, blob []byte, err error)

	// ValidAddress reports whether s is an account address of this
	// keyring's scheme (ait1…).
	ValidAddress(s string) bool
	// Parameters are the scheme's public parameters, for /about: the key
	// files' KDF cost, the default paths, the coin type.
	Parameters() map[string]any
}
