package policy

import (
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
)

// Real-looking typed data, in the shape eth_signTypedData_v4 sends it,
// parsed by ethsig.ParseTypedData exactly as core will.
const (
	baseUSDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
	mainUSDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
	mainDAI  = "0x6B175474E89094C44Da98b954EedeAC495271d0F"
	wethAddr = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
	permit2C = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
	payee    = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
	spender  = "0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD"
	owner    = "0x857b06519E91e3A54538791bDbb0E22373e36b66"

	eip712Domain = `"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}]`
	permit2Dom   = `"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}]`

	eip3009 = `{"types":{` + eip712Domain + `,
	  "TransferWithAuthorization":[{"name":"from","type":"address"},{"name":"to","type":"address"},{"name":"value","type":"uint256"},{"name":"validAfter","type":"uint256"},{"name":"validBefore","type":"uint256"},{"name":"nonce","type":"bytes32"}]},
	  "primaryType":"TransferWithAuthorization",
	  "domain":{"name":"USD Coin","version":"2","chainId":8453,"verifyingContract":"` + baseUSDC + `"},
	  "message":{"from":"` + owner + `","to":"` + payee + `","value":"1500000","validAfter":0,"validBefore":1767225600,
	    "nonce":"0x3b5d3c6a8f1e2d4c5b6a79880716253443526170819283746556473829101112"}}`

	receive3009 = `{"types":{` + eip712Domain + `,
	  "ReceiveWithAuthorization":[{"name":"from","type":"address"},{"name":"to","type":"address"},{"name":"value","type":"uint256"},{"name":"validAfter","type":"uint256"},{"name":"validBefore","type":"uint256"},{"name":"nonce","type":"bytes32"}]},
	  "primaryType":"ReceiveWithAuthorization",
	  "domain":{"name":"USD Coin","version":"2","chainId":8453,"verifyingContract":"` + baseUSDC + `"},
	  "message":{"from":"` + owner + `","to":"` + payee + `","value":250000,"validAfter":0,"validBefore":1767225600,
	    "nonce":"0x0000000000000000000000000000000000000000000000000000000000000001"}}`

	permit2612 = `{"types":{` + eip712Domain + `,
	  "Permit":[{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]},
	  "primaryType":"Permit",
	  "domain":{"name":"USD Coin","version":"2","chainId":1,"verifyingContract":"` + mainUSDC + `"},
	  "message":{"owner":"` + owner + `","spender":"` + spender + `","value":"VALUE","nonce":0,"deadline":"1767225600"}}`

	permitDAI = `{"types":{` + eip712Domain + `,
	  "Permit":[{"name":"holder","type":"address"},{"name":"spender","type":"address"},{"name":"nonce","type":"uint256"},{"name":"expiry","type":"uint256"},{"name":"allowed","type":"bool"}]},
	  "primaryType":"Permit",
	  "domain":{"name":"Dai Stablecoin","version":"1","chainId":1,"verifyingContract":"` + mainDAI + `"},
	  "message":{"holder":"` + owner + `","spender":"` + spender + `","nonce":3,"expiry":1767225600,"allowed":ALLOWED}}`

	permitDetails = `"PermitDetails":[{"name":"token","type":"address"},{"name":"amount","type":"uint160"},{"name":"expiration","type":"uint48"},{"name":"nonce","type":"uint48"}]`

	permitSingle = `{"types":{` + permit2Dom + `,` + permitDetails + `,
	  "PermitSingle":[{"name":"details","type":"PermitDetails"},{"name":"spender","type":"address"},{"name":"sigDeadline","type":"uint256"}]},
	  "primaryType":"PermitSingle",
	  "domain":{"name":"Permit2","chainId":1,"verifyingContract":"` + permit2C + `"},
	  "message":{"details":{"token":"` + mainUSDC + `","amount":"AMOUNT","expiration":"1767225600","nonce":"0"},"spender":"` + spender + `","sigDeadline":"1764633600"}}`

	permitBatch = `{"types":{` + permit2Dom + `,` + permitDetails + `,
	  "PermitBatch":[{"name":"details","type":"PermitDetails[]"},{"name":"spender","type":"address"},{"name":"sigDeadline","type":"uint256"}]},
	  "primaryType":"PermitBatch",
	  "domain":{"name":"Permit2","chainId":1,"verifyingContract":"` + permit2C + `"},
	  "message":{"details":[
	    {"token":"` + mainUSDC + `","amount":"1000000","expiration":"1767225600","nonce":"0"},
	    {"token":"SECOND","amount":"2500000","expiration":"1767225600","nonce":"1"}],
	   "spender":"` + spender + `","sigDeadline":"1764633600"}}`

	permitTransferFrom = `{"types":{` + permit2Dom + `,
	  "TokenPermissions":[{"name":"token","type":"address"},{"name":"amount","type":"uint256"}],
	  "PermitTransferFrom":[{"name":"permitted","type":"TokenPermissions"},{"name":"spender","type":"address"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]},
	  "primaryType":"PermitTransferFrom",
	  "domain":{"name":"Permit2","chainId":1,"verifyingContract":"` + permit2C + `"},
	  "message":{"permitted":{"token":"` + wethAddr + `","amount":"50000000000000000"},"spender":"` + spender + `","nonce":"17","deadline":"1764633600"}}`

	mail = `{"types":{` + eip712Domain + `,
	  "Mail":[{"name":"contents","type":"string"}]},
	  "primaryType":"Mail",
	  "domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
	  "message":{"contents":"Hello, Bob!"}}`
)

