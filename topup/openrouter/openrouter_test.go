package openrouter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

const testKey = "sk-or-v1-secret-test-key"

// chargeBody is a charge answer in the documented shape (snake case on
// the wire; the deadline as an RFC 3339 time, as Commerce sent it).
const chargeBody = `{"data":{"id":"chg_123","created_at":"2024-08-01T10:00:00Z","expires_at":"2024-08-01T11:00:00Z",
 "web3_data":{"transfer_intent":{"call_data":{"deadline":"2024-08-01T11:00:00Z","fee_amount":"30000000000000",
 "id":"0x0123456789abcdef0123456789abcdef","operator":"0x8fccCc8B5fA2b2b1C6f3A8e4f7C3E8f6d1a9B0c1","prefix":"",
 "recipient":"0x1111111111111111111111111111111111111111","recipient_amount":"3000000000000000",
 "recipient_currency":"0x0000000000000000000000000000000000000000","refund_destination":"0x2222222222222222222222222222222222222222",
 "signature":"0xabcdef"},"metadata":{"chain_id":8453,"contract_address":"0x131642c019AF815Ae5F9926272A70C84AE5C37ab","sender":"0x2222222222222222222222222222222222222222"}}}}}`

func fake(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, testKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCreateCharge(t *testing.T) {
	var got map[string]any
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/api/v1/credits/coinbase" || r.Header.Get("Authorization") != "Bearer "+testKey || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s %s %v", r.Method, r.URL.Path, r.Header)
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &got); err != nil {
			t.Error(err)
		}
		if !strings.Contains(string(b), `"amount":12.50`) {
			t.Errorf("amount is not the JSON number 12.50: %s", b)
		}
		w.WriteHeader(201)
		fmt.Fprint(w, chargeBody)
	})
	ch, err := c.CreateCharge(context.Background(), countersign.TopupChargeRequest{AmountCents: 1250, Sender: "0x2222222222222222222222222222222222222222", ChainID: 8453})
	if err != nil {
		t.Fatal(err)
	}
	if got["sender"] != "0x2222222222222222222222222222222222222222" || got["chain_id"] != float64(8453) || len(got) != 3 {
		t.Fatalf("request body: %v", got)
	}
	in := ch.Intent
	if ch.ID != "chg_123" || ch.ChainID != 8453 || ch.Contract != "0x131642c019AF815Ae5F9926272A70C84AE5C37ab" ||
		in.Deadline != fmt.Sprint(time.Date(2024, 8, 1, 11, 0, 0, 0, time.UTC).Unix()) || in.RecipientAmount != "3000000000000000" ||
		in.FeeAmount != "30000000000000" || in.ID != "0x0123456789abcdef0123456789abcdef" || !ch.ExpiresAt.Equal(time.Date(2024, 8, 1, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("charge: %+v", ch)
	}
}

// The real endpoint answers 410 Gone: a permanent ProviderError that says
// what happened and what to do, after exactly one call.
func TestCreateChargeGone(t *testing.T) {
	var calls atomic.Int32
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(410)
		fmt.Fprint(w, `{"error":{"code":410,"message":"The Coinbase APIs used by this endpoint have been deprecated, so the Coinbase Commerce credits API has been removed. Use the web credits purchase flow instead."}}`)
	})
	_, err := c.CreateCharge(context.Background(), countersign.TopupChargeRequest{AmountCents: 500, Sender: "0x2222222222222222222222222222222222222222", ChainID: 8453})
	var pe *countersign.ProviderError
	if !errors.As(err, &pe) || !pe.Permanent || pe.Status != 410 {
		t.Fatalf("410: %#v", err)
	}
	for _, want := range []string{"410 Gone", "OpenRouter dashboard", "x402", "will not retry", "web credits purchase flow"} {
		if !strings.Contains(pe.Detail, want) {
			t.Fatalf("detail lacks %q: %s", want, pe.Detail)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("%d calls", calls.Load())
	}
}

