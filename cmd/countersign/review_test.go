package main

import (
	"math/big"
	"net/url"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign/contracts"
)

// TestReviewWarnings checks the decoded request pages a human decides on.
func TestReviewWarnings(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	agent := apiKey(key)
	info := e.do("GET", "/api/dev/info", anon, nil).must(t, 200)
	token := info.str("test_token_address")
	f := newFormClient(t, e)
	f.get("/login")
	f.post("/login", url.Values{"csrf": {f.csrf()}, "username": {u.name}, "password": {u.password}})

	prepare := func(body map[string]any) string {
		return e.do("POST", "/api/prepare_transaction", agent, body).must(t, 202).str("transaction_id")
	}
	page := func(id string) string { return f.get("/tx/" + id) }

	// an unlimited ERC-20 approval, decoded from its ABI, amounts in token units
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	spender := randomAddress()
	p := page(prepare(map[string]any{"type": "contract_call", "contract_address": token, "contract_abi": contracts.MustLoad("TestToken").ABIJSON,
		"function_name": "approve", "function_args": []string{spender, max.String()}}))
	for _, want := range []string{"approve(address,uint256)", spender, "TEST (" + max.String() + ")", "Unlimited approval"} {
		if !strings.Contains(p, want) {
			t.Errorf("approve page lacks %q", want)
		}
	}
	// the same call as raw data (eth_sendTransaction): decoded by its known selector
	data, _ := contracts.MustLoad("TestToken").ABI.Pack("transfer", common.HexToAddress(spender), big.NewInt(2_500_000_000_000_000_000))
	p = page(prepare(map[string]any{"type": "contract_call", "contract_address": token, "data": "0x" + common.Bytes2Hex(data)}))
	if !strings.Contains(p, "transfer(address,uint256)") || !strings.Contains(p, "2.5 TEST") {
		t.Errorf("raw transfer not decoded")
	}
	// an unknown selector: raw data and a warning
	p = page(prepare(map[string]any{"type": "contract_call", "contract_address": info.str("counter_address"), "data": "0xdeadbeef00"}))
	if !strings.Contains(p, "Unknown function selector 0xdeadbeef") || !strings.Contains(p, "0xdeadbeef00") || !strings.Contains(p, "would fail") {
		t.Errorf("unknown selector page: %s", p)
	}
	// the zero address
	if p = page(prepare(map[string]any{"type": "native", "to_address": common.Address{}.Hex(), "amount": "1"})); !strings.Contains(p, "zero address") {
		t.Error("no zero-address warning")
	}
	// an unusual amount against this agent's history; a known recipient is not "new"
	to := randomAddress()
	small := prepare(map[string]any{"type": "native", "to_address": to, "amount": "1000"})
	e.approveAndExecute(u, key, small)
	p = page(prepare(map[string]any{"type": "native", "to_address": to, "amount": "5000"}))
	if !strings.Contains(p, "Unusual amount") || strings.Contains(p, "New recipient") {
		t.Errorf("history warnings wrong")
	}
	// a personal_sign request shows the text
	if p = page(prepare(map[string]any{"type": "personal_sign", "message": "log in to example.com"})); !strings.Contains(p, "log in to example.com") {
		t.Error("message not shown")
	}

	// activity filters: status and agent
	act := f.get("/activity?status=confirmed")
	if strings.Count(act, `class="status confirmed"`) != 1 || strings.Contains(act, `class="status pending"`) {
		t.Errorf("status filter")
	}
	if act = f.get("/activity?agent=nobody"); !strings.Contains(act, "Nothing yet") {
		t.Errorf("agent filter")
	}
	if act = f.get("/activity?from=2000-01-01&to=2000-01-02"); !strings.Contains(act, "Nothing yet") {
		t.Errorf("date filter")
	}
}
