package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
)

const surfaceSignTxKey = "1ab42cc412b618bdea3a599e3c9bae199ebf030895b039e9db1e30dafb12b727"

// surfaceSecpAccount imports surfaceSignTxKey as a daemon wallet, unlocks it
// and returns its account id and EVM address.
func surfaceSecpAccount(t *testing.T, e *env) (string, common.Address) {
	t.Helper()
	r := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "ethers", "password": "pw-123456", "curve": "secp256k1", "private_key_hex": surfaceSignTxKey}).must(t, 201)
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": r.str("wallet_id"), "password": "pw-123456"}).must(t, 200)
	return r.str("account_id"), common.HexToAddress(r.str("evm_address"))
}

func surfaceSignTx(e *env, account string, tx []byte) resp {
	return e.do("POST", "/v1/sign/tx", anon, map[string]string{"account_id": account, "tx_bytes_base64": base64.StdEncoding.EncodeToString(tx), "type": "evm"})
}

// TestSurface_SignTxEthersForms sends POST /v1/sign/tx the unsigned
// transactions ethers produces (unsignedSerialized: legacy with and
// without the EIP-155 fields, 0x01, 0x02, a contract creation) and checks
// that each answer recovers to the account and is byte for byte the
// transaction ethers signs itself for the same fields with the same key.
// Before the fix the daemon only read go-ethereum's form (v, r, s zero)
// and refused these with 400.
func TestSurface_SignTxEthersForms(t *testing.T) {
	node := needTool(t, "node")
	e := newEnv(t, fastDaemon)
	account, addr := surfaceSecpAccount(t, e)
	chainID := e.app.Svc.ChainID()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "checks/signtx_forms.mjs")
	cmd.Dir = examplesDir
	cmd.Env = append(os.Environ(), "SIGNTX_KEY=0x"+surfaceSignTxKey, "SIGNTX_CHAIN_ID="+chainID.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v: %s", err, stderr.String())
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	var ethersAddr string
	_ = json.Unmarshal(out["address"], &ethersAddr)
	if common.HexToAddress(ethersAddr) != addr {
		t.Fatalf("ethers' address %s, the daemon's %s", ethersAddr, addr.Hex())
	}
	for _, name := range []string{"legacy_eip155", "legacy_no_chain_id", "eip2930", "eip1559", "eip1559_create"} {
		t.Run(name, func(t *testing.T) {
			var f struct{ Unsigned, Signed string }
			if err := json.Unmarshal(out[name], &f); err != nil || f.Unsigned == "" {
				t.Fatalf("node gave no %s: %s", name, stdout.String())
			}
			r := surfaceSignTx(e, account, hexutil.MustDecode(f.Unsigned)).must(t, 200)
			raw, _ := base64.StdEncoding.DecodeString(r.str("signed_tx_base64"))
			if hexutil.Encode(raw) != f.Signed {
				t.Fatalf("the daemon signed\n%s\nethers signs\n%s", hexutil.Encode(raw), f.Signed)
			}
			var signed types.Transaction
			if err := signed.UnmarshalBinary(raw); err != nil {
				t.Fatal(err)
			}
			from, err := types.Sender(types.LatestSignerForChainID(signed.ChainId()), &signed)
			if err != nil || from != addr || signed.Hash().Hex() != r.str("tx_hash") {
				t.Fatalf("signed by %s (%v), hash %s / %s", from.Hex(), err, signed.Hash().Hex(), r.str("tx_hash"))
			}
			if signed.ChainId().Cmp(chainID) != 0 {
				t.Fatalf("signed for chain %s, want %s", signed.ChainId(), chainID)
			}
		})
	}
}

