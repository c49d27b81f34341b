package core

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"

	"github.com/countersign/countersign"
)

// PrepareRequest is a spend as an agent (or a user) describes it.
type PrepareRequest struct {
	Type            string          `json:"type"`
	ToAddress       string          `json:"to_address,omitempty"`
	Amount          string          `json:"amount,omitempty"`
	TokenAddress    string          `json:"token_address,omitempty"`
	ContractAddress string          `json:"contract_address,omitempty"`
	ContractABI     json.RawMessage `json:"contract_abi,omitempty"`
	FunctionName    string          `json:"function_name,omitempty"`
	FunctionArgs    json.RawMessage `json:"function_args,omitempty"`
	Value           string          `json:"value,omitempty"`
	Data            string          `json:"data,omitempty"`    // contract_call: raw 0x calldata instead of an ABI
	Message         json.RawMessage `json:"message,omitempty"` // personal_sign: a string; typed_data: an EIP-712 object
	Memo            string          `json:"memo,omitempty"`
}

// MaxMemo is the longest memo an agent may attach, in characters.
const MaxMemo = countersign.MaxMemo

// TxView is the public shape of a transaction, in API responses and event
// payloads alike.
type TxView struct {
	TransactionID   string    `json:"transaction_id"`
	Status          string    `json:"status"`
	Type            string    `json:"type"`
	AgentID         string    `json:"agent_id,omitempty"`
	ChainID         int64     `json:"chain_id"`
	FromAddress     string    `json:"from_address"`
	ToAddress       string    `json:"to_address"`
	Amount          string    `json:"amount"`
	TokenAddress    string    `json:"token_address,omitempty"`
	ContractAddress string    `json:"contract_address,omitempty"`
	FunctionName    string    `json:"function_name,omitempty"`
	FunctionArgs    any       `json:"function_args,omitempty"`
	Value           string    `json:"value,omitempty"`
	Data            string    `json:"data,omitempty"`
	Memo            string    `json:"memo"`
	Message         any       `json:"message,omitempty"`
	Signature       *string   `json:"signature,omitempty"`
	Digest          string    `json:"approval_digest"`
	Reason          string    `json:"reason,omitempty"`
	TxHash          *string   `json:"tx_hash"`
	BlockNumber     *uint64   `json:"block_number"`
	Nonce           *uint64   `json:"nonce,omitempty"`
	GasLimit        *uint64   `json:"gas_limit,omitempty"`       // the gas limit the approval binds
	MaxFeePerGas    string    `json:"max_fee_per_gas,omitempty"` // wei: the most it pays per gas
	MaxFee          string    `json:"max_fee,omitempty"`         // wei: gas_limit × max_fee_per_gas, the most it pays in fees
	Error           *string   `json:"error"`
	ExpiresAt       time.Time `json:"expires_at"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`

	// What the policy decided (policy.go): the outcome, the deciding rule,
	// the approvals so far and how many are needed, when a delay
	// authorizes it, and the policy's warnings.
	Decision        string       `json:"decision"`
	RuleID          string       `json:"rule_id"`
	Approvals       []TxApproval `json:"approvals"`
	ApprovalsNeeded int          `json:"approvals_needed"`
	AuthorizeAt     *time.Time   `json:"authorize_at"`
	PolicyWarnings  []Warning    `json:"policy_warnings,omitempty"` // review_warnings.go: {code, severity, text}
}

