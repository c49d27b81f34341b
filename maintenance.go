package countersign

import "context"

// Optional store capabilities for the maintenance commands (countersign
// backup, restore, rotate-master-key). They are not part of Store: a store
// that lacks one still serves, and the command that needs it says so.

// Backupper is a store that can write a consistent copy of itself to a new
// file while it serves.
type Backupper interface {
	// BackupTo writes a snapshot of the whole database to path, which must
	// not exist. The snapshot is one transaction's view: consistent, with
	// every committed row and none half-written.
	BackupTo(ctx context.Context, path string) error
}

// Sealed value kinds: every column that holds a Sealer.Seal product.
const (
	SealedWallet     = "wallet"      // wallets.key_sealed (RecordID by key format)
	SealedMFA        = "mfa"         // users.mfa_sealed: the TOTP secret
	SealedMFAPending = "mfa-pending" // users.mfa_pending: a secret being enrolled
	SealedSigningKey = "signing-key" // signing_keys.sealed: session and audit keys
	SealedWebhook    = "webhook"     // webhooks.secret_sealed
)

// SealedKinds lists every kind, in the order a rotation walks them.
var SealedKinds = []string{SealedWallet, SealedMFA, SealedMFAPending, SealedSigningKey, SealedWebhook}

// SealedValue is one sealed value as stored.
type SealedValue struct {
	Kind   string // one of SealedKinds
	ID     string // the row's key: wallet, user, signing key or webhook id
	Format string // wallets only: the key format (WalletKeyKDB or WalletKeySealed)
	Sealed []byte
}

// RecordID is the associated data the value was sealed for: the same
// strings the sealing code uses (signer/local, core/mfa.go,
// core/service.go, core/webhooks.go). A value rewrapped for another record
// id would not open afterwards, so the rotation checks each value opens
// under this id before it writes anything.
func (v *SealedValue) RecordID() string {
	switch v.Kind {
	case SealedWallet:
		if v.Format == WalletKeySealed {
			return "wallet:" + v.ID
		}
		return "wallet-kdb-secret:" + v.ID
	case SealedMFA:
		return "mfa:" + v.ID
	case SealedMFAPending:
		return "mfa-pending:" + v.ID
	case SealedSigningKey:
		return "signing-key:" + v.ID
	case SealedWebhook:
		return "webhook:" + v.ID
	}
	return ""
}

// Resealer is a store whose sealed values can be listed and replaced, for
// a master key rotation.
type Resealer interface {
	// SealedValues returns up to limit values of kind with ID > afterID,
	// in ID order (empty values, such as a user without MFA, are left out).
	SealedValues(ctx context.Context, kind, afterID string, limit int) ([]*SealedValue, error)
	// ReplaceSealed stores sealed in place of v.Sealed if the row still
	// holds exactly v.Sealed, and reports whether it did: a value the
	// server changed meanwhile (a new TOTP enrolment) is left alone.
	ReplaceSealed(ctx context.Context, v *SealedValue, sealed []byte) (bool, error)
}
