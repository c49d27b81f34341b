package ethsig

import (
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
)

// FuzzDecodeUnsignedEVMTx: any bytes give a transaction or a BadRequest,
// never a panic; a transaction decoded is legacy, 0x01 or 0x02, and
// decoding go-ethereum's encoding of it gives the same signing hash (the
// forms agree); signed, it recovers to the key and go-ethereum reads it.
func FuzzDecodeUnsignedEVMTx(f *testing.F) {
	to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	for _, tx := range []*types.Transaction{
		types.NewTx(&types.LegacyTx{Nonce: 1, GasPrice: big.NewInt(1), Gas: 21000, To: &to, Value: big.NewInt(1)}),
		types.NewTx(&types.AccessListTx{ChainID: big.NewInt(1337), Nonce: 2, GasPrice: big.NewInt(1), Gas: 21000, To: &to, AccessList: types.AccessList{{Address: to, StorageKeys: []common.Hash{{1}}}}}),
		types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 3, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 21000, Data: []byte{1}}),
	} {
		b, _ := tx.MarshalBinary()
		f.Add(b)
	}
	// ethers' unsignedSerialized forms (examples/checks/signtx_forms.mjs)
	for _, h := range []string{
		"e707843b9aca0082520894000000000000000000000000000000000000dead823039808205398080",
		"e00b843b9aca0082520894000000000000000000000000000000000000dead0280",
		"02e8820539090184b2d05e0083015f9094000000000000000000000000000000000000dead05820102c0",
		"02d78205390a0184b2d05e0083030d408080856000600055c0",
	} {
		f.Add(common.FromHex(h))
	}
	f.Add([]byte{0x03, 0xc0})
	f.Add([]byte{0xc0})
	key, _ := crypto.HexToECDSA("1ab42cc412b618bdea3a599e3c9bae199ebf030895b039e9db1e30dafb12b727")
	addr := crypto.PubkeyToAddress(key.PublicKey)
	chainID := big.NewInt(1337)
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, signer, err := DecodeUnsignedEVMTx(b, chainID)
		if err != nil {
			var e *countersign.Error
			if !errors.As(err, &e) || e.Code != countersign.BadRequest {
				t.Fatalf("error %v is not a BadRequest", err)
			}
			return
		}
		if tx.Type() > types.DynamicFeeTxType {
			t.Fatalf("type %d decoded", tx.Type())
		}
		geth, _ := tx.MarshalBinary()
		tx2, signer2, err := DecodeUnsignedEVMTx(geth, chainID)
		if err != nil || signer.Hash(tx) != signer2.Hash(tx2) {
			t.Fatalf("go-ethereum's form of %x does not decode to the same transaction: %v", b, err)
		}
		signed, err := types.SignTx(tx, signer, key)
		if err != nil {
			return // e.g. a chain id the signer cannot use
		}
		raw, _ := signed.MarshalBinary()
		var back types.Transaction
		if err := back.UnmarshalBinary(raw); err != nil {
			t.Fatalf("go-ethereum cannot read the signed %x: %v", raw, err)
		}
		if from, err := types.Sender(signer, &back); err != nil || from != addr || signer.Hash(&back) != signer.Hash(tx) {
			t.Fatalf("signed by %s (%v)", from.Hex(), err)
		}
	})
}
