package keystore

import (
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
)

// Bounds on Web3 Secret Storage KDF parameters read from a file.
const (
	MaxScryptN     = 1 << 20
	MaxScryptR     = 16
	MaxScryptP     = 16
	MaxPBKDF2Count = 10_000_000
)

// ErrV3 wraps refusals of a v3 keystore.
var ErrV3 = errors.New("keystore: invalid v3 keystore")

// checkV3Params validates a v3 keystore before go-ethereum sees it: every
// field present with the right type and length (go-ethereum's decrypter
// panics on a missing salt), and KDF costs within bounds.
func checkV3Params(raw []byte) error {
	var f struct {
		Version int `json:"version"`
		Crypto  struct {
			KDF          string `json:"kdf"`
			Cipher       string `json:"cipher"`
			CipherText   string `json:"ciphertext"`
			MAC          string `json:"mac"`
			CipherParams struct {
				IV string `json:"iv"`
			} `json:"cipherparams"`
			KDFParams struct {
				N, R, P, C int
				DKLen      int    `json:"dklen"`
				PRF        string `json:"prf"`
				Salt       string `json:"salt"`
			} `json:"kdfparams"`
		} `json:"crypto"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return fmt.Errorf("%w: %v", ErrV3, err)
	}
	c := f.Crypto
	if f.Version != 3 || c.Cipher != "aes-128-ctr" || c.KDFParams.DKLen != 32 {
		return fmt.Errorf("%w: need version 3, aes-128-ctr and dklen 32", ErrV3)
	}
	hexLen := func(s string, min, max int) bool {
		b, err := hex.DecodeString(s)
		return err == nil && len(b) >= min && len(b) <= max
	}
	if !hexLen(c.KDFParams.Salt, 16, 64) || !hexLen(c.CipherParams.IV, 16, 16) || !hexLen(c.CipherText, 16, 32) || !hexLen(c.MAC, 32, 32) {
		return fmt.Errorf("%w: salt, iv, ciphertext and mac must be hex of the right length", ErrV3)
	}
	switch c.KDF {
	case "scrypt":
		if c.KDFParams.N < 2 || c.KDFParams.N > MaxScryptN || c.KDFParams.N&(c.KDFParams.N-1) != 0 || c.KDFParams.R < 1 || c.KDFParams.R > MaxScryptR || c.KDFParams.P < 1 || c.KDFParams.P > MaxScryptP {
			return fmt.Errorf("%w: scrypt parameters out of bounds", ErrV3)
		}
	case "pbkdf2":
		if c.KDFParams.PRF != "hmac-sha256" || c.KDFParams.C < 1 || c.KDFParams.C > MaxPBKDF2Count {
			return fmt.Errorf("%w: pbkdf2 parameters out of bounds", ErrV3)
		}
	default:
		return fmt.Errorf("%w: unknown kdf %q", ErrV3, c.KDF)
	}
	return nil
}

// ImportV3 decrypts a Web3 Secret Storage v3 keystore (scrypt or pbkdf2).
// Keys stored shorter than 32 bytes (older writers dropped leading zero
// bytes) are left-padded: the scalar is the same number. The caller should
// clear the returned key.
func ImportV3(raw []byte, password string) ([]byte, common.Address, error) {
	if len(raw) > 64<<10 {
		return nil, common.Address{}, fmt.Errorf("%w: too large", ErrV3)
	}
	if err := checkV3Params(raw); err != nil {
		return nil, common.Address{}, err
	}
	var enc struct {
		Address string              `json:"address"`
		Crypto  keystore.CryptoJSON `json:"crypto"`
	}
	if err := json.Unmarshal(raw, &enc); err != nil {
		return nil, common.Address{}, fmt.Errorf("%w: %v", ErrV3, err)
	}
	plain, err := keystore.DecryptDataV3(enc.Crypto, password)
	if err != nil {
		if errors.Is(err, keystore.ErrDecrypt) {
			return nil, common.Address{}, ErrDecrypt
		}
		return nil, common.Address{}, fmt.Errorf("%w: %v", ErrV3, err)
	}
	if len(plain) > 32 || len(plain) < 16 {
		clear(plain)
		return nil, common.Address{}, fmt.Errorf("%w: key of %d bytes", ErrV3, len(plain))
	}
	key := make([]byte, 32)
	copy(key[32-len(plain):], plain)
	clear(plain)
	priv, err := crypto.ToECDSA(key)
	if err != nil {
		clear(key)
		return nil, common.Address{}, fmt.Errorf("%w: not a secp256k1 key", ErrV3)
	}
	addr := crypto.PubkeyToAddress(priv.PublicKey)
	if enc.Address != "" && common.HexToAddress(enc.Address) != addr {
		clear(key)
		return nil, common.Address{}, fmt.Errorf("%w: the address field does not match the key", ErrV3)
	}
	return key, addr, nil
}

// ExportV3 writes a v3 keystore of key (scrypt with n, p; geth's standard
// is n = 2^18, p = 1).
func ExportV3(key []byte, password string, scryptN, scryptP int) ([]byte, error) {
	priv, err := crypto.ToECDSA(key)
	if err != nil {
		return nil, err
	}
	k := &keystore.Key{Id: uuid.New(), Address: crypto.PubkeyToAddress(priv.PublicKey), PrivateKey: priv}
	defer ZeroKey(priv)
	return keystore.EncryptKey(k, password, scryptN, scryptP)
}

// ZeroKey overwrites a secp256k1 private key's scalar once it is no longer
// needed. go-ethereum's keys exist only as D, whose words big.Int lets us
// reach through Bits; the curve is go-ethereum's secp256k1, not a
// standard-library one, so no precomputed state depends on D.
func ZeroKey(k *ecdsa.PrivateKey) {
	//lint:ignore SA1019 go-ethereum keys only exist as D; zeroing it is the point
	if k == nil || k.D == nil {
		return
	}
	//lint:ignore SA1019 see above
	clear(k.D.Bits())
}