// TestSecurity_SignTxRefusesOtherForms: what is not an unsigned
// transaction of a known type is refused with a clear 400 and signs
// nothing — a transaction already signed (re-signing would hide the first
// signature's meaning), a legacy pre-image naming another chain (it would
// be signed for the server's chain, not the one its bytes say), half a
// signature, a nonzero y-parity, a typed transaction without a chain id,
// and the types countersign does not sign (blob, set-code). Before the
// fix, a signed transaction was decoded by go-ethereum and signed again.
func TestSecurity_SignTxRefusesOtherForms(t *testing.T) {
	e := newEnv(t, fastDaemon)
	account, _ := surfaceSecpAccount(t, e)
	chainID := e.app.Svc.ChainID()
	to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")

	// go-ethereum's own unsigned forms still work (the form the daemon read before)
	for _, tx := range []*types.Transaction{
		types.NewTx(&types.LegacyTx{Nonce: 1, GasPrice: big.NewInt(1), Gas: 21000, To: &to, Value: big.NewInt(1)}),
		types.NewTx(&types.AccessListTx{ChainID: chainID, Nonce: 2, GasPrice: big.NewInt(1), Gas: 21000, To: &to}),
		types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: 3, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 21000, To: &to}),
	} {
		b, _ := tx.MarshalBinary()
		surfaceSignTx(e, account, b).must(t, 200)
	}

	// an already-signed transaction: the daemon's own answer, sent back
	unsigned, _ := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: 4, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 21000, To: &to}).MarshalBinary()
	signedB64 := surfaceSignTx(e, account, unsigned).must(t, 200).str("signed_tx_base64")
	signed, _ := base64.StdEncoding.DecodeString(signedB64)
	unsignedLegacy, _ := types.NewTx(&types.LegacyTx{Nonce: 5, GasPrice: big.NewInt(1), Gas: 21000, To: &to}).MarshalBinary()
	legacySigned, _ := base64.StdEncoding.DecodeString(surfaceSignTx(e, account, unsignedLegacy).must(t, 200).str("signed_tx_base64"))

	legacy := func(tail ...any) []byte {
		return mustRLP(t, append([]any{uint(6), uint(1), uint(21000), to, uint(0), []byte{}}, tail...))
	}
	typed := func(typ byte, items ...any) []byte { return append([]byte{typ}, mustRLP(t, items)...) }
	dyn := []any{chainID, uint(7), uint(1), uint(2e9), uint(21000), to, uint(0), []byte{}, types.AccessList{}}
	huge := new(big.Int).Lsh(big.NewInt(1), 256)
	for name, tx := range map[string][]byte{
		"fail/signed 0x02":              signed,
		"fail/signed legacy":            legacySigned,
		"fail/legacy other chain":       legacy(new(big.Int).Add(chainID, big.NewInt(1)), uint(0), uint(0)),
		"fail/legacy v only":            legacy(chainID),
		"fail/legacy v and r":           legacy(chainID, uint(0)),
		"fail/legacy r set":             legacy(chainID, uint(1), uint(0)),
		"fail/legacy too many":          legacy(chainID, uint(0), uint(0), uint(0)),
		"fail/0x02 y-parity 1":          typed(2, append(append([]any{}, dyn...), uint(1), uint(0), uint(0))...),
		"fail/0x02 s set":               typed(2, append(append([]any{}, dyn...), uint(0), uint(0), uint(1))...),
		"fail/0x02 chain id 0":          typed(2, append([]any{uint(0)}, dyn[1:]...)...),
		"fail/0x02 value over 256 bits": typed(2, chainID, uint(7), uint(1), uint(2e9), uint(21000), to, huge, []byte{}, types.AccessList{}),
		"fail/0x02 trailing bytes":      append(typed(2, dyn...), 0x00),
		"fail/0x03 blob":                typed(3, dyn...),
		"fail/0x04 set code":            typed(4, dyn...),
		"fail/empty list":               {0xc0},
	} {
		t.Run(name, func(t *testing.T) {
			r := surfaceSignTx(e, account, tx).refused(t, 400, "BAD_REQUEST")
			if r.str("signed_tx_base64") != "" {
				t.Fatal("signed")
			}
		})
	}
}

func mustRLP(t *testing.T, v any) []byte {
	t.Helper()
	b, err := rlp.EncodeToBytes(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
