package http

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// Transactions: an agent prepares, the human authorizes, the agent executes or cancels; the user's own spends.

type prepareResp struct {
	TransactionID  string    `json:"transaction_id"`
	Status         string    `json:"status"`
	ExpiresAt      time.Time `json:"expires_at"`
	ApprovalDigest string    `json:"approval_digest"`

	// The policy's decision (policy_http.go) and the decoded view.
	Decision        string            `json:"decision"`
	RuleID          string            `json:"rule_id"`
	Approvals       []core.TxApproval `json:"approvals"`
	ApprovalsNeeded int               `json:"approvals_needed"`
	AuthorizeAt     *time.Time        `json:"authorize_at"`
	Review          *reviewJSON       `json:"review"`
	Warnings        []core.Warning    `json:"warnings"` // {code, severity, text}
}

func (s *Server) prepare(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req core.PrepareRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := s.Svc.Prepare(r.Context(), p, &req, r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	v := core.View(t)
	rv := s.reviewOf(r, p, t)
	return writeJSON(w, 202, prepareResp{TransactionID: t.ID, Status: string(t.Status), ExpiresAt: t.ExpiresAt, ApprovalDigest: "0x" + hex.EncodeToString(t.Digest),
		Decision: v.Decision, RuleID: v.RuleID, Approvals: v.Approvals, ApprovalsNeeded: v.ApprovalsNeeded, AuthorizeAt: v.AuthorizeAt,
		Review: rv, Warnings: allWarnings(t, rv)})
}

type authorizeReq struct {
	TransactionID  string   `json:"transaction_id,omitempty"`
	TransactionIDs []string `json:"transaction_ids,omitempty"`
	MFACode        string   `json:"mfa_code"`
	Decision       string   `json:"decision,omitempty"`
	Reason         string   `json:"reason,omitempty"`
	// Acknowledge confirms the danger warnings ({severity: "danger"}) of
	// the requests approved; without it their approval is refused with
	// ACKNOWLEDGEMENT_REQUIRED (core/review_warnings.go).
	Acknowledge bool `json:"acknowledge,omitempty"`
}

type statusResp struct {
	TransactionID string `json:"transaction_id"`
	Status        string `json:"status"`
}

type authorizeResp struct {
	TransactionID string       `json:"transaction_id,omitempty"`
	Status        string       `json:"status,omitempty"`
	Results       []statusResp `json:"results,omitempty"`
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req authorizeReq
	if err := decode(r, &req); err != nil {
		return err
	}
	batch := req.TransactionIDs != nil
	if batch == (req.TransactionID != "") {
		return countersign.Errorf(countersign.BadRequest, "give exactly one of transaction_id and transaction_ids")
	}
	ids := req.TransactionIDs
	if !batch {
		ids = []string{req.TransactionID}
	}
	txs, err := s.Svc.Decide(r.Context(), p, core.DecideRequest{IDs: ids, Code: req.MFACode, Decision: core.Decision(req.Decision), Reason: req.Reason, Acknowledge: req.Acknowledge})
	if err != nil {
		return err
	}
	if !batch {
		return writeJSON(w, 200, authorizeResp{TransactionID: txs[0].ID, Status: string(txs[0].Status)})
	}
	out := authorizeResp{Results: []statusResp{}}
	for _, t := range txs {
		out.Results = append(out.Results, statusResp{TransactionID: t.ID, Status: string(t.Status)})
	}
	return writeJSON(w, 200, out)
}

// MaxWait bounds a long poll.
const MaxWait = 60 * time.Second

func (s *Server) status(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	q := r.URL.Query()
	var wait time.Duration
	if ws := q.Get("wait"); ws != "" {
		d, err := parseWait(ws) // queryparse.go
		if err != nil {
			return err
		}
		wait = d
	}
	t, err := s.Svc.Status(r.Context(), p, q.Get("transaction_id"), wait)
	if err != nil {
		return err
	}
	rv := s.reviewOf(r, p, t)
	v, err := s.Svc.ViewOf(r.Context(), t) // with the approvals so far (core/approvers.go)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, statusView{TxView: v, Review: rv, Warnings: allWarnings(t, rv)})
}

type txIDReq struct {
	TransactionID string `json:"transaction_id"`
}

type executeResp struct {
	TransactionID string `json:"transaction_id"`
	TxHash        string `json:"tx_hash"`
	Status        string `json:"status"`
	Error         string `json:"error,omitempty"` // what is happening to it, e.g. an approver's on-chain cancel
}

func (s *Server) execute(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req txIDReq
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := s.Svc.Execute(r.Context(), p, req.TransactionID)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, executeResp{TransactionID: t.ID, TxHash: t.TxHash, Status: string(t.Status), Error: t.Error})
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req txIDReq
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := s.Svc.Cancel(r.Context(), p, req.TransactionID)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, statusResp{TransactionID: t.ID, Status: string(t.Status)})
}

