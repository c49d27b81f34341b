package x402

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

const v2OK = `{"x402Version":2,"resource":{"url":"https://a.example/x"},"accepts":[
 {"scheme":"exact","network":"eip155:8453","amount":"10000","asset":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,"extra":{"name":"USD Coin","version":"2"}},
 {"scheme":"exact","network":"eip155:8453","amount":"900","asset":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,"extra":{"name":"USD Coin","version":"2"}},
 {"scheme":"upto","network":"eip155:8453","amount":"1","asset":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","extra":{"name":"USD Coin","version":"2"}},
 {"scheme":"exact","network":"eip155:1","amount":"1","asset":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","extra":{"name":"USD Coin","version":"2"}},
 {"scheme":"exact","network":"eip155:8453","amount":"1","asset":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","extra":{"name":"USD Coin","version":"2","assetTransferMethod":"permit2"}}
]}`

const v1OK = `{"x402Version":1,"error":"pay","accepts":[{"scheme":"exact","network":"base","maxAmountRequired":"10000","resource":"https://a.example/x",
 "description":"d","mimeType":"application/json","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,
 "asset":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913","extra":{"name":"USD Coin","version":"2"}}]}`

func TestParsePaymentRequired(t *testing.T) {
	tests := map[string]struct {
		in      string
		version int
		n       int
		wantErr bool
	}{
		"ok/v2":                             {in: v2OK, version: 2, n: 5},
		"ok/v1":                             {in: v1OK, version: 1, n: 1},
		"fail/version 3":                    {in: strings.Replace(v1OK, `"x402Version":1`, `"x402Version":3`, 1), wantErr: true},
		"fail/version string":               {in: strings.Replace(v1OK, `"x402Version":1`, `"x402Version":"1"`, 1), wantErr: true},
		"fail/no accepts":                   {in: `{"x402Version":2,"accepts":[]}`, wantErr: true},
		"fail/accepts object":               {in: `{"x402Version":2,"accepts":{}}`, wantErr: true},
		"fail/v2 without amount":            {in: `{"x402Version":2,"accepts":[{"scheme":"exact","network":"eip155:1","maxAmountRequired":"1"}]}`, wantErr: true},
		"fail/v1 without maxAmountRequired": {in: `{"x402Version":1,"accepts":[{"scheme":"exact","network":"base","amount":"1"}]}`, wantErr: true},
		"fail/trailing data":                {in: v1OK + `{}`, wantErr: true},
		"fail/not json":                     {in: `pay me`, wantErr: true},
		"fail/extra a string":               {in: `{"x402Version":2,"accepts":[{"scheme":"exact","network":"eip155:1","amount":"1","extra":"x"}]}`, wantErr: true},
		"fail/negative timeout":             {in: `{"x402Version":2,"accepts":[{"scheme":"exact","network":"eip155:1","amount":"1","maxTimeoutSeconds":-1}]}`, wantErr: true},
		"fail/too many accepts":             {in: `{"x402Version":2,"accepts":[` + strings.Repeat(`{"scheme":"exact","network":"n","amount":"1"},`, MaxAccepts) + `{"scheme":"exact","network":"n","amount":"1"}]}`, wantErr: true},
		"fail/huge":                         {in: `{"x402Version":2,"error":"` + strings.Repeat("a", MaxEncoded) + `","accepts":[]}`, wantErr: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			pr, err := ParsePaymentRequired([]byte(tt.in))
			if tt.wantErr {
				if err == nil || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil || pr.X402Version != tt.version || len(pr.Accepts) != tt.n {
				t.Fatalf("%+v %v", pr, err)
			}
		})
	}
}

func TestParsePaymentRequiredHeader(t *testing.T) {
	enc := base64.StdEncoding.EncodeToString([]byte(v2OK))
	for name, h := range map[string]string{"std": enc, "raw": strings.TrimRight(enc, "="), "url": base64.URLEncoding.EncodeToString([]byte(v2OK))} {
		if pr, err := ParsePaymentRequiredHeader(h); err != nil || pr.X402Version != 2 {
			t.Errorf("ok/%s: %v", name, err)
		}
	}
	for name, h := range map[string]string{
		"v1 in a v2 header": base64.StdEncoding.EncodeToString([]byte(v1OK)),
		"not base64":        "%%%",
		"empty":             "",
		"base64 of garbage": base64.StdEncoding.EncodeToString([]byte("\x00\x01")),
		"too long":          strings.Repeat("A", MaxEncoded+4),
	} {
		if _, err := ParsePaymentRequiredHeader(h); err == nil {
			t.Errorf("fail/%s: accepted", name)
		}
	}
}