const max160 = "1461501637330902918203684832716283019655932542975"                              // 2^160-1
const max256 = "115792089237316195423570985008687907853269984665640564039457584007913129639935" // 2^256-1

// parseTD parses raw as core does and values it.
func parseTD(t *testing.T, raw string) (*TypedValue, Request, error) {
	t.Helper()
	td, _, err := ethsig.ParseTypedData([]byte(raw), ethsig.AnyChain)
	if err != nil {
		t.Fatalf("ethsig.ParseTypedData: %v", err)
	}
	dom := TypedDomain{VerifyingContract: td.Domain.VerifyingContract}
	if td.Domain.ChainId != nil {
		dom.ChainID = (*big.Int)(td.Domain.ChainId)
	}
	tv, err := ValueTypedData(td.PrimaryType, dom, td.Message)
	req := Request{Kind: KindTypedData, ChainID: 1, WalletID: "w1", AgentID: "a1",
		TypedData: &TypedDataInfo{PrimaryType: td.PrimaryType, VerifyingContract: dom.VerifyingContract, ChainID: dom.ChainID}}
	tv.Apply(&req)
	return tv, req, err
}

func TestValueTypedData(t *testing.T) {
	lc := strings.ToLower
	tests := map[string]struct {
		raw       string
		standard  string
		asset     string
		amount    string // "" : nil
		recipient string
		unlimited bool
		multi     bool
	}{
		"ok/EIP-3009 TransferWithAuthorization, 1.5 USDC on Base": {eip3009, "eip3009", lc(baseUSDC), "1500000", lc(payee), false, false},
		"ok/EIP-3009 ReceiveWithAuthorization, value as a number": {receive3009, "eip3009", lc(baseUSDC), "250000", lc(payee), false, false},
		"ok/EIP-2612 Permit of 100 USDC":                          {strings.Replace(permit2612, "VALUE", "100000000", 1), "eip2612", lc(mainUSDC), "100000000", lc(spender), false, false},
		"ok/EIP-2612 Permit of 2^256-1 is unlimited":              {strings.Replace(permit2612, "VALUE", max256, 1), "eip2612", lc(mainUSDC), max256, lc(spender), true, false},
		"ok/EIP-2612 Permit of 2^256-2 is not unlimited":          {strings.Replace(permit2612, "VALUE", "115792089237316195423570985008687907853269984665640564039457584007913129639934", 1), "eip2612", lc(mainUSDC), "115792089237316195423570985008687907853269984665640564039457584007913129639934", lc(spender), false, false},
		"ok/EIP-2612 Permit value in hex":                         {strings.Replace(permit2612, `"VALUE"`, `"0xf4240"`, 1), "eip2612", lc(mainUSDC), "1000000", lc(spender), false, false},
		"ok/DAI permit allowed=true is unlimited":                 {strings.Replace(permitDAI, "ALLOWED", "true", 1), "eip2612", lc(mainDAI), max256, lc(spender), true, false},
		"ok/DAI permit allowed=false revokes":                     {strings.Replace(permitDAI, "ALLOWED", "false", 1), "eip2612", lc(mainDAI), "0", lc(spender), false, false},
		"ok/Permit2 PermitSingle of 1000 USDC":                    {strings.Replace(permitSingle, "AMOUNT", "1000000000", 1), "permit2", lc(mainUSDC), "1000000000", lc(spender), false, false},
		"ok/Permit2 PermitSingle of 2^160-1 is unlimited":         {strings.Replace(permitSingle, "AMOUNT", max160, 1), "permit2", lc(mainUSDC), max160, lc(spender), true, false},
		"ok/Permit2 PermitBatch of one token sums":                {strings.Replace(permitBatch, "SECOND", mainUSDC, 1), "permit2", lc(mainUSDC), "3500000", lc(spender), false, false},
		"ok/Permit2 PermitBatch of two tokens is multi-asset":     {strings.Replace(permitBatch, "SECOND", mainDAI, 1), "permit2", "", "", lc(spender), false, true},
		"ok/Permit2 PermitTransferFrom of 0.05 WETH":              {permitTransferFrom, "permit2", lc(wethAddr), "50000000000000000", lc(spender), false, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			tv, req, err := parseTD(t, tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if tv.Standard != tt.standard || tv.Recipient != tt.recipient || tv.Unlimited != tt.unlimited || tv.MultiAsset != tt.multi || tv.Asset != tt.asset {
				t.Fatalf("value = %+v", tv)
			}
			if got := "" + fmtBig(tv.Amount); got != tt.amount {
				t.Fatalf("amount = %s, want %s", got, tt.amount)
			}
			if req.UnlimitedApproval != tt.unlimited || req.Unvalued != tt.multi || req.Asset != tt.asset || req.To[0] != tt.recipient {
				t.Fatalf("request = %+v", req)
			}
		})
	}
}