type txListResp struct {
	Transactions []core.TxView `json:"transactions"`
	NextBefore   *time.Time    `json:"next_before"`
}

func (s *Server) transactions(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	q := r.URL.Query()
	f := countersign.TxFilter{Status: countersign.Status(q.Get("status")), AgentID: q.Get("agent_id"), Limit: 100}
	if l := q.Get("limit"); l != "" {
		n, err := parseLimit(l, 1000)
		if err != nil {
			return err
		}
		f.Limit = n
	}
	if b := q.Get("before"); b != "" {
		t, err := parseBefore(b)
		if err != nil {
			return err
		}
		f.Before = t
	}
	list, err := s.Svc.Transactions(r.Context(), p, f)
	if err != nil {
		return err
	}
	out := txListResp{Transactions: []core.TxView{}}
	for _, t := range list {
		v, err := s.Svc.ViewOf(r.Context(), t) // with the approvals so far (core/approvers.go)
		if err != nil {
			return err
		}
		out.Transactions = append(out.Transactions, v)
	}
	if len(list) == f.Limit {
		out.NextBefore = &list[len(list)-1].CreatedAt
	}
	return writeJSON(w, 200, out)
}

type spendBase struct {
	Password string `json:"password"`
	MFACode  string `json:"mfa_code"`
	Address  string `json:"address"`
}

type transferReq struct {
	spendBase
	ToAddress string `json:"to_address"`
	Amount    string `json:"amount"`
}

type transferERC20Req struct {
	transferReq
	TokenAddress string `json:"token_address"`
}

type contractCallReq struct {
	spendBase
	ContractAddress string          `json:"contract_address"`
	ContractABI     json.RawMessage `json:"contract_abi"`
	FunctionName    string          `json:"function_name"`
	FunctionArgs    json.RawMessage `json:"function_args,omitempty"`
	Value           string          `json:"value,omitempty"`
	Memo            string          `json:"memo,omitempty"`
}

type spendResp struct {
	TxHash        string `json:"tx_hash"`
	TransactionID string `json:"transaction_id"`
	Status        string `json:"status"`
}

func (s *Server) spend(w http.ResponseWriter, r *http.Request, p *core.Principal, base spendBase, req *core.PrepareRequest) error {
	t, err := s.Svc.UserSpend(r.Context(), p, base.Password, base.MFACode, base.Address, req)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, spendResp{TxHash: t.TxHash, TransactionID: t.ID, Status: string(t.Status)})
}

func (s *Server) transfer(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req transferReq
	if err := decode(r, &req); err != nil {
		return err
	}
	return s.spend(w, r, p, req.spendBase, &core.PrepareRequest{Type: "native", ToAddress: req.ToAddress, Amount: req.Amount})
}

func (s *Server) transferERC20(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req transferERC20Req
	if err := decode(r, &req); err != nil {
		return err
	}
	return s.spend(w, r, p, req.spendBase, &core.PrepareRequest{Type: "erc20", ToAddress: req.ToAddress, Amount: req.Amount, TokenAddress: req.TokenAddress})
}

func (s *Server) contractCall(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req contractCallReq
	if err := decode(r, &req); err != nil {
		return err
	}
	return s.spend(w, r, p, req.spendBase, &core.PrepareRequest{Type: "contract_call", ContractAddress: req.ContractAddress,
		ContractABI: []byte(req.ContractABI), FunctionName: req.FunctionName, FunctionArgs: []byte(req.FunctionArgs), Value: req.Value, Memo: req.Memo})
}
