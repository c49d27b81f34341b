package core

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
	"github.com/countersign/countersign/netguard"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/x402"
)

// x402 payments, client side (docs/X402.md). An agent asks for a paid
// resource; when it answers 402 the server picks one `exact` EVM
// requirement on this chain, builds an EIP-3009 authorization for it and
// stores it as a request of kind x402 (countersign.TxX402): the typed data
// is the request's message, so the digest an approval binds is exactly
// what gets signed. The policy decides it like an ERC-20 transfer of the
// amount to payTo; "executing" it is signing it and sending it to the
// resource server, once, in the change that moves it to signed and writes
// its charge receipt. Every refusal happens before anything is signed.

// X402Config configures x402 payments.
type X402Config struct {
	// AllowNets are internal networks a fetch may reach (X402_ALLOW_NETS),
	// as WEBHOOK_ALLOW_NETS is for webhooks: by default every loopback,
	// private, link-local and metadata address is refused.
	AllowNets []netip.Prefix
	// Resolver resolves fetch hosts (nil: the system's); tests inject one.
	Resolver netguard.Resolver
	// MaxValidity caps an authorization's validBefore: now + the smaller
	// of the requirement's maxTimeoutSeconds and this (X402_MAX_VALIDITY,
	// default 10m). A pending payment expires with its authorization.
	MaxValidity time.Duration
	// MaxResponse bounds a resource's response body (X402_MAX_RESPONSE_BYTES,
	// default 4 MiB); Timeout bounds each request to it (X402_TIMEOUT,
	// default 30s).
	MaxResponse int64
	Timeout     time.Duration
}

func (c *X402Config) defaults() {
	if c.MaxValidity <= 0 {
		c.MaxValidity = 10 * time.Minute
	}
	if c.MaxResponse <= 0 {
		c.MaxResponse = 4 << 20
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
}

// x402State is the service's x402 state: the guarded HTTP client.
type x402State struct {
	cfg    X402Config
	guard  *netguard.Guard
	client *http.Client
}

// initX402 is called once by New.
func (s *Service) initX402(ctx context.Context) error {
	cfg := s.cfg.X402
	cfg.defaults()
	g := &netguard.Guard{Allow: cfg.AllowNets, Resolver: cfg.Resolver}
	s.x402 = x402State{cfg: cfg, guard: g, client: guardedClient(g, cfg.Timeout)}
	return nil
}

// X402Client is the HTTP client fetches go through (the MCP transport
// uses it too): no proxy from the environment, no redirects, every
// connection held to the X402_ALLOW_NETS address policy before dialing
// and again on the socket's address (DNS rebinding), bounded times.
func (s *Service) X402Client() *http.Client { return s.x402.client }

// X402CheckURL checks a resource URL's shape and its host's addresses
// under the fetch address policy.
func (s *Service) X402CheckURL(ctx context.Context, field, raw string) error {
	u, err := netguard.ParseURL(raw)
	if err != nil {
		return countersign.Errorf(countersign.BadRequest, "%s must be an http(s) URL with a host and without credentials or fragment, at most %d bytes", field, netguard.MaxURL)
	}
	_, err = s.x402.guard.Resolve(ctx, u.Hostname())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, netguard.ErrRefusedAddress):
		return countersign.Wrap(countersign.BadRequest, err, field+" is or resolves to an internal address (loopback, private, link-local, metadata…): x402 fetches go to public servers unless X402_ALLOW_NETS lists the network")
	case countersign.ErrorCode(err) == countersign.BadRequest:
		return err
	default:
		return countersign.Wrap(countersign.BadRequest, err, field+" host does not resolve")
	}
}

