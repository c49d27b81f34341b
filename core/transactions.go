package core

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"time"

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
const MaxMemo = 500

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
	case countersign.TxTypedData:
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
// Every check that can be made before a human looks is made here.
func (s *Service) buildSpend(ctx context.Context, w *countersign.Wallet, req *PrepareRequest) (*countersign.Transaction, error) {
	if err := checkMemo(req.Memo); err != nil {
		return nil, err
	}
	t := &countersign.Transaction{ID: uuid.NewString(), OwnerID: w.OwnerID, WalletID: w.ID, ChainID: s.chainID.Int64(),
		Type: countersign.TxType(req.Type), From: w.Address, Memo: req.Memo}
	abiSet := len(bytes.TrimSpace(req.ContractABI)) > 0 && string(bytes.TrimSpace(req.ContractABI)) != "null"
	argsSet := len(bytes.TrimSpace(req.FunctionArgs)) > 0 && string(bytes.TrimSpace(req.FunctionArgs)) != "null"
	msgSet := len(bytes.TrimSpace(req.Message)) > 0 && string(bytes.TrimSpace(req.Message)) != "null"
	if t.Type != countersign.TxContractCall && req.Data != "" {
		return nil, countersign.Errorf(countersign.BadRequest, "data is only used for contract_call transactions")
	}
	if !t.Type.IsMessage() && msgSet {
		return nil, countersign.Errorf(countersign.BadRequest, "message is only used for personal_sign and typed_data requests")
	}
	switch t.Type {
	case countersign.TxPersonalSign, countersign.TxTypedData:
		if err := notUsed(req.Type, map[string]bool{"to_address": req.ToAddress != "", "amount": req.Amount != "", "token_address": req.TokenAddress != "",
			"contract_address": req.ContractAddress != "", "contract_abi": abiSet, "function_name": req.FunctionName != "", "function_args": argsSet, "value": req.Value != ""}); err != nil {
			return nil, err
		}
		if err := s.buildMessage(t, req.Message); err != nil {
			return nil, err
		}
	case countersign.TxNative:
		if err := notUsed(req.Type, map[string]bool{"token_address": req.TokenAddress != "", "contract_address": req.ContractAddress != "",
			"contract_abi": abiSet, "function_name": req.FunctionName != "", "function_args": argsSet, "value": req.Value != ""}); err != nil {
			return nil, err
		}
		to, err := ParseAddress("to_address", req.ToAddress)
		if err != nil {
			return nil, err
		}
		amount, err := countersign.ParseAmount("amount", req.Amount)
		if err != nil {
			return nil, err
		}
		t.To, t.Amount, t.TxTo, t.TxValue = to.Hex(), amount.String(), to.Hex(), amount.String()
	case countersign.TxERC20:
		if err := notUsed(req.Type, map[string]bool{"contract_address": req.ContractAddress != "", "contract_abi": abiSet,
			"function_name": req.FunctionName != "", "function_args": argsSet, "value": req.Value != ""}); err != nil {
			return nil, err
		}
		to, err := ParseAddress("to_address", req.ToAddress)
		if err != nil {
			return nil, err
		}
		token, err := ParseAddress("token_address", req.TokenAddress)
		if err != nil {
			return nil, err
		}
		amount, err := countersign.ParseAmount("amount", req.Amount)
		if err != nil {
			return nil, err
		}
		if _, err := s.TokenInfo(ctx, token); err != nil {
			return nil, err
		}
		data, err := erc20ABI.Pack("transfer", to, amount)
		if err != nil {
			return nil, err
		}
		t.To, t.Amount, t.TokenAddress = to.Hex(), amount.String(), token.Hex()
		t.TxTo, t.TxValue, t.TxData = token.Hex(), "0", data
	case countersign.TxContractCall:
		if err := notUsed(req.Type, map[string]bool{"to_address": req.ToAddress != "" && req.ToAddress != req.ContractAddress,
			"token_address": req.TokenAddress != "", "amount": req.Amount != "" && req.Amount != req.Value}); err != nil {
			return nil, err
		}
		contract, err := ParseAddress("contract_address", req.ContractAddress)
		if err != nil {
			return nil, err
		}
		value := big.NewInt(0)
		if req.Value != "" {
			if value, err = countersign.ParseAmount("value", req.Value); err != nil {
				return nil, err
			}
		}
		var data []byte
		var compactABI, sig string
		if req.Data != "" {
			// Raw calldata (eth_sendTransaction): nothing to decode it with,
			// so the human sees the selector and the bytes.
			if abiSet || req.FunctionName != "" || argsSet {
				return nil, countersign.Errorf(countersign.BadRequest, "give either data or contract_abi with function_name, not both")
			}
			if data, err = hexutil.Decode(req.Data); err != nil {
				return nil, countersign.Errorf(countersign.BadRequest, "data must be 0x-prefixed hex: %v", err)
			}
		} else {
			a, abiJSON, err := ParseABI(req.ContractABI)
			if err != nil {
				return nil, err
			}
			var nargs []json.RawMessage
			if argsSet {
				if err := json.Unmarshal(req.FunctionArgs, &nargs); err != nil {
					return nil, countersign.Errorf(countersign.BadRequest, "function_args must be a JSON array")
				}
			}
			m, err := FindMethod(a, req.FunctionName, len(nargs))
			if err != nil {
				return nil, err
			}
			if value.Sign() > 0 && !m.IsPayable() {
				return nil, countersign.Errorf(countersign.BadRequest, "function %s is not payable: value must be 0", m.Sig)
			}
			if data, err = EncodeCall(m, req.FunctionArgs); err != nil {
				return nil, err
			}
			compactABI, sig = abiJSON, m.Sig
		}
		code, err := s.chain.CodeAt(ctx, contract.Hex())
		if err != nil {
			return nil, err
		}
		if len(code) == 0 {
			return nil, countersign.Errorf(countersign.BadRequest, "contract_address %s has no contract code on chain %s", contract.Hex(), s.chainID)
		}
		args := ""
		if compactABI != "" {
			args = "[]"
		}
		if argsSet {
			var c bytes.Buffer
			_ = json.Compact(&c, req.FunctionArgs)
			args = c.String()
		}
		t.To, t.Amount, t.Value, t.ContractAddress = contract.Hex(), value.String(), value.String(), contract.Hex()
		t.ContractABI, t.FunctionName, t.FunctionArgs = compactABI, sig, args
		t.TxTo, t.TxValue, t.TxData = contract.Hex(), value.String(), data
	case "":
		return nil, countersign.Errorf(countersign.BadRequest, "type is required: native, erc20, contract_call, personal_sign or typed_data")
	default:
		return nil, countersign.Errorf(countersign.BadRequest, "type must be native, erc20, contract_call, personal_sign or typed_data, not %q", truncate(req.Type, 32))
	}
	if !t.Type.IsMessage() {
		if err := s.bindFees(ctx, t); err != nil {
			return nil, err
		}
	}
	t.Digest = Digest(t)
	return t, nil
}

