package countersign

import "context"

// Optional abilities of a Signer (the port in domain.go): a signer that
// can take an existing key for a new wallet, and one that can hand a
// wallet's key out encrypted. Signers whose keys never leave them (a KMS,
// a remote signer) implement neither, and the service answers that the
// wallet's signer cannot do it.

// KeystoreImporter takes a key from a Web3 Secret Storage v3 keystore
// file (the format geth, MetaMask and ethers write) for a new wallet.
type KeystoreImporter interface {
	// ImportKeystore decrypts keystoreJSON with passphrase and keeps its
	// key for walletID as NewKey keeps a generated one. check is called
	// with the key's address before anything is written; its error stops
	// the import (the address is known only once the file is decrypted).
	ImportKeystore(ctx context.Context, walletID string, keystoreJSON []byte, passphrase string, check func(address string) error) (address, format string, sealed []byte, err error)
}

// KeystoreExporter writes a wallet's key as a v3 keystore file encrypted
// under passphrase (scrypt with n and p; geth's standard is 2^18 and 1).
type KeystoreExporter interface {
	ExportKeystore(ctx context.Context, w *Wallet, passphrase string, scryptN, scryptP int) ([]byte, error)
}