// View renders t for clients. Fields that are not set yet are null.
func View(t *countersign.Transaction) TxView {
	v := TxView{
		TransactionID: t.ID, Status: string(t.Status), Type: string(t.Type), AgentID: t.AgentID, ChainID: t.ChainID,
		FromAddress: t.From, ToAddress: t.To, Amount: t.Amount, TokenAddress: t.TokenAddress,
		ContractAddress: t.ContractAddress, FunctionName: t.FunctionName, Value: t.Value, Memo: t.Memo,
		Digest: "0x" + hex.EncodeToString(t.Digest), Reason: t.Reason, BlockNumber: t.BlockNumber, Nonce: t.Nonce,
		ExpiresAt: t.ExpiresAt, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
	if len(t.TxData) > 0 {
		v.Data = "0x" + hex.EncodeToString(t.TxData)
	}
	v.Decision, v.RuleID, v.ApprovalsNeeded, v.Approvals = t.Decision, t.RuleID, t.ApprovalsNeeded, []TxApproval{}
	if len(t.PolicyWarnings) > 0 {
		v.PolicyWarnings = PolicyWarnings(t.PolicyWarnings)
	}
	if v.Decision == "" {
		v.Decision = "human" // rows from before policies, and the user's own spends
	}
	if v.ApprovalsNeeded == 0 {
		v.ApprovalsNeeded = 1
	}
	if !t.AuthorizeAt.IsZero() {
		at := t.AuthorizeAt
		v.AuthorizeAt = &at
	}
	if t.FunctionArgs != "" {
		v.FunctionArgs = json.RawMessage(t.FunctionArgs)
	}
	if t.TxHash != "" {
		h := t.TxHash
		v.TxHash = &h
	}
	if t.Error != "" {
		e := t.Error
		v.Error = &e
	}
	if f := maxFee(t); f != nil {
		g := t.GasLimit
		v.GasLimit, v.MaxFeePerGas, v.MaxFee = &g, t.MaxFeePerGas, f.String()
	}
	switch t.Type {
	case countersign.TxTypedData, countersign.TxX402: // x402: the authorization's typed data (x402.go)
		v.Message = json.RawMessage(t.Message)
	case countersign.TxPersonalSign:
		v.Message = t.Message
	}
	if len(t.Signature) > 0 {
		sig := "0x" + hex.EncodeToString(t.Signature)
		v.Signature = &sig
	}
	return v
}

// Digest binds an approval to the exact fields the human saw: chain, type,
// sender, recipient, amounts, token, the destination, value and calldata
// that will be signed, and the network fee it may cost (gas limit and max
// fee per gas; "v2"). Rows that bind no fee keep their "v1" digest, and
// execute refuses them. Each field is length-prefixed; the result is
// keccak256 of the whole.
func Digest(t *countersign.Transaction) []byte {
	var b bytes.Buffer
	put := func(v []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(v)))
		b.Write(n[:])
		b.Write(v)
	}
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], uint64(t.ChainID))
	feeBound := t.GasLimit != 0 || t.MaxFeePerGas != ""
	if feeBound {
		put([]byte("countersign approval v2"))
	} else {
		put([]byte("countersign approval v1"))
	}
	put(id[:])
	for _, f := range []string{string(t.Type), t.From, t.To, t.Amount, t.TokenAddress, t.ContractAddress, t.FunctionName, t.FunctionArgs, t.Value, t.Memo, t.TxTo, t.TxValue, t.Message} {
		put([]byte(f))
	}
	put(t.TxData)
	if feeBound {
		var gas [8]byte
		binary.BigEndian.PutUint64(gas[:], t.GasLimit)
		put(gas[:])
		put([]byte(t.MaxFeePerGas))
	}
	return crypto.Keccak256(b.Bytes())
}

// checkMemo applies the rules of all approver-facing text (CheckText):
// lines and tabs allowed, no control, bidirectional or invisible characters.
func checkMemo(memo string) error {
	return CheckText("memo", memo, MaxMemo, true)
}

func notUsed(typ string, fields map[string]bool) error {
	for name, set := range fields {
		if set {
			return countersign.Errorf(countersign.BadRequest, "%s is not used for %s transactions", name, typ)
		}
	}
	return nil
}

// buildSpend validates req for wallet w and derives what will be signed.
// Every check that can be made before a human looks is made here: the
// fields common to every type, then the type's own (spendFields), then the
// fee bound for what goes on chain.
// newTxID is a new transaction id: a version 7 UUID (RFC 9562), whose
// first 48 bits are the time in milliseconds and the rest random. Rows
// created together sit together in every index keyed by the id — the
// table's key, the budget reservations', the audit and event subjects —
// so a group of prepares commits a few index pages instead of one random
// page per request in each. The time it shows is the created_at every
// view shows anyway; the 74 random bits keep it unguessable.
func newTxID() string { return uuid.Must(uuid.NewV7()).String() }

func (s *Service) buildSpend(ctx context.Context, w *countersign.Wallet, req *PrepareRequest) (*countersign.Transaction, error) {
	if err := checkMemo(req.Memo); err != nil {
		return nil, err
	}
	t := &countersign.Transaction{ID: newTxID(), OwnerID: w.OwnerID, WalletID: w.ID, ChainID: s.chainID.Int64(),
		Type: countersign.TxType(req.Type), From: w.Address, Memo: req.Memo}
	f := spendFieldsOf(req)
	if t.Type != countersign.TxContractCall && req.Data != "" {
		return nil, countersign.Errorf(countersign.BadRequest, "data is only used for contract_call transactions")
	}
	if !t.Type.IsMessage() && f.msg {
		return nil, countersign.Errorf(countersign.BadRequest, "message is only used for personal_sign and typed_data requests")
	}
	var err error
	switch t.Type {
	case countersign.TxPersonalSign, countersign.TxTypedData:
		err = s.buildMessageSpend(t, req, f)
	case countersign.TxNative:
		err = buildNativeSpend(t, req, f)
	case countersign.TxERC20:
		err = s.buildERC20Spend(ctx, t, req, f)
	case countersign.TxContractCall:
		err = s.buildContractCall(ctx, t, req, f)
	case "":
		err = countersign.Errorf(countersign.BadRequest, "type is required: native, erc20, contract_call, personal_sign or typed_data")
	default:
		err = countersign.Errorf(countersign.BadRequest, "type must be native, erc20, contract_call, personal_sign or typed_data, not %q", truncate(req.Type, 32))
	}
	if err != nil {
		return nil, err
	}
	if !t.Type.IsMessage() {
		if err := s.bindFees(ctx, t); err != nil {
			return nil, err
		}
	}
	t.Digest = Digest(t)
	return t, nil
}

