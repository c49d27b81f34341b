package http

import (
	"net/http"

	"github.com/countersign/countersign/core"
)

// Low-balance alerts of a wallet (core/balancealerts.go).

type balanceAlertReq struct {
	Asset string `json:"asset,omitempty"` // native (default) or a token address
	Below string `json:"below"`           // base units; "0" removes the alert
}

type balanceAlertsResp struct {
	Alerts []core.BalanceAlertView `json:"alerts"`
}

func (s *Server) setBalanceAlert(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req balanceAlertReq
	if err := decode(r, &req); err != nil {
		return err
	}
	list, err := s.Svc.SetBalanceAlert(r.Context(), p, r.PathValue("id"), req.Asset, req.Below)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, balanceAlertsResp{Alerts: list})
}

func (s *Server) balanceAlerts(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.BalanceAlerts(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, balanceAlertsResp{Alerts: list})
}
