package evm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/chain/evm"
)

// depositTx is an OP-stack deposit (type 0x7e) as op-geth serves it in a
// block, the kind that opens every block on Base; go-ethereum does not
// decode the type.
func depositTx(from string, nonce uint64) json.RawMessage {
	h := "0x" + strings.Repeat("7e", 32)
	return json.RawMessage(`{"type":"0x7e","from":"` + from + `","to":"0x4200000000000000000000000000000000000015",` +
		`"nonce":"` + "0x" + big.NewInt(int64(nonce)).Text(16) + `","gas":"0xf4240","gasPrice":"0x0","value":"0x0","input":"0x",` +
		`"hash":"` + h + `","sourceHash":"` + h + `","mint":"0x0","isSystemTx":false,"depositReceiptVersion":"0x1",` +
		`"v":"0x0","r":"0x0","s":"0x0","transactionIndex":"0x0"}`)
}

// The block walk finds a sender's transactions in blocks that also hold
// transaction types go-ethereum cannot decode (OP-stack deposits, one of
// them claiming the sender and a sought nonce): they are passed over, not
// a failure of the whole scan.
func TestSentTxsScan_BlocksWithDepositTransactions(t *testing.T) {
	dev := startDev(t)
	ctx := context.Background()
	for range 2 { // the faucet's nonces 2 and 3
		if _, err := dev.Fund(ctx, common.HexToAddress("0x000000000000000000000000000000000000bEEF"), big.NewInt(1)); err != nil {
			t.Fatal(err)
		}
	}
	faucet := dev.Faucet.Hex()
	next := dev.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &req)
		if req.Method != "eth_getBlockByNumber" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var m map[string]json.RawMessage
		var blk map[string]json.RawMessage
		if json.Unmarshal(rec.Body.Bytes(), &m) != nil || json.Unmarshal(m["result"], &blk) != nil || blk == nil {
			w.Write(rec.Body.Bytes())
			return
		}
		var txs []json.RawMessage
		_ = json.Unmarshal(blk["transactions"], &txs)
		if len(txs) > 0 && txs[0][0] == '{' { // full transactions: a deposit opens the block, as on Base
			txs = append([]json.RawMessage{depositTx("0xdeaddeaddeaddeaddeaddeaddeaddeaddead0001", 0), depositTx(faucet, 9)}, txs...)
			blk["transactions"], _ = json.Marshal(txs)
			m["result"], _ = json.Marshal(blk)
		}
		_ = json.NewEncoder(w).Encode(m)
	}))
	defer srv.Close()
	c, closeFn, err := evm.Dial(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	found, complete, err := c.SentTxs(ctx, countersign.SentQuery{From: faucet, Nonces: []uint64{0, 3, 9}, MaxBlocks: 1000})
	if err != nil || !complete {
		t.Fatalf("scan over blocks with deposits: complete %v, %v", complete, err)
	}
	nonces := map[uint64]bool{}
	for _, f := range found {
		nonces[f.Nonce] = true
		if f.BlockNumber == nil || strings.HasPrefix(f.Hash, "0x7e7e") {
			t.Fatalf("found %+v", f)
		}
	}
	if len(found) != 2 || !nonces[0] || !nonces[3] {
		t.Fatalf("found nonces %v, want 0 and 3 (the deposit claiming nonce 9 is not the faucet's signature)", nonces)
	}
}