// requestHash fingerprints a prepare request for Idempotency-Key checks.
func requestHash(req *PrepareRequest) []byte {
	b, _ := json.Marshal(req)
	h := sha256.Sum256(b)
	return h[:]
}

// Prepare records an agent's spend request as pending a human decision.
// With an idempotency key, a repeated request returns the first result and
// a different request under the same key is a Conflict.
func (s *Service) Prepare(ctx context.Context, p *Principal, req *PrepareRequest, idemKey string) (*countersign.Transaction, error) {
	if !p.IsAgent() {
		return nil, countersign.Errorf(countersign.Forbidden, "only agents prepare transactions")
	}
	if len(idemKey) > 128 {
		return nil, countersign.Errorf(countersign.BadRequest, "Idempotency-Key must be at most 128 characters")
	}
	rh := requestHash(req)
	if idemKey != "" {
		if prev, err := s.store.TransactionByIdempotencyKey(ctx, p.Agent.ID, idemKey); err == nil {
			if !bytes.Equal(prev.RequestHash, rh) {
				return nil, countersign.Errorf(countersign.Conflict, "Idempotency-Key was already used for a different request")
			}
			return prev, nil
		}
	}
	w, err := s.store.WalletByID(ctx, p.Agent.WalletID)
	if err != nil {
		return nil, err
	}
	t, err := s.buildSpend(ctx, w, req)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	t.AgentID, t.Status, t.IdempotencyKey, t.RequestHash = p.Agent.ID, countersign.StatusPending, idemKey, rh
	t.CreatedAt, t.UpdatedAt, t.ExpiresAt = now, now, now.Add(s.cfg.PendingTTL)
	err = s.inTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateTransaction(ctx, t); err != nil {
			return err
		}
		if err := s.audit(ctx, t.OwnerID, p.Actor(), "transaction.prepare", t.ID, map[string]string{
			"type": string(t.Type), "to": t.To, "amount": t.Amount, "token": t.TokenAddress, "digest": hex.EncodeToString(t.Digest)}); err != nil {
			return err
		}
		return s.emit(ctx, t.OwnerID, "transaction.pending", t.ID, View(t))
	})
	if err != nil {
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
	if err := visible(p, t); err != nil {
		return nil, err
	}
	return s.expireIfDue(ctx, t)
}

// setStatus moves t to status inside the current transaction, with its
// audit entry and outbox event.
func (s *Service) setStatus(ctx context.Context, t *countersign.Transaction, to countersign.Status, actor, action string, details any) error {
	if !countersign.CanTransition(t.Status, to) {
		return countersign.Errorf(countersign.Conflict, "transaction %s is %s and cannot become %s", t.ID, t.Status, to)
	}
	t.Status, t.UpdatedAt = to, s.clock.Now().UTC()
	if err := s.store.UpdateTransaction(ctx, t); err != nil {
		return err
	}
	if err := s.audit(ctx, t.OwnerID, actor, action, t.ID, details); err != nil {
		return err
	}
	return s.emit(ctx, t.OwnerID, "transaction."+string(to), t.ID, View(t))
}

