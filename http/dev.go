package http

import (
	"net/http"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// The development chain's info and faucet (only when the embedded chain runs).

type devInfoResp struct {
	ChainID          int64  `json:"chain_id"`
	FaucetAddress    string `json:"faucet_address"`
	TestTokenAddress string `json:"test_token_address"`
	CounterAddress   string `json:"counter_address"`
}

func (s *Server) devInfo(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	f, t, c := s.Dev.Info()
	return writeJSON(w, 200, devInfoResp{ChainID: s.Svc.ChainID().Int64(), FaucetAddress: f, TestTokenAddress: t, CounterAddress: c})
}

type faucetReq struct {
	Address string `json:"address"`
	Amount  string `json:"amount"`
	Token   string `json:"token,omitempty"`
}

type faucetResp struct {
	TxHash string `json:"tx_hash"`
}

// MaxFaucet bounds one faucet request: 1000 ETH or 1000 TEST.
var maxFaucet, _ = countersign.ParseAmount("max", "1000000000000000000000")

func (s *Server) devFaucet(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req faucetReq
	if err := decode(r, &req); err != nil {
		return err
	}
	addr, err := core.ParseAddress("address", req.Address)
	if err != nil {
		return err
	}
	amount, err := countersign.ParseAmount("amount", req.Amount)
	if err != nil {
		return err
	}
	if amount.Cmp(maxFaucet) > 0 {
		return countersign.Errorf(countersign.BadRequest, "amount must be at most %s base units", maxFaucet)
	}
	var hash string
	switch req.Token {
	case "":
		hash, err = s.Dev.Fund(r.Context(), addr.Hex(), amount)
	case "TEST":
		hash, err = s.Dev.Mint(r.Context(), addr.Hex(), amount)
	default:
		return countersign.Errorf(countersign.BadRequest, "token must be omitted (ETH) or \"TEST\"")
	}
	if err != nil {
		return countersign.Wrap(countersign.ChainError, err, "faucet transaction failed")
	}
	return writeJSON(w, 200, faucetResp{TxHash: hash})
}