// spendFields says which of a request's JSON fields were given (a JSON
// null counts as not given).
type spendFields struct{ abi, args, msg bool }

func spendFieldsOf(req *PrepareRequest) spendFields {
	given := func(raw json.RawMessage) bool {
		b := bytes.TrimSpace(raw)
		return len(b) > 0 && string(b) != "null"
	}
	return spendFields{abi: given(req.ContractABI), args: given(req.FunctionArgs), msg: given(req.Message)}
}

// buildMessageSpend is a personal_sign or typed_data request: the message
// only.
func (s *Service) buildMessageSpend(t *countersign.Transaction, req *PrepareRequest, f spendFields) error {
	if err := notUsed(req.Type, map[string]bool{"to_address": req.ToAddress != "", "amount": req.Amount != "", "token_address": req.TokenAddress != "",
		"contract_address": req.ContractAddress != "", "contract_abi": f.abi, "function_name": req.FunctionName != "", "function_args": f.args, "value": req.Value != ""}); err != nil {
		return err
	}
	return s.buildMessage(t, req.Message)
}

// buildNativeSpend is a transfer of the chain's own coin: to and amount.
func buildNativeSpend(t *countersign.Transaction, req *PrepareRequest, f spendFields) error {
	if err := notUsed(req.Type, map[string]bool{"token_address": req.TokenAddress != "", "contract_address": req.ContractAddress != "",
		"contract_abi": f.abi, "function_name": req.FunctionName != "", "function_args": f.args, "value": req.Value != ""}); err != nil {
		return err
	}
	to, err := ParseAddress("to_address", req.ToAddress)
	if err != nil {
		return err
	}
	amount, err := countersign.ParseAmount("amount", req.Amount)
	if err != nil {
		return err
	}
	t.To, t.Amount, t.TxTo, t.TxValue = to.Hex(), amount.String(), to.Hex(), amount.String()
	return nil
}

// buildERC20Spend is a token transfer: transfer(to, amount) called on a
// contract that answers as an ERC-20.
func (s *Service) buildERC20Spend(ctx context.Context, t *countersign.Transaction, req *PrepareRequest, f spendFields) error {
	if err := notUsed(req.Type, map[string]bool{"contract_address": req.ContractAddress != "", "contract_abi": f.abi,
		"function_name": req.FunctionName != "", "function_args": f.args, "value": req.Value != ""}); err != nil {
		return err
	}
	to, err := ParseAddress("to_address", req.ToAddress)
	if err != nil {
		return err
	}
	token, err := ParseAddress("token_address", req.TokenAddress)
	if err != nil {
		return err
	}
	amount, err := countersign.ParseAmount("amount", req.Amount)
	if err != nil {
		return err
	}
	if _, err := s.TokenInfo(ctx, token); err != nil {
		return err
	}
	data, err := erc20ABI.Pack("transfer", to, amount)
	if err != nil {
		return err
	}
	t.To, t.Amount, t.TokenAddress = to.Hex(), amount.String(), token.Hex()
	t.TxTo, t.TxValue, t.TxData = token.Hex(), "0", data
	return nil
}

// buildContractCall is a call of a contract that has code on this chain,
// with calldata given raw or encoded from an ABI, a function and its
// arguments.
func (s *Service) buildContractCall(ctx context.Context, t *countersign.Transaction, req *PrepareRequest, f spendFields) error {
	if err := notUsed(req.Type, map[string]bool{"to_address": req.ToAddress != "" && req.ToAddress != req.ContractAddress,
		"token_address": req.TokenAddress != "", "amount": req.Amount != "" && req.Amount != req.Value}); err != nil {
		return err
	}
	contract, err := ParseAddress("contract_address", req.ContractAddress)
	if err != nil {
		return err
	}
	value := big.NewInt(0)
	if req.Value != "" {
		if value, err = countersign.ParseAmount("value", req.Value); err != nil {
			return err
		}
	}
	call, err := callData(req, f, value)
	if err != nil {
		return err
	}
	code, err := s.chain.CodeAt(ctx, contract.Hex())
	if err != nil {
		return err
	}
	if len(code) == 0 {
		return countersign.Errorf(countersign.BadRequest, "contract_address %s has no contract code on chain %s", contract.Hex(), s.chainID)
	}
	args := ""
	if call.abi != "" {
		args = "[]"
	}
	if f.args {
		var c bytes.Buffer
		_ = json.Compact(&c, req.FunctionArgs)
		args = c.String()
	}
	t.To, t.Amount, t.Value, t.ContractAddress = contract.Hex(), value.String(), value.String(), contract.Hex()
	t.ContractABI, t.FunctionName, t.FunctionArgs = call.abi, call.sig, args
	t.TxTo, t.TxValue, t.TxData = contract.Hex(), value.String(), call.data
	return nil
}

