package awskms

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/ethereum/go-ethereum/common"
	ethtypes "github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Signer signs Ethereum digests and transactions with an AWS KMS
// ECC_SECG_P256K1 key: the private key never leaves KMS. KMS returns an
// ASN.1 DER (r, s) signature that may have a high s and has no recovery
// id; SignHash turns it into the 65-byte r ‖ s ‖ v Ethereum wants: s
// normalised to the lower half of the curve order (EIP-2: a high-s
// signature is refused by nodes), v found by recovering the public key
// the address was derived from.
type Signer struct {
	conn
	pub     *ecdsa.PublicKey
	address common.Address
}

var (
	secp256k1N     = crypto.S256().Params().N
	secp256k1HalfN = new(big.Int).Rsh(secp256k1N, 1)

	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// NewSigner reads cfg's key (GetPublicKey) and derives its address. The
// key must be an ECC_SECG_P256K1 key for SIGN_VERIFY; anything else, or a
// KMS that cannot be reached, is an error naming the key and endpoint.
func NewSigner(ctx context.Context, cfg Config) (*Signer, error) {
	client, where, anonymous, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	k := conn{client: client, where: where, timeout: cfg.Timeout, anonymous: anonymous}
	if k.timeout <= 0 {
		k.timeout = 10 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	out, err := client.GetPublicKey(cctx, &kms.GetPublicKeyInput{KeyId: &cfg.KeyID})
	if err != nil {
		var unsupported *types.UnsupportedOperationException
		if errors.As(err, &unsupported) { // a symmetric key has no public key
			return nil, fmt.Errorf("%w: an Ethereum signer needs an ECC_SECG_P256K1 key for SIGN_VERIFY", k.explain("GetPublicKey "+cfg.KeyID, err))
		}
		return nil, k.explain("GetPublicKey "+cfg.KeyID, err)
	}
	if out.KeySpec != types.KeySpecEccSecgP256k1 || out.KeyUsage != types.KeyUsageTypeSignVerify || out.KeyId == nil {
		return nil, fmt.Errorf("AWS KMS key %s is a %s key for %s: an Ethereum signer needs an ECC_SECG_P256K1 key for SIGN_VERIFY", cfg.KeyID, out.KeySpec, out.KeyUsage)
	}
	pub, err := ParsePublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("AWS KMS key %s: %w", cfg.KeyID, err)
	}
	k.arn = *out.KeyId // GetPublicKey answers with the key ARN
	return &Signer{conn: k, pub: pub, address: crypto.PubkeyToAddress(*pub)}, nil
}

// Address returns the key's Ethereum address.
func (s *Signer) Address() common.Address { return s.address }

// ARN returns the key's ARN.
func (s *Signer) ARN() string { return s.arn }

// SignHash signs a 32-byte digest and returns r ‖ s ‖ v with v in {0, 1}
// (go-ethereum's form; add 27 for EIP-191 and EIP-712 wire signatures).
// The signature always has a low s and recovers to Address: a KMS answer
// that does not is an error, never a signature.
func (s *Signer) SignHash(ctx context.Context, hash []byte) ([]byte, error) {
	if len(hash) != 32 {
		return nil, fmt.Errorf("awskms: SignHash needs a 32-byte digest, not %d bytes", len(hash))
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	out, err := s.client.Sign(ctx, &kms.SignInput{KeyId: &s.arn, Message: hash, MessageType: types.MessageTypeDigest,
		SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	if err != nil {
		return nil, s.explain("Sign with "+s.arn, err)
	}
	r, sv, err := ParseDERSignature(out.Signature)
	if err != nil {
		return nil, fmt.Errorf("AWS KMS at %s: Sign with %s: %w", s.where, s.arn, err)
	}
	return ethereumSignature(hash, r, sv, s.pub)
}

// ethereumSignature normalises s and finds the recovery id of (r, s) for
// pub over hash.
func ethereumSignature(hash []byte, r, s *big.Int, pub *ecdsa.PublicKey) ([]byte, error) {
	if s.Cmp(secp256k1HalfN) > 0 {
		// (r, n−s) is the same signature's other half: valid for the same
		// key, with the other recovery id (found below).
		s = new(big.Int).Sub(secp256k1N, s)
	}
	sig := make([]byte, 65)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:64])
	want := crypto.FromECDSAPub(pub)
	for v := byte(0); v < 2; v++ {
		sig[64] = v
		got, err := crypto.Ecrecover(hash, sig)
		if err == nil && bytes.Equal(got, want) {
			return sig, nil
		}
	}
	return nil, errors.New("awskms: the KMS signature does not recover to the key's public key")
}

// SignTx signs tx for chainID (EIP-1559 and every other type go-ethereum's
// latest signer knows) and returns the signed transaction.
func (s *Signer) SignTx(ctx context.Context, tx *ethtypes.Transaction, chainID *big.Int) (*ethtypes.Transaction, error) {
	signer := ethtypes.LatestSignerForChainID(chainID)
	sig, err := s.SignHash(ctx, signer.Hash(tx).Bytes())
	if err != nil {
		return nil, err
	}
	return tx.WithSignature(signer, sig)
}

type derSignature struct {
	R, S *big.Int
}

// ParseDERSignature parses an ASN.1 DER ECDSA signature, SEQUENCE {
// INTEGER r, INTEGER s }, strictly: canonical DER only (the bytes must be
// exactly what encoding them again gives), no trailing bytes, and
// 0 < r, s < n of secp256k1. A KMS answer is trusted to be a signature
// only once it recovers to the key (SignHash); this keeps odd encodings
// from reaching that step at all.
func ParseDERSignature(der []byte) (r, s *big.Int, err error) {
	if len(der) > 80 { // 2 + 2 × (2 + 33) for 256-bit integers
		return nil, nil, errors.New("the DER signature is longer than a secp256k1 signature can be")
	}
	var sig derSignature
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) != 0 || sig.R == nil || sig.S == nil {
		return nil, nil, errors.New("the signature is not a DER SEQUENCE of two INTEGERs")
	}
	if again, err := asn1.Marshal(sig); err != nil || !bytes.Equal(again, der) {
		return nil, nil, errors.New("the DER signature is not canonically encoded")
	}
	for _, v := range []*big.Int{sig.R, sig.S} {
		if v.Sign() <= 0 || v.Cmp(secp256k1N) >= 0 {
			return nil, nil, errors.New("the signature's r or s is outside 1 … n−1")
		}
	}
	return sig.R, sig.S, nil
}

type subjectPublicKeyInfo struct {
	Algorithm struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.ObjectIdentifier
	}
	PublicKey asn1.BitString
}

// ParsePublicKey parses a DER SubjectPublicKeyInfo of a secp256k1 key (what
// GetPublicKey returns; crypto/x509 does not know the curve).
func ParsePublicKey(der []byte) (*ecdsa.PublicKey, error) {
	var spki subjectPublicKeyInfo
	rest, err := asn1.Unmarshal(der, &spki)
	if err != nil || len(rest) != 0 {
		return nil, errors.New("the public key is not a DER SubjectPublicKeyInfo")
	}
	if !spki.Algorithm.Algorithm.Equal(oidECPublicKey) || !spki.Algorithm.Parameters.Equal(oidSecp256k1) {
		return nil, fmt.Errorf("the public key is not a secp256k1 key (algorithm %v, curve %v)", spki.Algorithm.Algorithm, spki.Algorithm.Parameters)
	}
	if spki.PublicKey.BitLength != 65*8 {
		return nil, errors.New("the public key is not an uncompressed secp256k1 point")
	}
	pub, err := crypto.UnmarshalPubkey(spki.PublicKey.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the public key is not a secp256k1 point: %w", err)
	}
	return pub, nil
}
