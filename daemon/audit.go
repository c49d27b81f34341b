package daemon

import (
	"context"
	"encoding/hex"
	"math/big"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
)

// Audited wraps a keyring so that every signature it makes is recorded
// through rec, once, after it is made (the way go-ethereum's
// signer/core/auditlog.go wraps its signer): an audit entry on the
// daemon's chain ("daemon.sign.message" or "daemon.sign.tx") and a
// "signed" event, in one transaction that concurrent signatures share
// (rec's group commit). What was signed is named by its hash only. A
// refused signature records nothing. Everything else passes through.
//
// A signature whose record fails is returned together with the error:
// the caller must not hand it out.
func Audited(k countersign.HDKeyring, rec countersign.Recorder) countersign.HDKeyring {
	return &audited{HDKeyring: k, rec: rec}
}

type audited struct {
	countersign.HDKeyring
	rec countersign.Recorder
}

func (k *audited) SignMessage(ctx context.Context, a *countersign.DaemonAccount, msg []byte) ([]byte, string, error) {
	sig, algo, err := k.HDKeyring.SignMessage(ctx, a, msg)
	if err != nil {
		return nil, "", err
	}
	return sig, algo, k.signed(ctx, a, "daemon.sign.message", map[string]string{"algo": algo, "message_hash": hex.EncodeToString(crypto.Keccak256(msg))})
}

func (k *audited) SignTx(ctx context.Context, a *countersign.DaemonAccount, typ string, tx []byte, chainID *big.Int) (*countersign.HDSignedTx, error) {
	st, err := k.HDKeyring.SignTx(ctx, a, typ, tx, chainID)
	if err != nil {
		return nil, err
	}
	return st, k.signed(ctx, a, "daemon.sign.tx", map[string]string{"type": typ, "tx_hash": st.TxHash, "bytes_hash": hex.EncodeToString(crypto.Keccak256(tx))})
}

// signed records a signature: the audit entry's details, and the event's
// payload (the account and the same details).
func (k *audited) signed(ctx context.Context, a *countersign.DaemonAccount, action string, details map[string]string) error {
	payload := map[string]string{"account_id": a.ID, "address": a.Address}
	for key, v := range details {
		payload[key] = v
	}
	return k.rec.Record(ctx, countersign.Change{Owner: Owner, Actor: actor, Action: action, Subject: a.ID, Details: details,
		Events: []countersign.ChangeEvent{{Type: "signed", Subject: a.ID, Payload: payload}}}, nil)
}
