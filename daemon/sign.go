package daemon

import (
	"context"
	"math/big"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
)

// SignedMessage is a signature with what verifies it.
type SignedMessage struct {
	Signature []byte
	PublicKey []byte
	Algo      string // "ed25519" or "secp256k1-eip191"
}

// SignMessage signs with an account: ed25519 signs the bytes; secp256k1
// signs EIP-191 personal_sign (65 bytes, v = 27/28).
func (d *Service) SignMessage(ctx context.Context, accountID string, msg []byte) (*SignedMessage, error) {
	if len(msg) > ethsig.MaxMessage {
		return nil, countersign.Errorf(countersign.BadRequest, "message larger than %d KiB", ethsig.MaxMessage>>10)
	}
	a, err := d.account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	sig, algo, err := d.signer.SignMessage(ctx, a, msg)
	if sig == nil {
		return nil, err
	}
	// a signature whose record failed is returned with the error, as
	// before the move: the caller answers with the error
	return &SignedMessage{Signature: sig, PublicKey: a.PublicKey, Algo: algo}, err
}

// SignedTx is a signed transaction.
type SignedTx struct {
	Signature []byte
	PublicKey []byte
	Algo      string
	Signed    []byte // the signed transaction (evm), or tx ‖ signature (aitbc_v0)
	TxHash    string // evm only
}

// SignTx signs a transaction of the given type with an account:
//
//   - "aitbc_v0": Ed25519 over the transaction bytes exactly as given (no
//     prefix, no hashing); the signed blob is the bytes followed by the
//     64-byte signature. Ed25519 accounts only.
//   - "evm": the bytes are an unsigned EIP-1559 or EIP-2930 transaction
//     (signed for the chain id it carries) or a legacy one (signed with
//     EIP-155 for chainID), in ethers' unsignedSerialized form (the
//     signing pre-image) or go-ethereum's (v, r, s zero): see
//     ethsig.DecodeUnsignedEVMTx. The result is the signed raw transaction
//     and its hash. Secp256k1 accounts only.
func (d *Service) SignTx(ctx context.Context, accountID string, tx []byte, typ string, chainID *big.Int) (*SignedTx, error) {
	if len(tx) == 0 || len(tx) > 128<<10 {
		return nil, countersign.Errorf(countersign.BadRequest, "tx_bytes_base64 must hold 1 byte to 128 KiB")
	}
	a, err := d.account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "aitbc_v0":
		if a.Curve != CurveEd25519 {
			return nil, countersign.Errorf(countersign.BadRequest, "aitbc_v0 transactions are signed by ed25519 accounts")
		}
	case "evm":
		if a.Curve != CurveSecp256k1 {
			return nil, countersign.Errorf(countersign.BadRequest, "evm transactions are signed by secp256k1 accounts")
		}
	default:
		return nil, countersign.Errorf(countersign.BadRequest, "type must be aitbc_v0 or evm")
	}
	st, err := d.signer.SignTx(ctx, a, typ, tx, chainID)
	if st == nil {
		return nil, err
	}
	return &SignedTx{Signature: st.Signature, PublicKey: a.PublicKey, Algo: st.Algo, Signed: st.Signed, TxHash: st.TxHash}, err
}

// Export returns an account's key encrypted with exportPassword, so it only
// leaves encrypted: a Web3 v3 keystore (secp256k1; geth, MetaMask and ethers
// read it) or a v1-kdb file of the raw key (ed25519). The wallet must be
// unlocked.
func (d *Service) Export(ctx context.Context, accountID, exportPassword string, scryptN int) (format string, blob []byte, err error) {
	if len(exportPassword) < 8 {
		return "", nil, countersign.Errorf(countersign.BadRequest, "export_password must be at least 8 characters")
	}
	a, err := d.account(ctx, accountID)
	if err != nil {
		return "", nil, err
	}
	defer d.kdf.begin()()
	if format, blob, err = d.keys.Export(ctx, a, exportPassword, scryptN); err != nil {
		return "", nil, err
	}
	return format, blob, d.record(ctx, "daemon.export", a.ID, map[string]string{"format": format}, nil)
}
