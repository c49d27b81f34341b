package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// Fuzzers for every parser of what a resource server (or a payer) sends.
// Each must never panic; what parses must survive a round trip.

func FuzzParsePaymentRequired(f *testing.F) {
	for _, s := range []string{v2OK, v1OK, `{"x402Version":2,"accepts":[{}]}`, `{"x402Version":1e400}`, `[]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pr, err := ParsePaymentRequired(b)
		if err != nil {
			return
		}
		if pr.X402Version != 1 && pr.X402Version != 2 || len(pr.Accepts) == 0 || len(pr.Accepts) > MaxAccepts {
			t.Fatalf("accepted a bad shape: %+v", pr)
		}
		offers, refused := Offers(pr, 8453)
		if len(offers)+len(refused) != len(pr.Accepts) {
			t.Fatalf("%d offers + %d refused for %d requirements", len(offers), len(refused), len(pr.Accepts))
		}
		for _, o := range offers {
			if o.Amount.Sign() <= 0 || o.Amount.BitLen() > 256 || o.ChainID != 8453 || o.Req.Scheme != SchemeExact {
				t.Fatalf("bad offer %+v", o)
			}
		}
		// re-encoding the requirements as sent parses to the same offers
		acc := make([]json.RawMessage, len(pr.Accepts))
		for i, r := range pr.Accepts {
			acc[i] = r.Raw
		}
		again, err := json.Marshal(map[string]any{"x402Version": pr.X402Version, "accepts": acc})
		if err != nil {
			t.Fatal(err)
		}
		pr2, err := ParsePaymentRequired(again)
		if err != nil || len(pr2.Accepts) != len(pr.Accepts) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range pr.Accepts {
			if pr.Accepts[i].Price() != pr2.Accepts[i].Price() || pr.Accepts[i].PayTo != pr2.Accepts[i].PayTo {
				t.Fatalf("round trip changed accepts[%d]", i)
			}
		}
	})
}

func FuzzParsePaymentRequiredHeader(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString([]byte(v2OK)))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(v2OK)))
	f.Add("%%%")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		pr, err := ParsePaymentRequiredHeader(h)
		if err == nil && pr.X402Version != 2 {
			t.Fatalf("a v%d header accepted", pr.X402Version)
		}
	})
}

func FuzzDecodePaymentPayload(f *testing.F) {
	f.Add(`{"x402Version":2,"accepted":{"scheme":"exact"},"payload":{"signature":"0x` + string(bytes.Repeat([]byte("ab"), 65)) + `","authorization":{"from":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","to":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","value":"1","validAfter":"0","validBefore":"9","nonce":"0x` + string(bytes.Repeat([]byte("00"), 32)) + `"}}}`)
	f.Add(`{"x402Version":1,"scheme":"exact","network":"base","payload":{}}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, in := range []string{s, base64.StdEncoding.EncodeToString([]byte(s))} {
			p, err := DecodePaymentPayload(in)
			if err != nil {
				continue
			}
			a, err := p.Authorization()
			if err != nil {
				t.Fatalf("a payload whose authorization does not parse was accepted: %v", err)
			}
			enc, err := p.Encode()
			if err != nil {
				t.Fatal(err)
			}
			p2, err := DecodePaymentPayload(enc)
			if err != nil {
				t.Fatalf("round trip: %v", err)
			}
			a2, _ := p2.Authorization()
			if a.Value.Cmp(a2.Value) != 0 || a.Nonce != a2.Nonce || a.To != a2.To || p.Payload.Signature != p2.Payload.Signature {
				t.Fatal("round trip changed the authorization")
			}
		}
	})
}

func FuzzParseSettlementHeader(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"success":true,"transaction":"0xabc","network":"eip155:8453"}`)))
	f.Add("e30")
	f.Add("!!")
	f.Fuzz(func(t *testing.T, h string) {
		s, err := ParseSettlementHeader(h)
		if err != nil {
			return
		}
		if len(s.Transaction) > 256 || len(s.ErrorReason) > maxField {
			t.Fatal("unbounded field accepted")
		}
	})
}
