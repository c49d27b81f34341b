package main

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/countersign/countersign/contracts"
)

func counterArtifact() *contracts.Artifact { return contracts.MustLoad("Counter") }

type rpcOut struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func (e *env) rpc(key, method string, params ...any) rpcOut {
	e.t.Helper()
	if params == nil {
		params = []any{}
	}
	r := e.do("POST", "/eth", apiKey(key), map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).must(e.t, 200)
	var out rpcOut
	if err := json.Unmarshal([]byte(r.raw), &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// approveNext waits for the next pending request and decides it as u.
func (e *env) approveNext(u *user, decision string) <-chan string {
	done := make(chan string, 1)
	go func() {
		for range 500 {
			r := e.do("GET", "/api/transactions?status=pending", bearer(u.token), nil)
			if list, _ := r.body["transactions"].([]any); len(list) > 0 {
				id := list[0].(map[string]any)["transaction_id"].(string)
				e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u), "decision": decision})
				done <- id
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		done <- ""
	}()
	return done
}

func TestEthEndpoint(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ApprovalWait = 20 * time.Second })
	u, wallet, _, key := setup(t, e)

	if r := e.rpc(key, "eth_chainId"); string(r.Result) != `"0x539"` {
		t.Fatalf("eth_chainId: %s", r.Result)
	}
	if r := e.rpc(key, "eth_accounts"); string(r.Result) != `["`+wallet+`"]` {
		t.Fatalf("eth_accounts: %s", r.Result)
	}
	if r := e.rpc(key, "eth_getBalance", wallet, "latest"); string(r.Result) != `"0x56bc75e2d63100000"` { // 100 ETH
		t.Fatalf("eth_getBalance: %s", r.Result)
	}
	for method, code := range map[string]int{"eth_sign": -32601, "eth_sendRawTransaction": -32601, "debug_traceTransaction": -32601, "admin_peers": -32601} {
		if r := e.rpc(key, method, wallet, "0x00"); r.Error == nil || r.Error.Code != code {
			t.Errorf("%s not refused: %+v", method, r)
		}
	}
	// a batch, with a malformed member
	r := e.do("POST", "/eth", apiKey(key), `[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":2,"method":"eth_accounts"},{"id":3}]`).must(t, 200)
	var batch []rpcOut
	if err := json.Unmarshal([]byte(r.raw), &batch); err != nil || len(batch) != 3 || batch[0].Result == nil || batch[2].Error == nil || batch[2].Error.Code != -32600 {
		t.Fatalf("batch: %s", r.raw)
	}
	if r := e.do("POST", "/eth", apiKey(key), `{"jsonrpc":"2.0","id":1,`).must(t, 200); !strings.Contains(r.raw, "-32700") {
		t.Fatalf("parse error: %s", r.raw)
	}
	// another agent's account is refused
	if r := e.rpc(key, "personal_sign", "0x68656c6c6f", randomAddress()); r.Error == nil || r.Error.Code != 4100 {
		t.Fatalf("foreign account: %+v", r)
	}

	// eth_sendTransaction waits for the human, then returns the hash
	to := randomAddress()
	approved := e.approveNext(u, "approve")
	r2 := e.rpc(key, "eth_sendTransaction", map[string]string{"from": wallet, "to": to, "value": "0x3e8", "gas": "0x5208"})
	if r2.Error != nil || <-approved == "" {
		t.Fatalf("eth_sendTransaction: %+v", r2.Error)
	}
	var hash string
	json.Unmarshal(r2.Result, &hash)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rc := e.rpc(key, "eth_getTransactionReceipt", hash)
		if string(rc.Result) != "null" && rc.Result != nil {
			if !strings.Contains(string(rc.Result), `"status":"0x1"`) {
				t.Fatalf("receipt: %s", rc.Result)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no receipt")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := e.balance(apiKey(key), to, ""); got.Int64() != 1000 {
		t.Fatalf("recipient has %s", got)
	}

	// personal_sign: the signature recovers to the wallet
	approved = e.approveNext(u, "approve")
	ps := e.rpc(key, "personal_sign", "0x68656c6c6f20636f756e7465727369676e", wallet)
	<-approved
	var sigHex string
	json.Unmarshal(ps.Result, &sigHex)
	sig, err := hexutil.Decode(sigHex)
	if err != nil || len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
		t.Fatalf("personal_sign: %s %+v", ps.Result, ps.Error)
	}
	sig[64] -= 27
	pub, err := crypto.SigToPub(accounts.TextHash([]byte("hello countersign")), sig)
	if err != nil || crypto.PubkeyToAddress(*pub) != common.HexToAddress(wallet) {
		t.Fatalf("personal_sign does not recover to the wallet")
	}

	// eth_signTypedData_v4 (as ethers sends it: the JSON as a string)
	td := `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}],"Mail":[{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"test","chainId":1337},"message":{"contents":"hi"}}`
	approved = e.approveNext(u, "approve")
	ts := e.rpc(key, "eth_signTypedData_v4", wallet, td)
	<-approved
	json.Unmarshal(ts.Result, &sigHex)
	sig, _ = hexutil.Decode(sigHex)
	var typed apitypes.TypedData
	json.Unmarshal([]byte(td), &typed)
	digest, _, _ := apitypes.TypedDataAndHash(typed)
	if len(sig) != 65 {
		t.Fatalf("typed data: %s %+v", ts.Result, ts.Error)
	}
	sig[64] -= 27
	if pub, err := crypto.SigToPub(digest, sig); err != nil || crypto.PubkeyToAddress(*pub) != common.HexToAddress(wallet) {
		t.Fatal("typed data signature does not recover to the wallet")
	}
	// typed data for another chain is refused up front
	if r := e.rpc(key, "eth_signTypedData_v4", wallet, strings.Replace(td, `"chainId":1337`, `"chainId":1`, 1)); r.Error == nil || r.Error.Code != -32602 {
		t.Fatalf("foreign chain typed data: %+v", r)
	}

	// a rejection comes back as EIP-1193's 4001 with the reason
	rejected := e.approveNext(u, "reject")
	rj := e.rpc(key, "eth_sendTransaction", map[string]string{"to": to, "value": "0x1"})
	<-rejected
	if rj.Error == nil || rj.Error.Code != 4001 || !strings.Contains(string(rj.Error.Data), "transaction_id") {
		t.Fatalf("rejected: %+v", rj)
	}
	// calldata to a contract becomes a contract_call with raw data
	info := e.do("GET", "/api/dev/info", anon, nil).must(t, 200)
	approved = e.approveNext(u, "approve")
	call := e.rpc(key, "eth_sendTransaction", map[string]string{"to": info.str("counter_address"),
		"data": "0x" + common.Bytes2Hex(must(counterABIPack("increment", big.NewInt(3), "raw")))})
	id := <-approved
	if call.Error != nil {
		t.Fatalf("raw call: %+v", call.Error)
	}
	st := e.do("GET", "/api/transaction_status?transaction_id="+id, bearer(u.token), nil).must(t, 200)
	if st.str("type") != "contract_call" || !strings.HasPrefix(st.str("data"), "0x") {
		t.Fatalf("raw call status: %s", st.raw)
	}
}

func TestEthPendingTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ApprovalWait = 300 * time.Millisecond })
	u, _, _, key := setup(t, e)
	r := e.rpc(key, "eth_sendTransaction", map[string]string{"to": randomAddress(), "value": "0x1"})
	if r.Error == nil || r.Error.Code != -32002 {
		t.Fatalf("want -32002 pending, got %+v", r)
	}
	var data map[string]string
	json.Unmarshal(r.Error.Data, &data)
	if data["status"] != "pending" || data["transaction_id"] == "" {
		t.Fatalf("data %s", r.Error.Data)
	}
	// the agent can carry on with the REST flow
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": data["transaction_id"], "mfa_code": e.code(u)}).must(t, 200)
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": data["transaction_id"]}).must(t, 201)
}

func counterABIPack(method string, args ...any) ([]byte, error) {
	return counterArtifact().ABI.Pack(method, args...)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