// contractCall is a contract call's calldata and, when it was encoded
// from an ABI, that ABI (compacted) and the function's signature.
type contractCall struct {
	data     []byte
	abi, sig string
}

// callData is req's calldata: raw (eth_sendTransaction: nothing to decode
// it with, so the human sees the selector and the bytes), or encoded from
// contract_abi, function_name and function_args.
func callData(req *PrepareRequest, f spendFields, value *big.Int) (contractCall, error) {
	if req.Data != "" {
		if f.abi || req.FunctionName != "" || f.args {
			return contractCall{}, countersign.Errorf(countersign.BadRequest, "give either data or contract_abi with function_name, not both")
		}
		data, err := hexutil.Decode(req.Data)
		if err != nil {
			return contractCall{}, countersign.Errorf(countersign.BadRequest, "data must be 0x-prefixed hex: %v", err)
		}
		return contractCall{data: data}, nil
	}
	a, abiJSON, err := ParseABI(req.ContractABI)
	if err != nil {
		return contractCall{}, err
	}
	var nargs []json.RawMessage
	if f.args {
		if err := json.Unmarshal(req.FunctionArgs, &nargs); err != nil {
			return contractCall{}, countersign.Errorf(countersign.BadRequest, "function_args must be a JSON array")
		}
	}
	m, err := FindMethod(a, req.FunctionName, len(nargs))
	if err != nil {
		return contractCall{}, err
	}
	if value.Sign() > 0 && !m.IsPayable() {
		return contractCall{}, countersign.Errorf(countersign.BadRequest, "function %s is not payable: value must be 0", m.Sig)
	}
	data, err := EncodeCall(m, req.FunctionArgs)
	if err != nil {
		return contractCall{}, err
	}
	return contractCall{data: data, abi: abiJSON, sig: m.Sig}, nil
}

// requestHash fingerprints a prepare request for Idempotency-Key checks:
// the same request written another way — an address in another case, the
// JSON of the ABI, arguments or message spaced or its keys ordered
// differently — has the same fingerprint, so a client's retry is not
// refused as "a different request".
func requestHash(req *PrepareRequest) []byte {
	c := *req
	for _, a := range []*string{&c.ToAddress, &c.TokenAddress, &c.ContractAddress} {
		if common.IsHexAddress(*a) {
			*a = strings.ToLower(*a)
		}
	}
	for _, m := range []*json.RawMessage{&c.ContractABI, &c.FunctionArgs, &c.Message} {
		*m = canonicalJSON(*m)
	}
	return legacyRequestHash(&c)
}

// legacyRequestHash is the fingerprint of req as it is written (what rows
// stored before requestHash canonicalised): a retry of such a row's
// request in the same bytes still matches.
func legacyRequestHash(req *PrepareRequest) []byte {
	b, _ := json.Marshal(req)
	h := sha256.Sum256(b)
	return h[:]
}

// canonicalJSON re-encodes raw with object keys sorted and no spacing
// (raw itself when it does not decode: it is refused later anyway). Numbers
// keep their text. An object with two keys equal but for case (or equal)
// is left as written: the ABI and typed-data parsers match keys without
// case and keep the last, so {"type":…,"Type":…} and its reverse are
// different requests that a map would make one.
func canonicalJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || foldedDuplicateKeys(raw) {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	b, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		return raw
	}
	return b
}

// foldedDuplicateKeys reports whether some object in raw has two keys
// equal under case folding (true also for JSON that does not decode).
func foldedDuplicateKeys(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	for dec.More() {
		if dup, err := foldedDuplicateIn(dec); dup || err != nil {
			return true
		}
	}
	_, err := dec.Token()
	return err != io.EOF // trailing garbage
}

// foldedDuplicateIn reads one JSON value from dec.
func foldedDuplicateIn(dec *json.Decoder) (bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return false, err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return false, err
			}
			key := strings.ToLower(k.(string))
			if seen[key] {
				return true, nil
			}
			seen[key] = true
			if dup, err := foldedDuplicateIn(dec); dup || err != nil {
				return dup, err
			}
		}
	case json.Delim('['):
		for dec.More() {
			if dup, err := foldedDuplicateIn(dec); dup || err != nil {
				return dup, err
			}
		}
	default:
		return false, nil // a scalar
	}
	_, err = dec.Token() // the closing delimiter
	return false, err
}