func guardedClient(g *netguard.Guard, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error { return g.CheckDialAddr(address) }}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			ips, err := g.Resolve(ctx, host)
			if err != nil {
				return nil, err
			}
			var errs []error
			for _, ip := range ips {
				c, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
				if err == nil {
					return c, nil
				}
				errs = append(errs, err)
			}
			return nil, errors.Join(errs...)
		},
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           16,
		IdleConnTimeout:        90 * time.Second,
	}
	return &http.Client{Timeout: timeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// X402Transport carries one resource's requests: HTTP here, MCP in the
// mcp package. Do sends the request, with the payment when it is not nil.
type X402Transport interface {
	Do(ctx context.Context, payment *x402.PaymentPayload) (*X402Response, error)
}

// X402Response is a resource's answer: the payment it asks for (nil when
// it asks none), the settlement it reports (nil when none), and the
// transport's own answer for the caller.
type X402Response struct {
	Required   *x402.PaymentRequired
	Settlement *x402.Settlement
	Answer     any
}

// X402PayRequest is what the agent asks: the resource (a URL, or
// mcp:<server>#<tool>) and its method, the most it will pay (base units;
// required to pay anything), and, to resume a payment a human has
// approved since, its transaction_id.
type X402PayRequest struct {
	Resource      string
	Method        string
	MaxAmount     string
	TransactionID string
}

// X402PaymentView is a payment as the API shows it.
type X402PaymentView struct {
	TransactionID string           `json:"transaction_id"`
	Status        string           `json:"status"` // prepared, sent, settled, failed
	Version       int              `json:"x402_version"`
	Scheme        string           `json:"scheme"`
	Network       string           `json:"network"`
	Asset         string           `json:"asset"`
	Amount        string           `json:"amount"`
	PayTo         string           `json:"pay_to"`
	Nonce         string           `json:"nonce"`
	ValidBefore   time.Time        `json:"valid_before"`
	Decision      string           `json:"decision"`
	RuleID        string           `json:"rule_id"`
	Transaction   string           `json:"settlement_tx,omitempty"`
	Settlement    *x402.Settlement `json:"settlement"`
}

// X402Outcome is the result of one pay call: the resource's answer, and
// the payment if one was made. Pending is set (and nothing was signed)
// when the payment waits for a human, a quorum or a delay.
type X402Outcome struct {
	Response *X402Response
	Payment  *X402PaymentView
	Pending  *countersign.Transaction
}

func refused(format string, args ...any) error {
	return countersign.Errorf(countersign.PaymentRefused, format, args...)
}

// X402Pay requests a resource through tr and pays for it if it asks:
// the one entry point of every x402 transport. p is an agent (http:
// Agent on /api/x402/fetch; mcp: agents only). wait bounds how long it
// waits for a human's decision before answering with Pending.
func (s *Service) X402Pay(ctx context.Context, p *Principal, tr X402Transport, req X402PayRequest, wait time.Duration) (*X402Outcome, error) {
	if !p.IsAgent() {
		return nil, countersign.Errorf(countersign.Forbidden, "only an agent pays for resources")
	}
	var maxAmount *big.Int
	if req.MaxAmount != "" {
		v, err := countersign.ParseAmount("max_amount", req.MaxAmount)
		if err != nil {
			return nil, err
		}
		maxAmount = v
	}
	if req.TransactionID != "" {
		return s.x402Resume(ctx, p, tr, req, maxAmount, wait)
	}
	if err := s.frozen(ctx, p.User.ID, p.Agent.WalletID); err != nil {
		return nil, err
	}
	res, err := tr.Do(ctx, nil)
	if err != nil {
		return nil, err
	}
	if res.Required == nil {
		return &X402Outcome{Response: res}, nil
	}
	w, err := s.store.WalletByID(ctx, p.Agent.WalletID)
	if err != nil {
		return nil, err
	}
	o, err := s.x402Choose(ctx, p, w, res.Required, maxAmount)
	if err != nil {
		return nil, err
	}
	t, pay, err := s.x402Prepare(ctx, p, w, req, res.Required, o)
	if err != nil {
		return nil, err
	}
	if t, err = s.x402Wait(ctx, p, t, wait); err != nil {
		return nil, err
	}
	if t.Status == countersign.StatusPending {
		return &X402Outcome{Pending: t, Payment: x402View(t, pay)}, nil
	}
	if t.Status != countersign.StatusAuthorized {
		return nil, refused("the payment request %s was %s: nothing was signed", t.ID, t.Status)
	}
	return s.x402Send(ctx, p, tr, t, pay, res.Required, o)
}

// x402Choose picks the cheapest requirement countersign can pay that
// max_amount covers and the policy does not deny (a dry run: no budget
// is reserved until the chosen one is prepared).
func (s *Service) x402Choose(ctx context.Context, p *Principal, w *countersign.Wallet, pr *x402.PaymentRequired, maxAmount *big.Int) (*x402.Offer, error) {
	offers, refusals := x402.Offers(pr, s.chainID.Int64())
	if len(offers) == 0 {
		why := make([]string, 0, len(refusals))
		for _, r := range refusals {
			why = append(why, fmt.Sprintf("accepts[%d]: %s", r.Index, r.Reason))
		}
		return nil, refused("the resource asks for no payment countersign can make on chain %s: %s", s.chainID, strings.Join(why, "; "))
	}
	if maxAmount == nil {
		return nil, refused("the resource asks for %s of %s: give max_amount (base units) to pay", offers[0].Amount, offers[0].Asset.Hex())
	}
	var denied error
	for i := range offers {
		o := &offers[i]
		if o.Amount.Cmp(maxAmount) > 0 {
			continue
		}
		t := s.x402Row(p, w, o, &x402.Authorization{From: common.HexToAddress(w.Address), To: o.PayTo, Value: o.Amount, ValidAfter: new(big.Int), ValidBefore: new(big.Int)}, "")
		if d := s.decide(ctx, t, false); d.outcome == policy.Deny {
			if denied == nil {
				denied = &countersign.Error{Code: countersign.PolicyDenied, RuleID: d.ruleID,
					Detail: fmt.Sprintf("the %s policy's rule %q denies paying %s of %s to %s", d.level, d.ruleID, o.Amount, o.Asset.Hex(), o.PayTo.Hex())}
			}
			continue
		}
		return o, nil
	}
	if denied != nil {
		return nil, denied
	}
	return nil, refused("the resource asks for at least %s of %s, more than max_amount %s: nothing was signed", offers[0].Amount, offers[0].Asset.Hex(), maxAmount)
}

// x402Row is the request row of an authorization (not stored).
func (s *Service) x402Row(p *Principal, w *countersign.Wallet, o *x402.Offer, a *x402.Authorization, memo string) *countersign.Transaction {
	td := x402.TypedData(o, a)
	msg, _ := json.Marshal(td)
	t := &countersign.Transaction{ID: newTxID(), OwnerID: w.OwnerID, AgentID: p.Agent.ID, WalletID: w.ID, ChainID: s.chainID.Int64(),
		Type: countersign.TxX402, From: w.Address, To: o.PayTo.Hex(), Amount: o.Amount.String(), TokenAddress: o.Asset.Hex(),
		Message: string(msg), TxValue: "0", Memo: memo}
	t.Digest = Digest(t)
	return t
}

// x402Memo is what the approver reads about the payment: the method and
// resource, with anything CheckText refuses replaced.
func x402Memo(method, resource string) string {
	m := "x402 payment for " + method + " " + resource
	var b strings.Builder
	for _, r := range m {
		if CheckText("memo", string(r), 4, false) != nil {
			r = '?'
		}
		b.WriteRune(r)
	}
	return truncate(b.String(), MaxMemo-8)
}

// x402Prepare builds the authorization for o (a fresh random nonce,
// bounded validity), stores it as a request the policy decides, and
// records the payment with its nonce.
func (s *Service) x402Prepare(ctx context.Context, p *Principal, w *countersign.Wallet, req X402PayRequest, pr *x402.PaymentRequired, o *x402.Offer) (*countersign.Transaction, *countersign.X402Payment, error) {
	now := s.clock.Now().UTC()
	validity := s.x402.cfg.MaxValidity
	if o.Req.MaxTimeoutSeconds > 0 && time.Duration(o.Req.MaxTimeoutSeconds)*time.Second < validity {
		validity = time.Duration(o.Req.MaxTimeoutSeconds) * time.Second
	}
	validBefore := now.Add(validity).Truncate(time.Second)
	a := &x402.Authorization{From: common.HexToAddress(w.Address), To: o.PayTo, Value: o.Amount,
		// ten minutes back, as the reference client does: the chain's clock
		// may lag this server's
		ValidAfter: big.NewInt(now.Add(-10 * time.Minute).Unix()), ValidBefore: big.NewInt(validBefore.Unix())}
	for i := 0; ; i++ {
		if _, err := rand.Read(a.Nonce[:]); err != nil {
			return nil, nil, err
		}
		used, err := s.store.X402NonceUsed(ctx, x402.NonceHex(a.Nonce))
		if err != nil {
			return nil, nil, err
		}
		if !used {
			break
		}
		if i == 3 {
			return nil, nil, countersign.Errorf(countersign.Internal, "no fresh authorization nonce")
		}
	}
	t := s.x402Row(p, w, o, a, x402Memo(req.Method, req.Resource))
	t.Status, t.CreatedAt, t.UpdatedAt = countersign.StatusPending, now, now
	// The request can be approved only while its authorization is valid.
	t.ExpiresAt = now.Add(s.cfg.PendingTTL)
	if limit := validBefore.Add(-10 * time.Second); limit.Before(t.ExpiresAt) {
		t.ExpiresAt = limit
	}
	if err := s.preparePolicy(ctx, t, p.Actor()); err != nil {
		return nil, nil, err
	}
	resInfo := ""
	if len(pr.Resource) > 0 {
		resInfo = string(pr.Resource)
	}
	pay := &countersign.X402Payment{TransactionID: t.ID, OwnerID: t.OwnerID, AgentID: t.AgentID, WalletID: t.WalletID, Nonce: x402.NonceHex(a.Nonce),
		Resource: req.Resource, Method: req.Method, Version: pr.X402Version, Requirement: string(o.Req.Raw), ResourceInfo: resInfo,
		Quote: o.Amount.String(), Amount: o.Amount.String(), Asset: o.Asset.Hex(), PayTo: o.PayTo.Hex(), Network: o.Req.Network,
		ValidBefore: validBefore, Status: countersign.X402Prepared, CreatedAt: now, UpdatedAt: now}
	// Not cancelled with the request: the request above is authorized
	// already (its budget reserved), and without this row it is never paid.
	if err := s.store.AddX402Payment(context.WithoutCancel(ctx), pay); err != nil {
		// Without its payment row the request is never signed
		// (x402Send refuses it): it only waits to expire.
		return nil, nil, err
	}
	return t, pay, nil
}

// x402Wait waits up to wait for a pending request's decision, as /eth's
// signing calls do.
func (s *Service) x402Wait(ctx context.Context, p *Principal, t *countersign.Transaction, wait time.Duration) (*countersign.Transaction, error) {
	deadline := time.Now().Add(wait)
	var err error
	for t.Status == countersign.StatusPending {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return t, nil
		}
		if left > time.Minute {
			left = time.Minute
		}
		if t, err = s.Status(ctx, p, t.ID, left); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// x402Resume pays a request prepared by an earlier call once it is
// authorized: the resource is asked again, and it must still ask for
// exactly what was approved — a higher price than the quote, or any other
// change, is refused without signing.
func (s *Service) x402Resume(ctx context.Context, p *Principal, tr X402Transport, req X402PayRequest, maxAmount *big.Int, wait time.Duration) (*X402Outcome, error) {
	t, err := s.load(ctx, p, req.TransactionID)
	if err != nil {
		return nil, err
	}
	if t.Type != countersign.TxX402 || t.AgentID != p.Agent.ID {
		return nil, countersign.Errorf(countersign.NotFound, "x402 payment not found")
	}
	pay, err := s.store.X402Payment(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	if pay.Resource != req.Resource || pay.Method != req.Method {
		return nil, countersign.Errorf(countersign.BadRequest, "transaction %s pays for %s %s, not for this request", t.ID, pay.Method, pay.Resource)
	}
	if len(t.Signature) > 0 || t.Status == countersign.StatusSigned {
		return nil, countersign.Errorf(countersign.Conflict, "transaction %s was already paid (payment %s): fetch again without transaction_id", t.ID, pay.Status)
	}
	if t, err = s.x402Wait(ctx, p, t, wait); err != nil {
		return nil, err
	}
	if t.Status == countersign.StatusPending {
		return &X402Outcome{Pending: t, Payment: x402View(t, pay)}, nil
	}
	if t.Status != countersign.StatusAuthorized {
		return nil, refused("the payment request %s was %s: nothing was signed", t.ID, t.Status)
	}
	approved, err := payOffer(pay)
	if err != nil {
		return nil, err
	}
	if maxAmount != nil && approved.Amount.Cmp(maxAmount) > 0 {
		return nil, refused("the approved payment is %s, more than max_amount %s: nothing was signed", approved.Amount, maxAmount)
	}
	res, err := tr.Do(ctx, nil)
	if err != nil {
		return nil, err
	}
	if res.Required == nil {
		// It no longer asks for payment: nothing to sign.
		return &X402Outcome{Response: res, Payment: x402View(t, pay)}, nil
	}
	offers, _ := x402.Offers(res.Required, s.chainID.Int64())
	quote, _ := countersign.ParseAmount("quote", pay.Quote)
	var match *x402.Offer
	raised := false
	for i := range offers {
		o := &offers[i]
		if !x402.SameRequirement(o, approved) {
			continue
		}
		if o.Amount.Cmp(quote) > 0 {
			raised = true
			continue
		}
		if o.Amount.Cmp(approved.Amount) == 0 {
			match = o
			break
		}
	}
	if match == nil {
		if raised {
			return nil, refused("the resource now asks more than it quoted (%s of %s): nothing was signed; fetch again without transaction_id for a new approval", pay.Quote, pay.Asset)
		}
		return nil, refused("the resource no longer asks for the approved payment (%s of %s to %s): nothing was signed; fetch again without transaction_id", pay.Amount, pay.Asset, pay.PayTo)
	}
	match.Req.Raw = json.RawMessage(pay.Requirement) // echo what the approval was for
	res.Required.Resource = json.RawMessage(pay.ResourceInfo)
	if pay.ResourceInfo == "" {
		res.Required.Resource = nil
	}
	return s.x402Send(ctx, p, tr, t, pay, res.Required, match)
}

// payOffer is the offer a stored payment was built for.
func payOffer(pay *countersign.X402Payment) (*x402.Offer, error) {
	b, _ := json.Marshal(map[string]any{"x402Version": pay.Version, "accepts": []json.RawMessage{json.RawMessage(pay.Requirement)}})
	pr, err := x402.ParsePaymentRequired(b)
	if err != nil {
		return nil, countersign.Wrap(countersign.Internal, err, "stored x402 requirement does not parse")
	}
	id, _ := x402.ChainID(pay.Network)
	offers, _ := x402.Offers(pr, id)
	if len(offers) != 1 {
		return nil, countersign.Errorf(countersign.Internal, "stored x402 requirement is not payable")
	}
	return &offers[0], nil
}

// x402Check re-derives, from the stored request and payment alone, the
// authorization to sign, and refuses (fail closed) anything that does
// not agree: the typed data must be a TransferWithAuthorization from the
// wallet of exactly the approved amount, token and payee, with the
// recorded nonce, still valid.
func (s *Service) x402Check(t *countersign.Transaction, pay *countersign.X402Payment, o *x402.Offer) (*x402.Authorization, []byte, error) {
	td, hash, err := ethsig.ParseTypedData([]byte(t.Message), t.ChainID)
	if err != nil {
		return nil, nil, err
	}
	bad := countersign.Errorf(countersign.Internal, "x402 payment %s does not match its request", t.ID)
	if td.PrimaryType != x402.PrimaryType || !strings.EqualFold(td.Domain.VerifyingContract, t.TokenAddress) {
		return nil, nil, bad
	}
	str := func(k string) string { v, _ := td.Message[k].(string); return v }
	j := x402.AuthorizationJSON{From: str("from"), To: str("to"), Value: str("value"), ValidAfter: str("validAfter"), ValidBefore: str("validBefore"), Nonce: str("nonce")}
	a, err := (&x402.PaymentPayload{Payload: x402.ExactPayload{Authorization: j}}).Authorization()
	if err != nil {
		return nil, nil, bad
	}
	if a.From != common.HexToAddress(t.From) || a.To != common.HexToAddress(t.To) || a.To != o.PayTo || a.Value.String() != t.Amount ||
		a.Value.Cmp(o.Amount) != 0 || o.Asset != common.HexToAddress(t.TokenAddress) || x402.NonceHex(a.Nonce) != pay.Nonce ||
		!strings.EqualFold(pay.Asset, t.TokenAddress) || pay.Amount != t.Amount {
		return nil, nil, bad
	}
	// the hash core signs is the one the x402 package (and the verifier) computes
	if h, err := x402.Hash(x402.TypedData(o, a)); err != nil || !bytes.Equal(h, hash) {
		return nil, nil, bad
	}
	if time.Unix(a.ValidBefore.Int64(), 0).Before(s.clock.Now().Add(10 * time.Second)) {
		return nil, nil, refused("the authorization of payment %s expired before it was approved: nothing was signed; fetch again without transaction_id", t.ID)
	}
	return a, hash, nil
}

// x402Send signs the authorized payment — once: the signature, the move
// to signed, the payment's state and the charge receipt commit together —
// sends it with the request, and records the settlement the server
// reports.
func (s *Service) x402Send(ctx context.Context, p *Principal, tr X402Transport, t *countersign.Transaction, pay *countersign.X402Payment, pr *x402.PaymentRequired, o *x402.Offer) (*X402Outcome, error) {
	if err := s.checkExecutable(t); err != nil {
		return nil, err
	}
	if err := s.frozen(ctx, t.OwnerID, t.WalletID); err != nil {
		return nil, err
	}
	a, hash, err := s.x402Check(t, pay, o)
	if err != nil {
		return nil, err
	}
	w, err := s.store.WalletByID(ctx, t.WalletID)
	if err != nil {
		return nil, err
	}
	sig, err := s.signer.SignHash(ctx, w, hash)
	if err != nil {
		return nil, err
	}
	// Recorded on a context the client cannot cancel: a commit that lands
	// as the client leaves must not be reported as failed, or the payment
	// would stand as sent (its budget spent, its signature kept) without
	// ever having been sent, and no later call could send it.
	err = s.change(context.WithoutCancel(ctx), func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil {
			return err
		}
		if len(cur.Signature) > 0 || cur.Status != countersign.StatusAuthorized {
			// a concurrent call signed it (and sends it), or it moved on
			return countersign.Errorf(countersign.Conflict, "transaction %s is %s: it is paid once, by the call that signed it", cur.ID, cur.Status)
		}
		if err := s.frozen(ctx, cur.OwnerID, cur.WalletID); err != nil {
			return err
		}
		cur.Signature = sig
		if err := s.setStatus(ctx, cs, cur, countersign.StatusSigned, p.Actor(), "transaction.sign",
			map[string]string{"hash": hex.EncodeToString(hash), "x402_nonce": pay.Nonce, "resource": pay.Resource}); err != nil {
			return err
		}
		pay.Status, pay.UpdatedAt = countersign.X402Sent, s.clock.Now().UTC()
		if err := s.store.UpdateX402Payment(ctx, pay); err != nil {
			return err
		}
		t = cur
		// Counted when signed, like the budget: from now on anyone holding
		// the authorization can settle it until validBefore.
		return s.store.AddChargeReceipt(ctx, x402Receipt(cur, pay, s.clock.Now().UTC()))
	})
	if err != nil {
		return nil, err
	}
	payload := x402.NewPaymentPayload(pr, o, x402.NewExactPayload(a, sig))
	// The request with the payment is not the caller's to cut short: its
	// settlement is recorded whatever the client does.
	sctx, cancel := detach(ctx, s.x402.cfg.Timeout+5*time.Second)
	defer cancel()
	res, sendErr := tr.Do(sctx, payload)
	settlement := (*x402.Settlement)(nil)
	if res != nil {
		settlement = res.Settlement
	}
	if err := s.x402Settle(sctx, p, t, pay, settlement, sendErr); err != nil {
		s.log.Warn("x402: cannot record the settlement", "transaction_id", t.ID, "err", err)
	}
	if sendErr != nil {
		return nil, countersign.Wrap(countersign.UpstreamError, sendErr, fmt.Sprintf("the payment %s was signed and sent, but the resource's answer is unusable: %s", t.ID, countersign.ErrorDetail(sendErr)))
	}
	return &X402Outcome{Response: res, Payment: x402View(t, pay)}, nil
}

func x402Receipt(t *countersign.Transaction, pay *countersign.X402Payment, at time.Time) *countersign.ChargeReceipt {
	id := pay.SettlementTx
	if id == "" {
		id = "x402:" + pay.Nonce // the payment id until a settlement names its transaction
	}
	return &countersign.ChargeReceipt{ID: "x402-" + t.ID, OwnerID: t.OwnerID, AgentID: t.AgentID, WalletID: t.WalletID, TransactionID: t.ID,
		Reason: "x402", Amount: t.Amount, Asset: strings.ToLower(t.TokenAddress), TxHash: id, RuleID: t.RuleID, CreatedAt: at}
}

// x402Settle records what the server said about the payment: settled
// (with its transaction hash, which the receipt then carries) or failed.
func (s *Service) x402Settle(ctx context.Context, p *Principal, t *countersign.Transaction, pay *countersign.X402Payment, st *x402.Settlement, sendErr error) error {
	return s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.X402Payment(ctx, pay.TransactionID)
		if err != nil {
			return err
		}
		cur.Status, cur.UpdatedAt = countersign.X402Failed, s.clock.Now().UTC()
		details := map[string]string{"nonce": cur.Nonce}
		if st != nil {
			b, _ := json.Marshal(st)
			cur.Settlement = string(b)
			if st.Success {
				cur.Status = countersign.X402Settled
				if isTxHash(st.Transaction) {
					cur.SettlementTx = strings.ToLower(st.Transaction)
				}
			}
			details["error_reason"] = st.ErrorReason
		} else if sendErr != nil {
			details["error"] = "the resource's answer is unusable"
		} else {
			details["error"] = "no settlement reported"
		}
		details["status"], details["settlement_tx"] = cur.Status, cur.SettlementTx
		if err := s.store.UpdateX402Payment(ctx, cur); err != nil {
			return err
		}
		*pay = *cur
		if cur.SettlementTx != "" {
			rs, err := s.store.ChargeReceipts(ctx, countersign.ChargeFilter{OwnerID: t.OwnerID, AgentID: t.AgentID, Reason: "x402", Limit: 10000})
			if err != nil {
				return err
			}
			for _, r := range rs {
				if r.TransactionID == t.ID {
					if err := s.store.DeleteChargeReceipt(ctx, t.ID); err != nil {
						return err
					}
					nr := x402Receipt(t, cur, r.CreatedAt)
					if err := s.store.AddChargeReceipt(ctx, nr); err != nil {
						return err
					}
				}
			}
		}
		cs.add(countersign.Change{Owner: t.OwnerID, Actor: p.Actor(), Action: "x402.settlement", Subject: t.ID, Details: details,
			Events: []countersign.ChangeEvent{{Type: "x402." + cur.Status, Subject: t.ID, Payload: details}}})
		return nil
	})
}

func isTxHash(s string) bool {
	if len(s) != 66 || !strings.HasPrefix(s, "0x") {
		return false
	}
	_, err := hex.DecodeString(s[2:])
	return err == nil
}

// x402View renders a payment for the agent.
func x402View(t *countersign.Transaction, pay *countersign.X402Payment) *X402PaymentView {
	v := &X402PaymentView{TransactionID: t.ID, Status: pay.Status, Version: pay.Version, Network: pay.Network, Asset: pay.Asset, Amount: pay.Amount,
		PayTo: pay.PayTo, Nonce: pay.Nonce, ValidBefore: pay.ValidBefore, Decision: t.Decision, RuleID: t.RuleID, Transaction: pay.SettlementTx, Scheme: x402.SchemeExact}
	if pay.Settlement != "" {
		if st, err := x402.ParseSettlement([]byte(pay.Settlement)); err == nil {
			v.Settlement = st
		}
	}
	return v
}

// X402PaymentOf is the payment view of an x402 request (nil if none).
func (s *Service) X402PaymentOf(ctx context.Context, t *countersign.Transaction) *X402PaymentView {
	pay, err := s.store.X402Payment(ctx, t.ID)
	if err != nil {
		return nil
	}
	return x402View(t, pay)
}
