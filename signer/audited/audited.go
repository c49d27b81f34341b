// Package audited records every signature of a derived-key signer in the
// audit log: a decorator over countersign.DerivedSigner (the way
// go-ethereum's signer/core/auditlog.go wraps its signer API), so
// whichever backend signs (in-process, a separate process, later a TEE),
// the /dev signatures are audited in one place, by the same state-change
// path as every other change.
package audited

import (
	"context"
	"encoding/hex"

	"github.com/ethereum/go-ethereum/accounts"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
)

// Actor is who asks the derived signer for a signature: its routes take
// only the signer service credential (SIGNER_TOKEN), never a user.
const Actor = "service"

// The audit actions of the two kinds of signature.
const (
	ActionMessage   = "derived.sign.message"    // EIP-191 personal message
	ActionTypedData = "derived.sign.typed_data" // EIP-712 typed data
	ActionDigest    = "derived.sign.digest"     // a digest (a countersigned wallet's transaction)
)

// Owner is the audit chain a signature of omni's derived key goes on: the
// omni account's own chain, where its sessions, links and minted tokens
// are (core/omni.go), so one chain tells everything done in its name.
func Owner(omni string) string { return "omni:" + omni }

// Signer is a DerivedSigner whose every signature is recorded before it is
// returned. Fail closed: a signature whose audit entry cannot be written is
// withheld (the caller gets the error, never the signature); a refused or
// failed signature records nothing, because nothing was signed.
type Signer struct {
	inner countersign.DerivedSigner
	rec   countersign.Recorder
}

var _ countersign.DerivedSigner = (*Signer)(nil)

// New wraps inner so that rec records each of its signatures.
func New(inner countersign.DerivedSigner, rec countersign.Recorder) *Signer {
	return &Signer{inner: inner, rec: rec}
}

// DeriveAddress is the inner signer's: deriving an address signs nothing
// and changes nothing, so it is not audited.
func (s *Signer) DeriveAddress(ctx context.Context, omni string) (string, error) {
	return s.inner.DeriveAddress(ctx, omni)
}

// SignMessage signs through the inner signer and records the EIP-191 hash
// that was signed.
func (s *Signer) SignMessage(ctx context.Context, omni string, message []byte) ([]byte, error) {
	sig, err := s.inner.SignMessage(ctx, omni, message)
	if err != nil {
		return nil, err
	}
	return s.recorded(ctx, omni, ActionMessage, "eip191", accounts.TextHash(message), sig)
}

// SignDigest signs through the inner signer, when it can sign digests,
// and records the digest that was signed.
func (s *Signer) SignDigest(ctx context.Context, omni string, digest []byte) ([]byte, error) {
	d, ok := s.inner.(countersign.DerivedDigestSigner)
	if !ok {
		return nil, countersign.Errorf(countersign.Unavailable, "this derived-key signer cannot sign digests")
	}
	sig, err := d.SignDigest(ctx, omni, digest)
	if err != nil {
		return nil, err
	}
	return s.recorded(ctx, omni, ActionDigest, "digest", digest, sig)
}

// SignTypedData signs through the inner signer and records the EIP-712
// hash that was signed.
func (s *Signer) SignTypedData(ctx context.Context, omni string, typedData []byte) ([]byte, error) {
	sig, err := s.inner.SignTypedData(ctx, omni, typedData)
	if err != nil {
		return nil, err
	}
	// The inner signer accepted these bytes, so they parse; the derived
	// signer is chain-free (AnyChain), as its route documents.
	_, hash, err := ethsig.ParseTypedData(typedData, ethsig.AnyChain)
	if err != nil {
		return nil, err
	}
	return s.recorded(ctx, omni, ActionTypedData, "eip712", hash, sig)
}

// recorded writes the signature's audit entry and only then releases sig.
// The details name the signed hash only: never the message (it may carry
// anything the caller put in it) and nothing of the key.
func (s *Signer) recorded(ctx context.Context, omni, action, kind string, hash, sig []byte) ([]byte, error) {
	err := s.rec.Record(ctx, countersign.Change{Owner: Owner(omni), Actor: Actor, Action: action, Subject: omni,
		Details: map[string]string{"kind": kind, "message_hash": hex.EncodeToString(hash)}}, nil)
	if err != nil {
		clear(sig)
		return nil, err
	}
	return sig, nil
}