// expireIfDue marks a pending transaction whose window has passed as
// expired, and returns the current row.
func (s *Service) expireIfDue(ctx context.Context, t *countersign.Transaction) (*countersign.Transaction, error) {
	if !t.Expired(s.clock.Now()) {
		return t, nil
	}
	err := s.inTx(ctx, func(ctx context.Context) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil {
			return err
		}
		t = cur
		if !cur.Expired(s.clock.Now()) {
			return nil
		}
		return s.setStatus(ctx, cur, countersign.StatusExpired, "system", "transaction.expire", map[string]string{"expires_at": cur.ExpiresAt.Format(time.RFC3339)})
	})
	return t, err
}

// ExpirePending expires every pending request whose window has passed.
func (s *Service) ExpirePending(ctx context.Context) error {
	pending, err := s.store.TransactionsByStatus(ctx, countersign.StatusPending, 500)
	if err != nil {
		return err
	}
	for _, t := range pending {
		if _, err := s.expireIfDue(ctx, t); err != nil {
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
func (s *Service) Authorize(ctx context.Context, p *Principal, ids []string, code string, d Decision, reason string) ([]*countersign.Transaction, error) {
	if p.IsAgent() {
		return nil, countersign.Errorf(countersign.Forbidden, "agents cannot authorize transactions")
	}
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
	if err := requireMFA(p); err != nil {
		return nil, err
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
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	var out []*countersign.Transaction
	err := s.inTx(ctx, func(ctx context.Context) error {
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
			t.DecidedBy, t.DecidedAt, t.Reason = p.User.ID, s.clock.Now().UTC(), reason
			to, action := countersign.StatusAuthorized, "transaction.authorize"
			if d == Reject {
				to, action = countersign.StatusRejected, "transaction.reject"
			} else {
				t.ApprovedDigest = t.Digest
			}
			if err := s.setStatus(ctx, t, to, p.Actor(), action, map[string]string{"digest": hex.EncodeToString(t.Digest), "reason": reason}); err != nil {
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
func (s *Service) Cancel(ctx context.Context, p *Principal, id string) (*countersign.Transaction, error) {
	if !p.IsAgent() {
		return nil, countersign.Errorf(countersign.Forbidden, "only the agent that prepared a transaction can cancel it")
	}
	t, err := s.load(ctx, p, id)
	if err != nil {
		return nil, err
	}
	err = s.inTx(ctx, func(ctx context.Context) error {
		if t, err = s.store.Transaction(ctx, id); err != nil {
			return err
		}
		if t.Status != countersign.StatusPending {
			return countersign.Errorf(countersign.Conflict, "transaction is %s: only pending requests can be cancelled", t.Status)
		}
		return s.setStatus(ctx, t, countersign.StatusCancelled, p.Actor(), "transaction.cancel", map[string]string{})
	})
	return t, err
}

// Execute signs and broadcasts an authorized transaction for the agent that
// prepared it. It is exactly-once: the signed transaction is stored before
// broadcast, and repeated or concurrent calls return the same hash.
func (s *Service) Execute(ctx context.Context, p *Principal, id string) (*countersign.Transaction, error) {
	if !p.IsAgent() {
		return nil, countersign.Errorf(countersign.Forbidden, "only the agent that prepared a transaction executes it")
	}
	t, err := s.load(ctx, p, id)
	if err != nil {
		return nil, err
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
// password and a TOTP code (the seed's /api/transfer family). It returns
// once the transaction is signed and broadcast.
func (s *Service) UserSpend(ctx context.Context, p *Principal, password, code, walletAddress string, req *PrepareRequest) (*countersign.Transaction, error) {
	if p.IsAgent() {
		return nil, countersign.Errorf(countersign.Forbidden, "agents cannot start user spends")
	}
	if err := requireMFA(p); err != nil {
		return nil, err
	}
	if err := s.checkPassword(ctx, p.User, password); err != nil {
		return nil, err
	}
	w, err := s.ownedWallet(ctx, p, walletAddress)
	if err != nil {
		return nil, err
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
	err = s.inTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateTransaction(ctx, t); err != nil {
			return err
		}
		if err := s.audit(ctx, t.OwnerID, p.Actor(), "transaction.user_spend", t.ID, map[string]string{
			"type": string(t.Type), "to": t.To, "amount": t.Amount, "token": t.TokenAddress, "digest": hex.EncodeToString(t.Digest)}); err != nil {
			return err
		}
		return s.emit(ctx, t.OwnerID, "transaction.authorized", t.ID, View(t))
	})
	if err != nil {
		return nil, err
	}
	return s.execute(ctx, p.Actor(), t)
}