func TestOffers(t *testing.T) {
	pr, err := ParsePaymentRequired([]byte(v2OK))
	if err != nil {
		t.Fatal(err)
	}
	offers, refused := Offers(pr, 8453)
	if len(offers) != 2 || offers[0].Amount.String() != "900" || offers[0].Index != 1 || offers[1].Index != 0 {
		t.Fatalf("offers (cheapest first): %+v", offers)
	}
	if len(refused) != 3 {
		t.Fatalf("refused: %+v", refused)
	}
	want := map[int]string{2: "scheme", 3: "chain 1", 4: "Permit2"}
	for _, r := range refused {
		if !strings.Contains(r.Reason, want[r.Index]) {
			t.Errorf("accepts[%d] refused for %q, want a reason naming %q", r.Index, r.Reason, want[r.Index])
		}
	}
	// on another chain nothing is payable
	if offers, _ := Offers(pr, 1337); len(offers) != 0 {
		t.Fatalf("offers on chain 1337: %+v", offers)
	}
	v1, _ := ParsePaymentRequired([]byte(v1OK))
	if offers, _ := Offers(v1, 8453); len(offers) != 1 || offers[0].Amount.String() != "10000" || offers[0].Name != "USD Coin" {
		t.Fatalf("v1 offers: %+v", offers)
	}
}

func TestChainIDAndAmount(t *testing.T) {
	for n, want := range map[string]int64{"eip155:8453": 8453, "base": 8453, "base-sepolia": 84532, "eip155:1337": 1337} {
		if id, ok := ChainID(n); !ok || id != want {
			t.Errorf("ok/%s: %d %v", n, id, ok)
		}
	}
	for _, n := range []string{"eip155:0", "eip155:01", "eip155:", "solana:abc", "eip155:99999999999999999999", "BASE"} {
		if _, ok := ChainID(n); ok {
			t.Errorf("fail/%s accepted", n)
		}
	}
	for _, s := range []string{"", "-1", "01", "1e3", "0x10", " 1", strings.Repeat("9", 79)} {
		if _, err := ParseAmount(s); err == nil {
			t.Errorf("fail/amount %q accepted", s)
		}
	}
}

// A payment countersign builds verifies; each tampered field is caught.
func TestVerifyRoundTrip(t *testing.T) {
	key, _ := crypto.GenerateKey()
	pr, _ := ParsePaymentRequired([]byte(v2OK))
	offers, _ := Offers(pr, 8453)
	o := &offers[0]
	p := signOffer(t, key, pr, o, 7)
	h, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodePaymentPayload(h)
	if err != nil {
		t.Fatal(err)
	}
	if payer, err := Verify(back, o, time.Now().Unix()); err != nil || payer != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("verify: %v", err)
	}
	other := *o
	other.PayTo = common.HexToAddress("0x0000000000000000000000000000000000000009")
	if _, err := Verify(back, &other, time.Now().Unix()); err == nil {
		t.Fatal("another payTo verified")
	}
	tampered := *back
	tampered.Payload.Authorization.ValidBefore = "99999999999"
	if _, err := Verify(&tampered, o, time.Now().Unix()); err == nil {
		t.Fatal("a changed validBefore verified")
	}
	if _, err := Verify(back, o, time.Now().Add(time.Hour).Unix()); err == nil {
		t.Fatal("an expired authorization verified")
	}
}

func TestParseSettlement(t *testing.T) {
	h := base64.StdEncoding.EncodeToString([]byte(`{"success":true,"transaction":"0xabc","network":"eip155:8453","payer":"0x1"}`))
	s, err := ParseSettlementHeader(h)
	if err != nil || !s.Success || s.Transaction != "0xabc" {
		t.Fatalf("%+v %v", s, err)
	}
	if _, err := ParseSettlement([]byte(`{"success":"yes"}`)); err == nil {
		t.Fatal("a string success accepted")
	}
	if _, err := ParseSettlement([]byte(`{"transaction":"` + strings.Repeat("a", 300) + `"}`)); err == nil {
		t.Fatal("an over-long transaction accepted")
	}
}