// Prepare records an agent's spend request as pending a human decision.
// With an idempotency key, a repeated request returns the first result and
// a different request under the same key is a Conflict.
// p is an agent: the rule of every entry point (http: Agent on
// /api/prepare_transaction and /eth; mcp: agents only).
func (s *Service) Prepare(ctx context.Context, p *Principal, req *PrepareRequest, idemKey string) (*countersign.Transaction, error) {
	if len(idemKey) > 128 {
		return nil, countersign.Errorf(countersign.BadRequest, "Idempotency-Key must be at most 128 characters")
	}
	rh := requestHash(req)
	if idemKey != "" {
		if prev, err := s.store.TransactionByIdempotencyKey(ctx, p.Agent.ID, idemKey); err == nil {
			if !bytes.Equal(prev.RequestHash, rh) && !bytes.Equal(prev.RequestHash, legacyRequestHash(req)) {
				return nil, countersign.Errorf(countersign.Conflict, "Idempotency-Key was already used for a different request")
			}
			return prev, nil
		}
	}
	t, err := s.agentSpend(ctx, p.Agent.WalletID, req)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	t.AgentID, t.Status, t.IdempotencyKey, t.RequestHash = p.Agent.ID, countersign.StatusPending, idemKey, rh
	t.CreatedAt, t.UpdatedAt, t.ExpiresAt = now, now, now.Add(s.cfg.PendingTTL)
	// The policy decides in the transaction that stores the row (policy.go).
	if err := s.preparePolicy(ctx, t, p.Actor()); err != nil {
		if countersign.ErrorCode(err) == countersign.Conflict && idemKey != "" {
			// A concurrent twin won the race: answer as it did.
			return s.Prepare(ctx, p, req, idemKey)
		}
		return nil, err
	}
	return t, nil
}

// visible returns t if p may see it: its owner, or the agent that made it.
func visible(p *Principal, t *countersign.Transaction) error {
	if t.OwnerID != p.User.ID || (p.IsAgent() && t.AgentID != p.Agent.ID) {
		return countersign.Errorf(countersign.NotFound, "transaction not found")
	}
	return nil
}

func (s *Service) load(ctx context.Context, p *Principal, id string) (*countersign.Transaction, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, countersign.Errorf(countersign.BadRequest, "transaction_id must be a UUID")
	}
	t, err := s.store.Transaction(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.canSee(ctx, p, t); err != nil { // owner, its agent, or an approver of its wallet (approvers.go)
		return nil, err
	}
	if t, err = s.expireAuthorizedIfDue(ctx, t); err != nil { // AUTHORIZED_TTL (approvers.go)
		return nil, err
	}
	return s.expireIfDue(ctx, t)
}

// createTransaction stores a new transaction (pending from Prepare, or
// already authorized from UserSpend) with its audit entry and its first
// event, transaction.<status>, in one transaction.
func (s *Service) createTransaction(ctx context.Context, t *countersign.Transaction, actor, action string) error {
	return s.Record(ctx, countersign.Change{Owner: t.OwnerID, Actor: actor, Action: action, Subject: t.ID,
		Details: map[string]string{"type": string(t.Type), "to": t.To, "amount": t.Amount, "token": t.TokenAddress, "digest": hex.EncodeToString(t.Digest)},
		Events:  []countersign.ChangeEvent{{Type: "transaction." + string(t.Status), Subject: t.ID, Payload: View(t), WalletID: t.WalletID}}},
		func(ctx context.Context) error { return s.store.CreateTransaction(ctx, t) })
}

// setStatus moves t to status inside the caller's change and states it in
// cs: the audit entry (action, details) and the transaction.<status> event
// carrying t as it now is.
func (s *Service) setStatus(ctx context.Context, cs *changeSet, t *countersign.Transaction, to countersign.Status, actor, action string, details any) error {
	from, err := s.moveStatus(t, to)
	if err != nil {
		return err
	}
	if err := s.store.UpdateTransaction(ctx, t); err != nil {
		return err
	}
	return s.statusMoved(ctx, cs, t, from, actor, action, details)
}

// moveStatus is the part of setStatus that changes t itself, in memory:
// the transition's check, the status, the update time and the deadline.
// It returns the status t had.
func (s *Service) moveStatus(t *countersign.Transaction, to countersign.Status) (countersign.Status, error) {
	if !countersign.CanTransition(t.Status, to) {
		return "", countersign.Errorf(countersign.Conflict, "transaction %s is %s and cannot become %s", t.ID, t.Status, to)
	}
	from := t.Status
	t.Status, t.UpdatedAt = to, s.clock.Now().UTC()
	// expires_at is the deadline of the step the request is at: approve
	// by it while pending, execute by it once authorized (AUTHORIZED_TTL
	// from the approval, which is what execute enforces). An x402
	// payment's is never later than its own, which its authorization's
	// validBefore bounds (x402.go), and it keeps that one if an approval
	// is withdrawn.
	x402 := t.Type == countersign.TxX402
	switch {
	case to == countersign.StatusAuthorized && t.TxHash == "" && len(t.Signature) == 0:
		if d := authorizedAt(t).Add(s.cfg.AuthorizedTTL); !x402 || d.Before(t.ExpiresAt) {
			t.ExpiresAt = d
		}
	case from == countersign.StatusAuthorized && to == countersign.StatusPending && !x402:
		t.ExpiresAt = s.pendingDeadline(t)
	}
	return from, nil
}