func TestRefusalsClassified(t *testing.T) {
	for name, tc := range map[string]struct {
		status    int
		permanent bool
	}{
		"fail/401 key":       {401, true},
		"fail/403 key":       {403, true},
		"fail/400 amount":    {400, true},
		"fail/404":           {404, true},
		"retry/408":          {408, false},
		"retry/429":          {429, false},
		"retry/500":          {500, false},
		"retry/503":          {503, false},
		"fail/302 redirect":  {302, true}, // never followed: the key would go with it
		"fail/200 not JSON!": {200, true},
	} {
		t.Run(name, func(t *testing.T) {
			c := fake(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.status == 302 {
					http.Redirect(w, r, "http://127.0.0.1:1/steal", http.StatusFound)
					return
				}
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `{"error":{"code":%d,"message":"echo %s\u202e\u0007"}}`, tc.status, testKey)
			})
			_, err := c.CreateCharge(context.Background(), countersign.TopupChargeRequest{AmountCents: 100, Sender: "0x2222222222222222222222222222222222222222", ChainID: 1})
			var pe *countersign.ProviderError
			if !errors.As(err, &pe) || pe.Permanent != tc.permanent {
				t.Fatalf("got %#v", err)
			}
			if strings.Contains(pe.Detail, testKey) || strings.Contains(err.Error(), testKey) || strings.ContainsAny(pe.Detail, "\u202e\u0007") {
				t.Fatalf("the detail leaks the key or control characters: %q", pe.Detail)
			}
		})
	}
}

func TestTransportErrorIsTransient(t *testing.T) {
	c, err := New("http://127.0.0.1:1", testKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateCharge(context.Background(), countersign.TopupChargeRequest{AmountCents: 100, Sender: "0x2222222222222222222222222222222222222222", ChainID: 1})
	var pe *countersign.ProviderError
	if !errors.As(err, &pe) || pe.Permanent || strings.Contains(err.Error(), testKey) {
		t.Fatalf("transport error: %#v", err)
	}
}

func TestCredits(t *testing.T) {
	for name, tc := range map[string]struct {
		body string
		want int64
	}{
		"ok/plain":        {`{"data":{"total_credits":100,"total_usage":25.5}}`, 7450},
		"ok/rounded down": {`{"data":{"total_credits":1.009,"total_usage":0}}`, 100},
		"ok/overdrawn":    {`{"data":{"total_credits":1,"total_usage":1.001}}`, -1},
	} {
		t.Run(name, func(t *testing.T) {
			c := fake(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != "GET" || r.URL.Path != "/api/v1/credits" || r.Header.Get("Authorization") != "Bearer "+testKey {
					t.Errorf("request %s %s", r.Method, r.URL.Path)
				}
				fmt.Fprint(w, tc.body)
			})
			got, err := c.Credits(context.Background())
			if err != nil || got != tc.want {
				t.Fatalf("Credits = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	for name, tc := range map[string]struct{ url, key string }{
		"fail/plain http elsewhere": {"http://openrouter.ai", testKey},
		"fail/no key":               {"", ""},
		"fail/userinfo":             {"https://user:pw@openrouter.ai", testKey},
		"fail/not a URL":            {"openrouter.ai", testKey},
		"fail/key with newline":     {"", "sk\nInjected: yes"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(tc.url, tc.key, nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	c, err := New("", testKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(*c)} {
		if strings.Contains(s, testKey) {
			t.Fatalf("the key is in %q", s)
		}
	}
}

func TestParseChargeRefusesIncomplete(t *testing.T) {
	for name, body := range map[string]string{
		"fail/empty":        `{}`,
		"fail/no intent":    `{"data":{"id":"x","web3_data":{}}}`,
		"fail/no metadata":  `{"data":{"id":"x","web3_data":{"transfer_intent":{"call_data":{"deadline":"1"}}}}}`,
		"fail/bad chain id": strings.Replace(chargeBody, `"chain_id":8453`, `"chain_id":"base"`, 1),
		"fail/bad deadline": strings.Replace(chargeBody, `"deadline":"2024-08-01T11:00:00Z"`, `"deadline":"soon"`, 1),
		"fail/no id":        strings.Replace(chargeBody, `"id":"chg_123"`, `"id":""`, 1),
		"fail/not JSON":     `<html>`,
	} {
		t.Run(name, func(t *testing.T) {
			var pe *countersign.ProviderError
			if _, err := parseCharge([]byte(body)); !errors.As(err, &pe) || !pe.Permanent {
				t.Fatalf("accepted: %v", err)
			}
		})
	}
}

// FuzzParseCharge: no input panics, and an accepted charge always has the
// fields a payment needs.
func FuzzParseCharge(f *testing.F) {
	f.Add([]byte(chargeBody))
	f.Add([]byte(`{"data":{"id":"x","web3_data":{"transfer_intent":{"call_data":{"deadline":1},"metadata":{"chain_id":1}}}}}`))
	f.Add([]byte(`{"data":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, err := parseCharge(b)
		if err != nil {
			return
		}
		if ch.ID == "" || ch.ChainID <= 0 || ch.Intent.Deadline == "" || ch.Intent.FeeAmount == "" {
			t.Fatalf("accepted an incomplete charge: %+v", ch)
		}
	})
}
