package http

import (
	"html/template"
	"math/big"
	"net/http"
	"strings"

	"github.com/countersign/countersign"
)

// The web UI's wallet pages.

type walletView struct {
	Name, Address string
	Balances      []string
	QR            template.URL
}

func (s *Server) uiWallets(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	ctx := r.Context()
	wallets, err := s.Svc.Wallets(ctx, c.p)
	if err != nil {
		return err
	}
	// known tokens: the dev chain's TEST and every token this user has moved
	tokens := []string{}
	seen := map[string]bool{}
	if s.Dev != nil {
		_, tok, _ := s.Dev.Info()
		tokens, seen[strings.ToLower(tok)] = append(tokens, tok), true
	}
	if txs, err := s.Svc.Transactions(ctx, c.p, countersign.TxFilter{Limit: 500}); err == nil {
		for _, t := range txs {
			if t.TokenAddress != "" && !seen[strings.ToLower(t.TokenAddress)] {
				tokens, seen[strings.ToLower(t.TokenAddress)] = append(tokens, t.TokenAddress), true
			}
		}
	}
	var views []walletView
	for _, wl := range wallets {
		v := walletView{Name: wl.Name, Address: wl.Address, QR: qrDataURI(wl.Address)}
		if b, err := s.Svc.Balance(ctx, wl.Address, ""); err == nil {
			v.Balances = append(v.Balances, countersign.FormatUnits(b.Balance, 18)+" "+b.Symbol)
		}
		for _, tok := range tokens {
			if b, err := s.Svc.Balance(ctx, wl.Address, tok); err == nil {
				v.Balances = append(v.Balances, countersign.FormatUnits(b.Balance, int(b.Decimals))+" "+b.Symbol)
			}
		}
		views = append(views, v)
	}
	return s.render(w, r, c, 200, "wallets.html", "Wallets", "wallets", map[string]any{"Wallets": views, "Dev": s.Dev != nil})
}

func (s *Server) uiCreateWallet(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	wl, err := s.Svc.CreateWallet(r.Context(), c.p, r.PostForm.Get("password"), r.PostForm.Get("name"))
	if err != nil {
		return back(w, r, "/wallets", err, "")
	}
	return back(w, r, "/wallets", nil, "Wallet "+wl.Name+" created: "+wl.Address)
}

func (s *Server) uiFaucet(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	if s.Dev == nil {
		return countersign.Errorf(countersign.NotFound, "the faucet exists only on the embedded dev chain")
	}
	addr := r.PostForm.Get("address")
	wallets, err := s.Svc.Wallets(r.Context(), c.p)
	if err != nil {
		return err
	}
	mine := false
	for _, wl := range wallets {
		mine = mine || strings.EqualFold(wl.Address, addr)
	}
	if !mine {
		return back(w, r, "/wallets", countersign.Errorf(countersign.NotFound, "wallet not found"), "")
	}
	one := new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
	if _, err := s.Dev.Fund(r.Context(), addr, one); err != nil {
		return back(w, r, "/wallets", countersign.Wrap(countersign.ChainError, err, "faucet failed"), "")
	}
	if _, err := s.Dev.Mint(r.Context(), addr, new(big.Int).Mul(one, big.NewInt(100))); err != nil {
		return back(w, r, "/wallets", countersign.Wrap(countersign.ChainError, err, "faucet failed"), "")
	}
	return back(w, r, "/wallets", nil, "Sent 1 ETH and 100 TEST to "+addr)
}
