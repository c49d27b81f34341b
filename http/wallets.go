package http

import (
	"net/http"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// Wallets: create, load, list, balances.

type createWalletReq struct {
	Password string `json:"password"`
	Name     string `json:"name,omitempty"`
}

type createWalletResp struct {
	WalletID string `json:"wallet_id"`
	Address  string `json:"address"`
	Name     string `json:"name"`
}

func (s *Server) createWallet(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req createWalletReq
	if err := decode(r, &req); err != nil {
		return err
	}
	wl, err := s.Svc.CreateWallet(r.Context(), p, req.Password, req.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, createWalletResp{WalletID: wl.ID, Address: wl.Address, Name: wl.Name})
}

type derivedWalletReq struct {
	OmniSession string `json:"omni_session"` // a session_jwt from /v1/auth/… (SIWE, email or OIDC login)
	MFACode     string `json:"mfa_code"`
	Name        string `json:"name,omitempty"`
}

func (s *Server) createDerivedWallet(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req derivedWalletReq
	if err := decode(r, &req); err != nil {
		return err
	}
	wl, err := s.Svc.CreateDerivedWallet(r.Context(), p, req.OmniSession, req.MFACode, req.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, createWalletResp{WalletID: wl.ID, Address: wl.Address, Name: wl.Name})
}

type loadWalletReq struct {
	Address  string `json:"address"`
	Password string `json:"password,omitempty"`
	MFACode  string `json:"mfa_code,omitempty"`
}

type loadWalletResp struct {
	Address string `json:"address"`
	ChainID int64  `json:"chain_id"`
	Balance string `json:"balance"`
}

func (s *Server) loadWallet(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req loadWalletReq
	if err := decode(r, &req); err != nil {
		return err
	}
	if p.IsAgent() && (req.Password != "" || req.MFACode != "") {
		return countersign.Errorf(countersign.BadRequest, "agents load their wallet with {address} only; never send a user's password or code")
	}
	wl, bal, err := s.Svc.LoadWallet(r.Context(), p, req.Address, req.Password, req.MFACode)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, loadWalletResp{Address: wl.Address, ChainID: s.Svc.ChainID().Int64(), Balance: bal.String()})
}

type walletJSON struct {
	WalletID  string    `json:"wallet_id"`
	Name      string    `json:"name"`
	Address   string    `json:"address"`
	Signer    string    `json:"signer"` // sealed (the server's own keys), keystore or awskms
	CreatedAt time.Time `json:"created_at"`
}

type walletsResp struct {
	Wallets []walletJSON `json:"wallets"`
}

func (s *Server) wallets(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.Wallets(r.Context(), p)
	if err != nil {
		return err
	}
	out := walletsResp{Wallets: []walletJSON{}}
	for _, wl := range list {
		out.Wallets = append(out.Wallets, walletJSON{WalletID: wl.ID, Name: wl.Name, Address: wl.Address, Signer: countersign.WalletSignerName(wl.KeyFormat), CreatedAt: wl.CreatedAt})
	}
	return writeJSON(w, 200, out)
}

type balanceResp struct {
	Address      string `json:"address"`
	TokenAddress string `json:"token_address,omitempty"`
	Balance      string `json:"balance"`
	Decimals     uint8  `json:"decimals"`
	Symbol       string `json:"symbol"`
}

func (s *Server) balance(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	q := r.URL.Query()
	b, err := s.Svc.Balance(r.Context(), q.Get("address"), q.Get("token_address"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, balanceResp{Address: b.Address, TokenAddress: b.Token, Balance: b.Balance.String(), Decimals: b.Decimals, Symbol: b.Symbol})
}
