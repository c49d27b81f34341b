package core

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/x402"
)

// The HTTP transport of x402 (POST /api/x402/fetch, countersign x402
// fetch): the agent's request, sent through the guarded client.

// X402FetchRequest is POST /api/x402/fetch's body.
type X402FetchRequest struct {
	URL           string            `json:"url"`
	Method        string            `json:"method,omitempty"`  // default GET
	Headers       map[string]string `json:"headers,omitempty"` // sent as given (no payment, hop-by-hop or Host headers)
	Body          string            `json:"body,omitempty"`    // the request body, as text
	MaxAmount     string            `json:"max_amount,omitempty"`
	TransactionID string            `json:"transaction_id,omitempty"` // resume a payment approved since
}

// X402FetchResult is its answer.
type X402FetchResult struct {
	Status        int               `json:"status"`
	Headers       map[string]string `json:"headers"`
	Body          string            `json:"body"`
	BodyEncoding  string            `json:"body_encoding"` // text or base64
	Truncated     bool              `json:"truncated,omitempty"`
	Payment       *X402PaymentView  `json:"payment"`
	TransactionID string            `json:"transaction_id,omitempty"`
}

// MaxX402RequestBody bounds the body an agent sends to a resource.
const MaxX402RequestBody = 128 << 10

var x402Methods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "HEAD": true}

// refusedHeaders may not be set by the agent: payment headers are the
// server's to write, and the rest are the transport's.
var refusedHeaders = map[string]bool{"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true, "Upgrade": true,
	"Te": true, "Trailer": true, "Keep-Alive": true, "Proxy-Authorization": true, "Proxy-Connection": true,
	"Payment-Signature": true, "X-Payment": true}

// X402Fetch requests a URL for the agent p and pays for it if it answers
// 402 (X402Pay). The answer's Payment is nil when nothing was paid; a
// pending payment comes back as pending with its transaction.
func (s *Service) X402Fetch(ctx context.Context, p *Principal, req *X402FetchRequest, wait time.Duration) (*X402FetchResult, *countersign.Transaction, error) {
	tr, err := s.newX402HTTP(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	out, err := s.X402Pay(ctx, p, tr, X402PayRequest{Resource: tr.url, Method: tr.method, MaxAmount: req.MaxAmount, TransactionID: req.TransactionID}, wait)
	if err != nil {
		return nil, nil, err
	}
	if out.Pending != nil {
		return nil, out.Pending, nil
	}
	a, _ := out.Response.Answer.(*httpAnswer)
	if a == nil {
		return nil, nil, countersign.Errorf(countersign.Internal, "x402: no answer")
	}
	res := &X402FetchResult{Status: a.status, Headers: a.headers, Truncated: a.truncated, Payment: out.Payment}
	if out.Payment != nil {
		res.TransactionID = out.Payment.TransactionID
	}
	if utf8.Valid(a.body) && !bytes.ContainsRune(a.body, 0) {
		res.Body, res.BodyEncoding = string(a.body), "text"
	} else {
		res.Body, res.BodyEncoding = base64.StdEncoding.EncodeToString(a.body), "base64"
	}
	return res, nil, nil
}

type x402HTTP struct {
	s       *Service
	url     string
	method  string
	headers map[string]string
	body    []byte
}

type httpAnswer struct {
	status    int
	headers   map[string]string
	body      []byte
	truncated bool
}

func (s *Service) newX402HTTP(ctx context.Context, req *X402FetchRequest) (*x402HTTP, error) {
	if err := s.X402CheckURL(ctx, "url", req.URL); err != nil {
		return nil, err
	}
	m := strings.ToUpper(req.Method)
	if m == "" {
		m = "GET"
	}
	if !x402Methods[m] {
		return nil, countersign.Errorf(countersign.BadRequest, "method must be GET, POST, PUT, PATCH, DELETE or HEAD")
	}
	if len(req.Body) > MaxX402RequestBody {
		return nil, countersign.Errorf(countersign.TooLarge, "body is larger than %d KiB", MaxX402RequestBody>>10)
	}
	if len(req.Headers) > 32 {
		return nil, countersign.Errorf(countersign.BadRequest, "at most 32 headers")
	}
	h := map[string]string{}
	for k, v := range req.Headers {
		name := textproto.CanonicalMIMEHeaderKey(k)
		if !validHeaderName(k) || len(k) > 128 || len(v) > 8<<10 || strings.ContainsAny(v, "\r\n\x00") {
			return nil, countersign.Errorf(countersign.BadRequest, "header %q is not a valid HTTP header (name a token, value without line breaks, at most 8 KiB)", truncate(k, 40))
		}
		if refusedHeaders[name] {
			return nil, countersign.Errorf(countersign.BadRequest, "header %s cannot be set: the payment headers are countersign's to write, the others the transport's", name)
		}
		h[name] = v
	}
	return &x402HTTP{s: s, url: req.URL, method: m, headers: h, body: []byte(req.Body)}, nil
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if c > 126 || c <= 32 || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", c) {
			return false
		}
	}
	return true
}

