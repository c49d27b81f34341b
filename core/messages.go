package core

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/countersign/countersign"
)

// MaxMessage bounds a message to sign.
const MaxMessage = 64 << 10

// ParsePersonalMessage reads a personal_sign message: 0x-hex bytes, or
// otherwise the UTF-8 text itself.
func ParsePersonalMessage(s string) ([]byte, error) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		b, err := hexutil.Decode(s)
		if err == nil {
			return b, nil
		}
		if s == "0x" {
			return []byte{}, nil
		}
	}
	if !utf8.ValidString(s) {
		return nil, countersign.Errorf(countersign.BadRequest, "message must be 0x-hex or UTF-8 text")
	}
	return []byte(s), nil
}

// AnyChain is ParseTypedData's chainID for callers documented as chain-free.
const AnyChain = -1

// ParseTypedData parses and hashes EIP-712 typed data for chainID.
//
// chainID >= 0 (the countersigned flow: agent requests and /eth
// eth_signTypedData_v4): domain.chainId is required and must equal chainID,
// compared as integers of any size — comparing truncated int64s let
// 2^64+1337 pass as 1337 while the wallet signs for another chain. Typed
// data without a chain id is replayable on every chain, so it is refused
// here rather than shown to a human who cannot tell.
//
// chainID < 0 (callers that are documented as chain-free: the derived-key
// signer's /dev/sign-typed-data): any domain.chainId, or none, is accepted.
// Pass AnyChain to say so.
func ParseTypedData(raw []byte, chainID int64) (apitypes.TypedData, []byte, error) {
	var td apitypes.TypedData
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&td); err != nil {
		return td, nil, countersign.Errorf(countersign.BadRequest, "message is not EIP-712 typed data: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return td, nil, countersign.Errorf(countersign.BadRequest, "typed data must be one JSON object with nothing after it")
	}
	if td.PrimaryType == "" || len(td.Types) == 0 {
		return td, nil, countersign.Errorf(countersign.BadRequest, "typed data needs types and primaryType")
	}
	if chainID >= 0 {
		if td.Domain.ChainId == nil {
			return td, nil, countersign.Errorf(countersign.BadRequest, "typed data needs domain.chainId (this wallet is on chain %d): without it the signature is valid on every chain", chainID)
		}
		if got := (*big.Int)(td.Domain.ChainId); got.Cmp(big.NewInt(chainID)) != 0 {
			return td, nil, countersign.Errorf(countersign.BadRequest, "typed data is for chain %s, this wallet is on chain %d", got, chainID)
		}
	}
	hash, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		return td, nil, countersign.Errorf(countersign.BadRequest, "typed data does not hash: %v", err)
	}
	return td, hash, nil
}

// buildMessage validates a message request and fills what the approval
// binds to: the message itself (hex bytes or compact JSON).
func (s *Service) buildMessage(t *countersign.Transaction, raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return countersign.Errorf(countersign.BadRequest, "message is required")
	}
	if len(raw) > MaxMessage {
		return countersign.Errorf(countersign.BadRequest, "message is larger than %d KiB", MaxMessage>>10)
	}
	t.Amount, t.TxValue = "0", "0"
	switch t.Type {
	case countersign.TxPersonalSign:
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return countersign.Errorf(countersign.BadRequest, "message must be a string (0x-hex or text) for personal_sign")
		}
		b, err := ParsePersonalMessage(str)
		if err != nil {
			return err
		}
		t.Message = "0x" + hex.EncodeToString(b)
	case countersign.TxTypedData:
		// eth_signTypedData_v4 sends the JSON as a string; accept both.
		var str string
		if json.Unmarshal(raw, &str) == nil {
			raw = json.RawMessage(str)
		}
		td, _, err := ParseTypedData(raw, t.ChainID)
		if err != nil {
			return err
		}
		var c bytes.Buffer
		if err := json.Compact(&c, raw); err != nil {
			return countersign.Errorf(countersign.BadRequest, "message is not valid JSON")
		}
		t.Message = c.String()
		if td.Domain.VerifyingContract != "" {
			if a, err := ParseAddress("domain.verifyingContract", td.Domain.VerifyingContract); err == nil {
				t.To = a.Hex()
			}
		}
	}
	return nil
}

// messageHash is what gets signed for a message request.
func messageHash(t *countersign.Transaction) ([]byte, error) {
	switch t.Type {
	case countersign.TxPersonalSign:
		b, err := hexutil.Decode(t.Message)
		if err != nil && t.Message != "0x" {
			return nil, err
		}
		return accounts.TextHash(b), nil
	case countersign.TxTypedData:
		_, h, err := ParseTypedData([]byte(t.Message), t.ChainID)
		return h, err
	}
	return nil, countersign.Errorf(countersign.Internal, "%s is not a message request", t.Type)
}

// signMessage signs an approved message request, once.
func (s *Service) signMessage(ctx context.Context, actor string, w *countersign.Wallet, t *countersign.Transaction) (*countersign.Transaction, error) {
	hash, err := messageHash(t)
	if err != nil {
		return nil, err
	}
	sig, err := s.Signer.SignHash(ctx, w, hash)
	if err != nil {
		return nil, err
	}
	err = s.inTx(ctx, func(ctx context.Context) error {
		cur, err := s.Store.Transaction(ctx, t.ID)
		if err != nil {
			return err
		}
		if len(cur.Signature) > 0 {
			t = cur
			return nil
		}
		if cur.Status != countersign.StatusAuthorized {
			return notAuthorized(cur)
		}
		cur.Signature = sig
		t = cur
		return s.setStatus(ctx, cur, countersign.StatusSigned, actor, "transaction.sign", map[string]string{"hash": hex.EncodeToString(hash)})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}