func fmtBig(v *big.Int) string {
	if v == nil {
		return ""
	}
	return v.String()
}

func TestValueTypedData_NoValue(t *testing.T) {
	tv, _, err := parseTD(t, mail)
	if tv != nil || err != nil {
		t.Fatalf("Mail = %+v, %v; want nil, nil", tv, err)
	}
}

// TestMoney_TypedDataBadValuesRefused: a known value-moving type whose
// amount cannot be read exactly is an error, never "moves nothing".
func TestMoney_TypedDataBadValuesRefused(t *testing.T) {
	permit := func(value any) map[string]any {
		return map[string]any{"owner": owner, "spender": spender, "value": value, "nonce": float64(0), "deadline": "1767225600"}
	}
	dom := TypedDomain{VerifyingContract: mainUSDC}
	for name, tt := range map[string]struct {
		primary string
		domain  TypedDomain
		msg     map[string]any
	}{
		"fail/value 2^256-1 as a JSON number (float64 lost the digits)": {"Permit", dom, permit(1.157920892373162e77)},
		"fail/value 2^53 as a float":                                    {"Permit", dom, permit(float64(1 << 53))},
		"fail/value fractional":                                         {"Permit", dom, permit(1.5)},
		"fail/value negative string":                                    {"Permit", dom, permit("-1")},
		"fail/value negative float":                                     {"Permit", dom, permit(-1.0)},
		"fail/value 2^256":                                              {"Permit", dom, permit("115792089237316195423570985008687907853269984665640564039457584007913129639936")},
		"fail/value missing":                                            {"Permit", dom, map[string]any{"owner": owner, "spender": spender}},
		"fail/value an object":                                          {"Permit", dom, permit(map[string]any{})},
		"fail/spender not an address":                                   {"Permit", dom, map[string]any{"spender": "bob", "value": "1"}},
		"fail/no verifying contract":                                    {"TransferWithAuthorization", TypedDomain{}, map[string]any{"to": payee, "value": "1"}},
		"fail/DAI allowed not a bool":                                   {"Permit", dom, map[string]any{"spender": spender, "allowed": "yes"}},
		"fail/DAI allowed and value":                                    {"Permit", dom, map[string]any{"spender": spender, "allowed": true, "value": "1"}},
		"fail/PermitSingle details missing":                             {"PermitSingle", dom, map[string]any{"spender": spender}},
		"fail/PermitBatch details empty":                                {"PermitBatch", dom, map[string]any{"spender": spender, "details": []any{}}},
		"fail/PermitTransferFrom token bad":                             {"PermitTransferFrom", dom, map[string]any{"spender": spender, "permitted": map[string]any{"token": "x", "amount": "1"}}},
		"fail/hex too long":                                             {"Permit", dom, permit("0x" + strings.Repeat("f", 65))},
	} {
		t.Run(name, func(t *testing.T) {
			tv, err := ValueTypedData(tt.primary, tt.domain, tt.msg)
			var e *countersign.Error
			if !errors.As(err, &e) || e.Code != countersign.BadRequest {
				t.Fatalf("value = %+v, err = %v; want a BadRequest", tv, err)
			}
		})
	}
	// A Permit2 allowance above uint160 (which would not even hash) is
	// unlimited, not an error that could be mistaken for "no value".
	tv, err := ValueTypedData("PermitSingle", dom, map[string]any{"spender": spender, "details": map[string]any{"token": mainUSDC, "amount": "1461501637330902918203684832716283019655932542976000"}})
	if err != nil || !tv.Unlimited {
		t.Fatalf("PermitSingle over uint160: %+v %v", tv, err)
	}
	// json.Number (a decoder with UseNumber) reads exactly.
	tv, err = ValueTypedData("Permit", dom, permit(json.Number(max256)))
	if err != nil || !tv.Unlimited {
		t.Fatalf("json.Number: %+v %v", tv, err)
	}
}

