package core

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
)

// buildMessage validates a message request and fills what the approval
// binds to: the message itself (hex bytes or compact JSON).
func (s *Service) buildMessage(t *countersign.Transaction, raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return countersign.Errorf(countersign.BadRequest, "message is required")
	}
	if len(raw) > ethsig.MaxMessage {
		return countersign.Errorf(countersign.BadRequest, "message is larger than %d KiB", ethsig.MaxMessage>>10)
	}
	t.Amount, t.TxValue = "0", "0"
	switch t.Type {
	case countersign.TxPersonalSign:
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return countersign.Errorf(countersign.BadRequest, "message must be a string (0x-hex or text) for personal_sign")
		}
		b, err := ethsig.ParsePersonalMessage(str)
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
		td, _, err := ethsig.ParseTypedData(raw, t.ChainID)
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
		_, h, err := ethsig.ParseTypedData([]byte(t.Message), t.ChainID)
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
	sig, err := s.signer.SignHash(ctx, w, hash)
	if err != nil {
		return nil, err
	}
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
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
		return s.setStatus(ctx, cs, cur, countersign.StatusSigned, actor, "transaction.sign", map[string]string{"hash": hex.EncodeToString(hash)})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}
