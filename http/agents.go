package http

import (
	"net/http"
	"time"

	"github.com/countersign/countersign/core"
)

// Agents: create (the API key shown once), list, revoke.

type createAgentReq struct {
	Name          string `json:"name"`
	WalletAddress string `json:"wallet_address"`
	MFACode       string `json:"mfa_code"`
}

type createAgentResp struct {
	AgentID       string `json:"agent_id"`
	Name          string `json:"name"`
	WalletAddress string `json:"wallet_address"`
	APIKey        string `json:"api_key"`
}

func (s *Server) createAgent(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req createAgentReq
	if err := decode(r, &req); err != nil {
		return err
	}
	a, key, err := s.Svc.CreateAgent(r.Context(), p, req.Name, req.WalletAddress, req.MFACode)
	if err != nil {
		return err
	}
	wl, err := s.Svc.AgentWallet(r.Context(), a)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, createAgentResp{AgentID: a.ID, Name: a.Name, WalletAddress: wl.Address, APIKey: key})
}

type agentJSON struct {
	AgentID       string     `json:"agent_id"`
	Name          string     `json:"name"`
	WalletAddress string     `json:"wallet_address"`
	KeyPrefix     string     `json:"key_prefix"`
	CreatedAt     time.Time  `json:"created_at"`
	LastUsedAt    *time.Time `json:"last_used_at"`
	RevokedAt     *time.Time `json:"revoked_at"`
}

type agentsResp struct {
	Agents []agentJSON `json:"agents"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) agents(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.Agents(r.Context(), p)
	if err != nil {
		return err
	}
	wallets, err := s.Svc.Wallets(r.Context(), p)
	if err != nil {
		return err
	}
	addr := map[string]string{}
	for _, wl := range wallets {
		addr[wl.ID] = wl.Address
	}
	out := agentsResp{Agents: []agentJSON{}}
	for _, a := range list {
		out.Agents = append(out.Agents, agentJSON{AgentID: a.ID, Name: a.Name, WalletAddress: addr[a.WalletID], KeyPrefix: a.KeyPrefix,
			CreatedAt: a.CreatedAt, LastUsedAt: timePtr(a.LastUsedAt), RevokedAt: timePtr(a.RevokedAt)})
	}
	return writeJSON(w, 200, out)
}

type revokeResp struct {
	AgentID string `json:"agent_id"`
	Revoked bool   `json:"revoked"`
}

func (s *Server) revokeAgent(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req mfaReq
	if err := decode(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.Svc.RevokeAgent(r.Context(), p, id, req.MFACode); err != nil {
		return err
	}
	return writeJSON(w, 200, revokeResp{AgentID: id, Revoked: true})
}