func TestEvaluate_TypedData(t *testing.T) {
	p := mustParse(t, `{"rules":[
	  {"id":"x402","when":{"kind":["typed_data"],"asset":"`+baseUSDC+`","typed_data":{"primary_type":"TransferWithAuthorization"}},
	   "then":"auto","budget":{"max":"10000000","window":"24h"}},
	  {"id":"permits","when":{"kind":["typed_data"],"asset":"`+mainUSDC+`"},"then":"delay","delay":"15m"},
	  {"id":"sign-in","when":{"typed_data":{"primary_type":"Mail"}},"then":"auto"}
	]}`)
	h := &fakeHistory{entries: []entry{{wallet: "w1", agent: "a1", rule: "x402", asset: strings.ToLower(baseUSDC), at: now.Add(-1), amount: big.NewInt(8_500_000)}}}
	for name, tt := range map[string]struct {
		raw     string
		want    Outcome
		rule    string
		reserve string
		warn    string
	}{
		"ok/EIP-3009 within the USDC budget is auto":     {eip3009, Auto, "x402", "1500000", ""},
		"ok/EIP-3009 over the budget goes to a human":    {strings.Replace(eip3009, `"1500000"`, `"1500001"`, 1), Human, "x402", "", "exceed"},
		"ok/a bounded permit is delayed":                 {strings.Replace(permit2612, "VALUE", "100000000", 1), Delay, "permits", "", ""},
		"ok/an unlimited permit is never delayed":        {strings.Replace(permit2612, "VALUE", max256, 1), Human, "permits", "", "hard rule unlimited-approval"},
		"ok/typed data that moves nothing may be auto":   {mail, Auto, "sign-in", "", ""},
		"ok/a Permit2 batch of two tokens is never auto": {strings.Replace(permitBatch, "SECOND", mainDAI, 1), Human, DefaultRuleID, "", ""},
		"ok/an unlimited PermitSingle is never delayed":  {strings.Replace(permitSingle, "AMOUNT", max160, 1), Human, "permits", "", "hard rule unlimited-approval"},
	} {
		t.Run(name, func(t *testing.T) {
			_, req, err := parseTD(t, tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			d := Evaluate(p, req, h, now)
			if d.Outcome != tt.want || d.RuleID != tt.rule || fmtBig(d.Reserve) != tt.reserve {
				t.Fatalf("decision = %+v", d)
			}
			if tt.warn != "" && !strings.Contains(strings.Join(d.Warnings, " "), tt.warn) {
				t.Fatalf("warnings %v lack %q", d.Warnings, tt.warn)
			}
		})
	}
}