func upstream(err error, format string, args ...any) error {
	return countersign.Wrap(countersign.UpstreamError, err, fmt.Sprintf(format, args...))
}

// Do sends the request (with the payment in its version's header) and
// reads the answer: at most MaxResponse bytes of body, the payment the
// server asks for on a 402, the settlement it reports.
func (h *x402HTTP) Do(ctx context.Context, payment *x402.PaymentPayload) (*X402Response, error) {
	var body io.Reader
	if len(h.body) > 0 {
		body = bytes.NewReader(h.body)
	}
	req, err := http.NewRequestWithContext(ctx, h.method, h.url, body)
	if err != nil {
		return nil, countersign.Errorf(countersign.BadRequest, "url cannot be requested")
	}
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "countersign-x402/1")
	}
	if payment != nil {
		enc, err := payment.Encode()
		if err != nil {
			return nil, err
		}
		req.Header.Set(payment.Header(), enc)
	}
	resp, err := h.s.x402.client.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout"):
			return nil, upstream(err, "the resource did not answer in time")
		default:
			return nil, upstream(err, "the resource cannot be reached (%s)", deliveryErrorClass(err))
		}
	}
	defer resp.Body.Close()
	max := h.s.x402.cfg.MaxResponse
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, upstream(err, "the resource's answer could not be read")
	}
	a := &httpAnswer{status: resp.StatusCode, headers: map[string]string{}}
	if int64(len(b)) > max {
		b, a.truncated = b[:max], true
	}
	a.body = b
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(a.headers) < 64 {
			a.headers[k] = truncate(strings.Join(resp.Header.Values(k), ", "), 8<<10)
		}
	}
	out := &X402Response{Answer: a}
	for _, name := range []string{x402.HeaderPaymentResponse, x402.HeaderXPaymentResponse} {
		if v := resp.Header.Get(name); v != "" {
			st, err := x402.ParseSettlementHeader(v)
			if err != nil {
				return nil, upstream(err, "the resource's %s header is not a settlement (%s)", name, errText(err))
			}
			out.Settlement = st
			break
		}
	}
	if resp.StatusCode != http.StatusPaymentRequired {
		return out, nil
	}
	if v := resp.Header.Get(x402.HeaderPaymentRequired); v != "" {
		pr, err := x402.ParsePaymentRequiredHeader(v)
		if err != nil {
			return nil, upstream(err, "the resource's %s header is not x402 payment requirements (%s)", x402.HeaderPaymentRequired, errText(err))
		}
		out.Required = pr
		return out, nil
	}
	if a.truncated {
		return nil, upstream(nil, "the resource answered 402 with a body too large to read")
	}
	pr, err := x402.ParsePaymentRequired(b)
	if err != nil {
		return nil, upstream(err, "the resource answered 402 without x402 payment requirements (%s)", errText(err))
	}
	if pr.X402Version != 1 {
		return nil, upstream(nil, "the resource answered 402 with x402Version %d requirements in its body: v2 sends them in the %s header", pr.X402Version, x402.HeaderPaymentRequired)
	}
	out.Required = pr
	return out, nil
}

// errText is a parser's error, which names fields, never input bytes.
func errText(err error) string {
	return strings.TrimPrefix(err.Error(), "x402: invalid message: ")
}