// statusMoved is the rest of setStatus once t, moved from from to its
// status, is stored: the budget reservations and charge receipt the move
// settles, and the change stated in cs.
func (s *Service) statusMoved(ctx context.Context, cs *changeSet, t *countersign.Transaction, from countersign.Status, actor, action string, details any) error {
	if err := s.settleBudget(ctx, t, from, t.Status, action); err != nil { // policy.go: reservations spent or released
		return err
	}
	if err := s.settleCharge(ctx, t, from, t.Status); err != nil { // charges.go: the receipt of a confirmed spend
		return err
	}
	cs.add(countersign.Change{Owner: t.OwnerID, Actor: actor, Action: action, Subject: t.ID, Details: details,
		Events: []countersign.ChangeEvent{{Type: "transaction." + string(t.Status), Subject: t.ID, Payload: View(t), WalletID: t.WalletID}}})
	return nil
}

// pendingDeadline is when pending t expires unapproved: PENDING_TTL from
// its creation, or from the end of its cooling-off when that is later
// (applyDecision).
func (s *Service) pendingDeadline(t *countersign.Transaction) time.Time {
	d := t.CreatedAt.Add(s.cfg.PendingTTL)
	if !t.AuthorizeAt.IsZero() && !t.AuthorizeAt.Before(d) {
		d = t.AuthorizeAt.Add(s.cfg.PendingTTL)
	}
	return d
}

// expireIfDue marks a pending transaction whose window has passed as
// expired, and returns the current row.
func (s *Service) expireIfDue(ctx context.Context, t *countersign.Transaction) (*countersign.Transaction, error) {
	if !t.Expired(s.clock.Now()) {
		return t, nil
	}
	err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil {
			return err
		}
		t = cur
		if !cur.Expired(s.clock.Now()) {
			return nil
		}
		return s.setStatus(ctx, cs, cur, countersign.StatusExpired, "system", "transaction.expire", map[string]string{"expires_at": cur.ExpiresAt.Format(time.RFC3339)})
	})
	return t, err
}

// agentSpend validates an agent's request on its wallet and derives what
// would be signed — prepare and its dry run alike. The kill switch refuses
// first (freeze.go); a request that races a freeze is only pending, and
// execute checks again.
func (s *Service) agentSpend(ctx context.Context, walletID string, req *PrepareRequest) (*countersign.Transaction, error) {
	w, err := s.store.WalletByID(ctx, walletID)
	if err != nil {
		return nil, err
	}
	if err := s.frozen(ctx, w.OwnerID, w.ID); err != nil {
		return nil, err
	}
	return s.buildSpend(ctx, w, req)
}

// ExpirePending expires every pending request whose window has passed.
func (s *Service) ExpirePending(ctx context.Context) error {
	list, err := s.store.PendingExpired(ctx, s.clock.Now().UTC(), 500)
	if err != nil {
		return err
	}
	return s.settleEach(ctx, list, s.expireIfDue)
}

