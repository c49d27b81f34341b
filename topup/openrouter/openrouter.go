// Package openrouter is the OpenRouter adapter of the credit top-up port
// (countersign.TopupProvider): it asks OpenRouter's Coinbase charge API for
// a charge (a Coinbase Commerce transfer intent) and reads the account's
// credits. It never signs or sends anything: paying the charge is an
// ordinary agent request that the wallet's policy decides.
package openrouter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/countersign/countersign"
)

// Name is the provider's name in requests, settings and receipts.
const Name = "openrouter"

// DefaultBaseURL is OpenRouter's API origin.
const DefaultBaseURL = "https://openrouter.ai"

// GoneDetail is what the operator is told when the charge endpoint answers
// 410 Gone, as OpenRouter's does since Coinbase retired the Commerce APIs
// behind it: what happened, that nothing was charged, and what to do.
const GoneDetail = "OpenRouter has retired crypto credit top-ups: POST /api/v1/credits/coinbase answers 410 Gone (Coinbase deprecated the Commerce API behind it). " +
	"Nothing was charged or paid, and countersign will not retry. Top up in the OpenRouter dashboard (https://openrouter.ai/settings/credits), " +
	"or pay for requests with x402 (docs/X402.md)"

// maxBody bounds what is read from the provider.
const maxBody = 1 << 20

var _ countersign.TopupProvider = (*Client)(nil)

// Client talks to OpenRouter with one API key.
type Client struct {
	base string
	key  apiKey
	http *http.Client
}

// apiKey holds the OpenRouter key. Its String never reveals it, so a
// logged Client or config cannot leak it.
type apiKey struct{ v string }

func (apiKey) String() string               { return "[redacted]" }
func (apiKey) GoString() string             { return "[redacted]" }
func (apiKey) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }
func (c Client) String() string             { return "openrouter.Client{" + c.base + "}" }
func (c Client) GoString() string           { return c.String() }
func (c Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }
func (c *Client) Name() string              { return Name }

// New returns a client for baseURL (DefaultBaseURL when empty). The URL
// must be https, except on a loopback host (a local fake in tests). hc nil
// uses a client with a 30 s timeout that does not follow redirects (a
// redirect would carry the key elsewhere).
func New(baseURL, key string, hc *http.Client) (*Client, error) {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("OPENROUTER_BASE_URL must be an https origin such as %s", DefaultBaseURL)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("OPENROUTER_BASE_URL must use https (http only on a loopback host): the API key travels in every request")
	}
	if key == "" {
		return nil, errors.New("OPENROUTER_API_KEY is required for OpenRouter top-ups")
	}
	if strings.ContainsAny(key, "\r\n \t") {
		return nil, errors.New("OPENROUTER_API_KEY contains whitespace")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), key: apiKey{key}, http: hc}, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// chargeRequest is the documented request body of POST /api/v1/credits/coinbase.
type chargeRequest struct {
	Amount  json.Number `json:"amount"` // USD, a JSON number
	Sender  string      `json:"sender"`
	ChainID int64       `json:"chain_id"`
}

// chargeResponse is the documented response: the charge and its Coinbase
// Commerce transfer intent.
type chargeResponse struct {
	Data *struct {
		ID        string    `json:"id"`
		CreatedAt flexValue `json:"created_at"`
		ExpiresAt flexValue `json:"expires_at"`
		Web3Data  *struct {
			TransferIntent *struct {
				CallData *struct {
					RecipientAmount   flexValue `json:"recipient_amount"`
					Deadline          flexValue `json:"deadline"`
					Recipient         string    `json:"recipient"`
					RecipientCurrency string    `json:"recipient_currency"`
					RefundDestination string    `json:"refund_destination"`
					FeeAmount         flexValue `json:"fee_amount"`
					ID                string    `json:"id"`
					Operator          string    `json:"operator"`
					Signature         string    `json:"signature"`
					Prefix            string    `json:"prefix"`
				} `json:"call_data"`
				Metadata *struct {
					ChainID         flexValue `json:"chain_id"`
					ContractAddress string    `json:"contract_address"`
					Sender          string    `json:"sender"`
				} `json:"metadata"`
			} `json:"transfer_intent"`
		} `json:"web3_data"`
	} `json:"data"`
}

