package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/countersign/countersign/ethsig"
)

// FuzzDaemonSignTx drives POST /v1/sign/tx — the JSON body, the base64,
// the type, and the EVM transaction decoding behind them — through the
// real handler with two unlocked accounts (ed25519 and secp256k1). Any
// input must give 200 or a client error, never a 5xx or a panic; a 200
// must be a real signature over exactly the bytes sent: ed25519 over them
// (aitbc_v0), or an EVM transaction with the same signing hash, signed by
// the account.
func FuzzDaemonSignTx(f *testing.F) {
	e := newEnv(f, fastDaemon, func(c *Config) { c.SignRate, c.SignBurst = 1e9, 1e9 })
	imp := func(curve, key string) resp {
		r := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": curve, "password": "pw-123456", "curve": curve, "private_key_hex": key}).must(f, 201)
		e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": r.str("wallet_id"), "password": "pw-123456"}).must(f, 200)
		return r
	}
	ed := imp("ed25519", strings.Repeat("0e", 32))
	sk := imp("secp256k1", "1ab42cc412b618bdea3a599e3c9bae199ebf030895b039e9db1e30dafb12b727")
	edPub, _ := hex.DecodeString(e.do("POST", "/v1/sign/message", anon, map[string]string{"account_id": ed.str("account_id"), "message_base64": "aGk="}).must(f, 200).str("public_key_hex"))
	skAddr := common.HexToAddress(sk.str("evm_address"))
	chainID := e.app.Svc.ChainID()

	to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	for _, tx := range []*types.Transaction{
		types.NewTx(&types.LegacyTx{Nonce: 1, GasPrice: big.NewInt(1), Gas: 21000, To: &to, Value: big.NewInt(1)}),
		types.NewTx(&types.AccessListTx{ChainID: big.NewInt(1337), Nonce: 2, GasPrice: big.NewInt(1), Gas: 21000, To: &to}),
		types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 3, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 21000, To: &to, Value: big.NewInt(5), Data: []byte{1, 2}}),
		types.NewTx(&types.DynamicFeeTx{ChainID: new(big.Int).Lsh(big.NewInt(1), 255), Gas: 1}), // an absurd chain id
		types.NewTx(&types.LegacyTx{Gas: 1}), // contract creation
	} {
		b, _ := tx.MarshalBinary()
		f.Add("evm", b, true, "")
	}
	f.Add("aitbc_v0", []byte("aitbc transfer 1"), false, "")
	f.Add("evm", []byte{0x02}, true, "")
	f.Add("evm", []byte{0xc0}, true, "")
	f.Add("evm", []byte{0x04, 0xc0}, true, "")
	f.Add("evm", []byte{}, true, "")
	f.Add("aitbc_v0", []byte("x"), true, "") // wrong curve
	f.Add("", []byte("x"), false, `{"account_id":1}`)
	f.Add("", []byte("x"), false, `{"tx_bytes_base64":"not base64!","type":"evm"}`)
	f.Add("", []byte("x"), false, `{"account_id":"a","tx_bytes_base64":"AA==","type":"evm","extra":true}`)

	f.Fuzz(func(t *testing.T, typ string, tx []byte, secp bool, rawBody string) {
		acct := ed.str("account_id")
		if secp {
			acct = sk.str("account_id")
		}
		body := rawBody
		if body == "" {
			b, _ := json.Marshal(map[string]string{"account_id": acct, "tx_bytes_base64": base64.StdEncoding.EncodeToString(tx), "type": typ})
			body = string(b)
		}
		r := httptest.NewRequest("POST", "/v1/sign/tx", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Auth-Token", e.app.walletToken)
		rec := e.serveAs("127.0.0.1:40000", r)
		var out struct {
			Signature string `json:"signature_base64"`
			Signed    string `json:"signed_tx_base64"`
			TxHash    string `json:"tx_hash"`
			Error     *struct{ Code string }
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		if rec.Code >= 500 || rec.Code != 200 && (out.Error == nil || out.Error.Code == "INTERNAL") {
			t.Fatalf("%d for %q: %s", rec.Code, body, rec.Body.String())
		}
		if rec.Code != 200 {
			return
		}
		if rawBody != "" {
			return // a hand-written body that happened to be valid
		}
		sig, _ := base64.StdEncoding.DecodeString(out.Signature)
		signedRaw, _ := base64.StdEncoding.DecodeString(out.Signed)
		switch typ {
		case "aitbc_v0":
			if secp || !ed25519.Verify(edPub, tx, sig) || !bytes.Equal(signedRaw, append(append([]byte{}, tx...), sig...)) {
				t.Fatalf("aitbc_v0 signature does not cover the bytes sent")
			}
		case "evm":
			// go-ethereum's own reading where it has one (an independent
			// oracle); ethers' unsigned forms, which go-ethereum does not
			// parse, are read by the server's decoder (and checked against
			// ethers itself in TestSurface_SignTxEthersForms)
			var signed types.Transaction
			unsigned := new(types.Transaction)
			var signer types.Signer
			var derr error
			if unsigned.UnmarshalBinary(tx) == nil {
				signer = types.LatestSignerForChainID(chainID)
				if unsigned.Type() != types.LegacyTxType {
					signer = types.LatestSignerForChainID(unsigned.ChainId())
				}
			} else {
				unsigned, signer, derr = ethsig.DecodeUnsignedEVMTx(tx, chainID)
			}
			if !secp || derr != nil || signed.UnmarshalBinary(signedRaw) != nil {
				t.Fatalf("evm: signed something that is not the transaction sent")
			}
			if signer.Hash(unsigned) != signer.Hash(&signed) {
				t.Fatalf("the signed transaction differs from the one sent")
			}
			if from, err := types.Sender(signer, &signed); err != nil || from != skAddr || signed.Hash().Hex() != out.TxHash {
				t.Fatalf("signed by %s (%v), hash %s", from.Hex(), err, out.TxHash)
			}
		default:
			t.Fatalf("type %q signed", typ)
		}
	})
}
