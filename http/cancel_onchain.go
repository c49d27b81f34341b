package http

import (
	"net/http"

	"github.com/countersign/countersign/core"
)

// cancelOnchainResp shows what the approver's code agreed to: the
// self-transfer that takes the stuck nonce and the most it may cost.
type cancelOnchainResp struct {
	Transaction    core.TxView `json:"transaction"`
	CancelTxHash   string      `json:"cancel_tx_hash"`
	Nonce          uint64      `json:"nonce"`
	GasLimit       uint64      `json:"gas_limit"`
	Tip            string      `json:"max_priority_fee_per_gas"` // wei
	FeeCap         string      `json:"max_fee_per_gas"`          // wei
	MaxFee         string      `json:"max_fee"`                  // wei: gas_limit × max_fee_per_gas
	BroadcastError string      `json:"broadcast_error,omitempty"`
}

// cancelOnchain is POST /api/transactions/{id}/cancel_onchain: an
// approver of the wallet, with a TOTP code, replaces a stuck submitted
// transaction with a zero-value self-transfer at the same nonce.
func (s *Server) cancelOnchain(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req mfaReq
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := s.Svc.CancelOnchain(r.Context(), p, r.PathValue("id"), req.MFACode)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, cancelOnchainResp{Transaction: core.View(res.Transaction), CancelTxHash: res.CancelHash, Nonce: res.Nonce,
		GasLimit: res.GasLimit, Tip: res.Tip.String(), FeeCap: res.FeeCap.String(), MaxFee: res.MaxFee.String(), BroadcastError: res.BroadcastError})
}