// flexValue is a JSON string or number, kept as its text: the charge API
// sends amounts and times both ways.
type flexValue string

func (f *flexValue) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*f = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexValue(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("want a string or a number")
	}
	*f = flexValue(n.String())
	return nil
}

// CreateCharge asks OpenRouter for a charge of req.AmountCents.
func (c *Client) CreateCharge(ctx context.Context, req countersign.TopupChargeRequest) (*countersign.TopupCharge, error) {
	if req.AmountCents <= 0 {
		return nil, c.permanent(0, "the amount must be more than zero", nil)
	}
	body, _ := json.Marshal(chargeRequest{Amount: json.Number(countersign.FormatUSD(req.AmountCents)), Sender: req.Sender, ChainID: req.ChainID})
	raw, status, err := c.call(ctx, http.MethodPost, "/api/v1/credits/coinbase", body)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK && status != http.StatusCreated {
		return nil, c.refusal(status, raw)
	}
	return parseCharge(raw)
}

// parseCharge turns the response into a charge, refusing any that lacks a
// field the payment needs: a half-read charge is never paid.
func parseCharge(raw []byte) (*countersign.TopupCharge, error) {
	bad := func(why string) error {
		return &countersign.ProviderError{Provider: Name, Status: http.StatusOK, Permanent: true, Detail: "OpenRouter's charge answer is not a transfer intent countersign can pay: " + why}
	}
	var r chargeResponse
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&r); err != nil {
		return nil, bad("it is not the documented JSON")
	}
	if r.Data == nil || r.Data.Web3Data == nil || r.Data.Web3Data.TransferIntent == nil ||
		r.Data.Web3Data.TransferIntent.CallData == nil || r.Data.Web3Data.TransferIntent.Metadata == nil {
		return nil, bad("data.web3_data.transfer_intent with call_data and metadata is missing")
	}
	d, cd, md := r.Data, r.Data.Web3Data.TransferIntent.CallData, r.Data.Web3Data.TransferIntent.Metadata
	if d.ID == "" || len(d.ID) > 200 {
		return nil, bad("the charge has no id")
	}
	chainID, err := strconv.ParseInt(string(md.ChainID), 10, 64)
	if err != nil || chainID <= 0 {
		return nil, bad("metadata.chain_id is not a chain id")
	}
	deadline, err := unixSeconds(string(cd.Deadline))
	if err != nil {
		return nil, bad("call_data.deadline is neither unix seconds nor an RFC 3339 time")
	}
	ch := &countersign.TopupCharge{ID: d.ID, Contract: md.ContractAddress, Sender: md.Sender, ChainID: chainID,
		Intent: countersign.TransferIntent{RecipientAmount: string(cd.RecipientAmount), Deadline: strconv.FormatInt(deadline, 10),
			Recipient: cd.Recipient, RecipientCurrency: cd.RecipientCurrency, RefundDestination: cd.RefundDestination,
			FeeAmount: string(cd.FeeAmount), ID: cd.ID, Operator: cd.Operator, Signature: cd.Signature, Prefix: cd.Prefix}}
	if ch.Intent.FeeAmount == "" {
		ch.Intent.FeeAmount = "0"
	}
	ch.CreatedAt, _ = parseTime(string(d.CreatedAt))
	ch.ExpiresAt, _ = parseTime(string(d.ExpiresAt))
	return ch, nil
}

// unixSeconds reads a deadline: integer unix seconds, or an RFC 3339 time.
func unixSeconds(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return n, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, err
	}
	return t.Unix(), nil
}

// parseTime reads a charge time: RFC 3339, or unix milliseconds (the SDK's
// examples show those).
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, errors.New("not a time")
	}
	return time.UnixMilli(n).UTC(), nil
}