// settleEach runs due (which re-reads the row in its own change and
// decides) on every row of list, stopping at the first error: the expiry
// sweepers of Run.
func (s *Service) settleEach(ctx context.Context, list []*countersign.Transaction, due func(context.Context, *countersign.Transaction) (*countersign.Transaction, error)) error {
	for _, t := range list {
		if _, err := due(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// Decision is a human's answer to a pending request.
type Decision string

const (
	Approve Decision = "approve"
	Reject  Decision = "reject"
)

// Authorize records a human decision on one or more pending requests with
// one TOTP code. All or nothing: if any request cannot be decided, none is.
// Each approval is bound to its own request's digest.
// p is a user with MFA on, never an agent: the route's rule (http:
// UserMFA, WebMFA; no agent entry point reaches it), and the code is the
// owner's TOTP code besides.
func (s *Service) Authorize(ctx context.Context, p *Principal, ids []string, code string, d Decision, reason string) ([]*countersign.Transaction, error) {
	return s.Decide(ctx, p, DecideRequest{IDs: ids, Code: code, Decision: d, Reason: reason})
}

// Decide is Authorize with the approver's half (approver_decide.go): an
// approval of a request with a danger warning needs req.Acknowledge, a
// rejection from the web session's confirm needs no code
// (req.SessionReject), and a passkey assertion can replace the code
// (req.Passkey, passkeys.go).
func (s *Service) Decide(ctx context.Context, p *Principal, req DecideRequest) ([]*countersign.Transaction, error) {
	ids, d, reason := req.IDs, req.Decision, req.Reason
	if d == "" {
		d = Approve
	}
	if d != Approve && d != Reject {
		return nil, countersign.Errorf(countersign.BadRequest, "decision must be approve or reject")
	}
	if err := CheckText("reason", reason, MaxMemo, true); err != nil {
		return nil, err
	}
	if len(ids) == 0 || len(ids) > 100 {
		return nil, countersign.Errorf(countersign.BadRequest, "give transaction_id, or transaction_ids with 1 to 100 ids")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			return nil, countersign.Errorf(countersign.BadRequest, "transaction %s is listed twice", id)
		}
		seen[id] = true
	}
	check := func(t *countersign.Transaction) error {
		if t.Status == countersign.StatusExpired || t.Expired(s.clock.Now()) {
			return countersign.Errorf(countersign.Conflict, "transaction %s has expired", t.ID)
		}
		if t.Status != countersign.StatusPending {
			return countersign.Errorf(countersign.Conflict, "transaction %s is %s, not pending", t.ID, t.Status)
		}
		return nil
	}
	// Check everything before spending the code, so a typo in one id does
	// not burn it.
	for _, id := range ids {
		t, err := s.load(ctx, p, id)
		if err != nil {
			return nil, err
		}
		if err := check(t); err != nil {
			return nil, err
		}
		if d == Approve && !req.Acknowledge {
			if err := s.needsAcknowledgement(ctx, t); err != nil { // review_warnings.go
				return nil, err
			}
		}
	}
	if err := s.verifyDecisionFactor(ctx, p, req); err != nil { // approver_decide.go: TOTP unless a session's reject
		return nil, err
	}
	var out []*countersign.Transaction
	err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		out = out[:0]
		for _, id := range ids {
			t, err := s.store.Transaction(ctx, id)
			if err != nil {
				return err
			}
			if err := check(t); err != nil {
				return err
			}
			if !bytes.Equal(Digest(t), t.Digest) {
				return countersign.Errorf(countersign.Internal, "transaction %s does not match its digest", t.ID)
			}
			if d == Approve {
				// Recorded per approver; authorized once the quorum is
				// reached (approvers.go).
				if err := s.approve(ctx, cs, p, t, reason); err != nil {
					return err
				}
				out = append(out, t)
				continue
			}
			// Any approver's reject rejects (setStatus frees its budget).
			t.DecidedBy, t.DecidedAt, t.Reason = p.User.ID, s.clock.Now().UTC(), reason
			if err := s.setStatus(ctx, cs, t, countersign.StatusRejected, p.Actor(), "transaction.reject", map[string]string{"digest": hex.EncodeToString(t.Digest), "reason": reason}); err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Status returns a transaction the caller may see. With wait > 0, while
// the transaction is pending (a human decides) or submitted (the chain
// decides), it blocks until the status changes or wait passes. In any other
// status it answers at once: nothing changes it but the caller.
func (s *Service) Status(ctx context.Context, p *Principal, id string, wait time.Duration) (*countersign.Transaction, error) {
	t, err := s.load(ctx, p, id)
	if err != nil || wait <= 0 || (t.Status != countersign.StatusPending && t.Status != countersign.StatusSubmitted) {
		return t, err
	}
	wake, stop := s.broker.Subscribe(t.OwnerID)
	defer stop()
	initial := t.Status
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		// Re-read after subscribing, so a change between the first read and
		// the subscription is not missed.
		if t, err = s.load(ctx, p, id); err != nil || t.Status != initial {
			return t, err
		}
		nextExpiry := time.Until(t.ExpiresAt)
		if t.Status != countersign.StatusPending || nextExpiry < 0 {
			nextExpiry = wait
		}
		select {
		case <-ctx.Done():
			return t, nil
		case <-timer.C:
			return t, nil
		case <-wake:
		case <-time.After(nextExpiry + 10*time.Millisecond):
		}
	}
}

// Transactions lists the user's transactions, newest first.
func (s *Service) Transactions(ctx context.Context, p *Principal, f countersign.TxFilter) ([]*countersign.Transaction, error) {
	f.OwnerID = p.User.ID
	if p.IsAgent() {
		f.AgentID = p.Agent.ID
	}
	var err error
	if f.ApproverOf, err = s.approverInbox(ctx, p); err != nil { // the wallets p approves (approvers.go)
		return nil, err
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, countersign.Errorf(countersign.BadRequest, "unknown status %q", truncate(string(f.Status), 32))
	}
	list, err := s.store.Transactions(ctx, f)
	if err != nil {
		return nil, err
	}
	for i, t := range list {
		if list[i], err = s.expireIfDue(ctx, t); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// Cancel withdraws an agent's own pending request.
// p is an agent (http: Agent; mcp: agents only); load checks it is the one
// that prepared the request.
func (s *Service) Cancel(ctx context.Context, p *Principal, id string) (*countersign.Transaction, error) {
	t, err := s.load(ctx, p, id)
	if err != nil {
		return nil, err
	}
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		if t, err = s.store.Transaction(ctx, id); err != nil {
			return err
		}
		// Pending, or authorized and not yet signed (an auto-approved
		// request the agent no longer wants: cancelling releases its budget
		// at once instead of at AUTHORIZED_TTL). The row is locked, so a
		// concurrent execute either signed first (TxHash set, refused
		// here) or waits and then finds it cancelled.
		switch {
		case t.Status == countersign.StatusPending:
		case t.Status == countersign.StatusAuthorized && t.TxHash == "" && len(t.RawTx) == 0:
		default:
			return countersign.Errorf(countersign.Conflict, "transaction is %s: only pending requests and authorized ones not yet executed can be cancelled", t.Status)
		}
		details := map[string]string{}
		if t.Status == countersign.StatusAuthorized {
			details["from"] = string(t.Status)
		}
		return s.setStatus(ctx, cs, t, countersign.StatusCancelled, p.Actor(), "transaction.cancel", details)
	})
	return t, err
}

// Execute signs and broadcasts an authorized transaction for the agent that
// prepared it. It is exactly-once: the signed transaction is stored before
// broadcast, and repeated or concurrent calls return the same hash.
// p is an agent (http: Agent on /api/execute_transaction and /eth; mcp:
// agents only); load checks it is the one that prepared the request.
func (s *Service) Execute(ctx context.Context, p *Principal, id string) (*countersign.Transaction, error) {
	t, err := s.load(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if t.Type == countersign.TxX402 { // signed only by the x402 call that sends it, with its receipt (x402.go)
		return nil, countersign.Errorf(countersign.BadRequest, "transaction %s is an x402 payment: call POST /api/x402/fetch again with its transaction_id to pay", t.ID)
	}
	return s.execute(ctx, p.Actor(), t)
}

func notAuthorized(t *countersign.Transaction) error {
	switch t.Status {
	case countersign.StatusPending:
		return countersign.Errorf(countersign.NotAuthorized, "transaction is pending: a human has not approved it yet")
	default:
		return countersign.Errorf(countersign.NotAuthorized, "transaction is %s and cannot be executed", t.Status)
	}
}

// execute, the receipt tracker and their money checks are in money.go.

// UserSpend is a spend the user starts and approves in one step with their
// password and a TOTP code (the /api/transfer family). It returns
// once the transaction is signed and broadcast.
// p is a user with MFA on: the route's rule (http: UserMFA).
func (s *Service) UserSpend(ctx context.Context, p *Principal, password, code, walletAddress string, req *PrepareRequest) (*countersign.Transaction, error) {
	if err := s.checkPassword(ctx, p.User, password); err != nil {
		return nil, err
	}
	w, err := s.ownedWallet(ctx, p, walletAddress)
	if err != nil {
		return nil, err
	}
	// A wallet with approvers besides its owner spends only what they
	// approve: a one-step owner spend would go around them (as an exported
	// key would; export refuses such wallets for the same reason).
	approvers, err := s.store.Approvers(ctx, w.ID)
	if err != nil {
		return nil, err
	}
	if len(approvers) > 0 {
		return nil, countersign.Errorf(countersign.Forbidden, "wallet %s has %d approver(s) besides its owner: a spend from it needs their approval; have an agent prepare it (POST /api/prepare_transaction) so they can decide", w.Address, len(approvers))
	}
	t, err := s.buildSpend(ctx, w, req)
	if err != nil {
		return nil, err
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	t.Status, t.ApprovedDigest, t.DecidedBy, t.DecidedAt = countersign.StatusAuthorized, t.Digest, p.User.ID, now
	t.CreatedAt, t.UpdatedAt, t.ExpiresAt = now, now, now
	if err := s.createTransaction(ctx, t, p.Actor(), "transaction.user_spend"); err != nil {
		return nil, err
	}
	res, err := s.execute(ctx, p.Actor(), t)
	if err != nil {
		s.failUnsent(ctx, t, err)
	}
	return res, err
}

// failUnsent ends a one-step spend whose execute failed before anything
// was signed (insufficient funds, a fee cap, the node unreachable): no
// agent will execute it and no one can cancel it, so left authorized it
// would sit in the owner's inbox as an approved spend until
// AUTHORIZED_TTL. It fails, with the error, audited. A row that was
// signed is the tracker's.
func (s *Service) failUnsent(ctx context.Context, t *countersign.Transaction, cause error) {
	ctx, cancel := detach(ctx, 10*time.Second) // the caller may have gone: the row must not stay
	defer cancel()
	err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil {
			return err
		}
		if cur.Status != countersign.StatusAuthorized || cur.TxHash != "" || len(cur.Signature) != 0 {
			return nil
		}
		cur.Error = countersign.ErrorDetail(cause)
		return s.setStatus(ctx, cs, cur, countersign.StatusFailed, "system", "transaction.user_spend_failed", map[string]string{"error": cur.Error})
	})
	if err != nil {
		s.log.Warn("a one-step spend that failed before signing could not be marked failed: it expires after AUTHORIZED_TTL", "transaction_id", t.ID, "err", err)
	}
}