// Credits reports the remaining credits (total_credits - total_usage) in
// USD cents, rounded down: a threshold check never sees more than there is.
func (c *Client) Credits(ctx context.Context) (int64, error) {
	raw, status, err := c.call(ctx, http.MethodGet, "/api/v1/credits", nil)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, c.refusal(status, raw)
	}
	var r struct {
		Data *struct {
			TotalCredits json.Number `json:"total_credits"`
			TotalUsage   json.Number `json:"total_usage"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Data == nil {
		return 0, &countersign.ProviderError{Provider: Name, Status: status, Detail: "OpenRouter's credits answer is not the documented JSON"}
	}
	total, ok1 := new(big.Rat).SetString(r.Data.TotalCredits.String())
	used, ok2 := new(big.Rat).SetString(r.Data.TotalUsage.String())
	if !ok1 || !ok2 {
		return 0, &countersign.ProviderError{Provider: Name, Status: status, Detail: "OpenRouter's credits are not numbers"}
	}
	left := new(big.Rat).Mul(new(big.Rat).Sub(total, used), big.NewRat(100, 1))
	cents := new(big.Int).Div(left.Num(), left.Denom()) // Euclidean: rounds down, also below zero
	if !cents.IsInt64() {
		return 0, &countersign.ProviderError{Provider: Name, Status: status, Detail: "OpenRouter's credits are out of range"}
	}
	return cents.Int64(), nil
}

// call sends one request with the key and reads at most maxBody of the
// answer. Transport errors are transient ProviderErrors without the URL's
// secrets (there are none in it: the key is a header).
func (c *Client) call(ctx context.Context, method, path string, body []byte) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key.v)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, 0, &countersign.ProviderError{Provider: Name, Detail: "OpenRouter could not be reached; countersign tries again later", Err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		return nil, res.StatusCode, &countersign.ProviderError{Provider: Name, Status: res.StatusCode, Detail: "OpenRouter's answer could not be read; countersign tries again later", Err: err}
	}
	if len(raw) > maxBody {
		return nil, res.StatusCode, &countersign.ProviderError{Provider: Name, Status: res.StatusCode, Permanent: true, Detail: "OpenRouter's answer is larger than 1 MiB"}
	}
	return raw, res.StatusCode, nil
}

// refusal classifies a non-success answer. 410 is the retired endpoint
// (permanent, explained); other 4xx but 408 and 429 are permanent (the key,
// the amount or the request is refused and will be again); 408, 429 and
// 5xx are transient.
func (c *Client) refusal(status int, raw []byte) error {
	msg := c.providerMessage(raw)
	switch {
	case status == http.StatusGone:
		d := GoneDetail
		if msg != "" {
			d += ". OpenRouter said: " + msg
		}
		return c.permanent(status, d, nil)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return c.permanent(status, fmt.Sprintf("OpenRouter refused the API key (HTTP %d): check OPENROUTER_API_KEY. %s", status, msg), nil)
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return &countersign.ProviderError{Provider: Name, Status: status, Detail: fmt.Sprintf("OpenRouter answered HTTP %d; countersign tries again later. %s", status, msg)}
	default:
		return c.permanent(status, fmt.Sprintf("OpenRouter refused the charge (HTTP %d). %s", status, msg), nil)
	}
}

func (c *Client) permanent(status int, detail string, err error) error {
	return &countersign.ProviderError{Provider: Name, Status: status, Permanent: true, Detail: strings.TrimSpace(detail), Err: err}
}

// providerMessage is the error message of an answer, made safe to show:
// the key removed should the provider echo it, control and format
// characters dropped, at most 300 characters.
func (c *Client) providerMessage(raw []byte) string {
	var e struct {
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error == nil {
		return ""
	}
	m := strings.ReplaceAll(e.Error.Message, c.key.v, "[redacted]")
	m = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, m)
	if r := []rune(m); len(r) > 300 {
		m = string(r[:300]) + "…"
	}
	return strings.TrimSpace(m)
}
