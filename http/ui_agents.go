package http

import (
	"fmt"
	"net/http"
)

// The web UI's agent pages: list, create (the key shown once), revoke.

type agentRow struct {
	ID, Name, Wallet, KeyPrefix, LastUsed string
	Revoked                               bool
}

type createdAgent struct{ Name, Key, Curl string }

func (s *Server) agentsPage(w http.ResponseWriter, r *http.Request, c *uiCtx, status int, created *createdAgent) error {
	ctx := r.Context()
	wallets, err := s.Svc.Wallets(ctx, c.p)
	if err != nil {
		return err
	}
	addr := map[string]string{}
	for _, wl := range wallets {
		addr[wl.ID] = wl.Address
	}
	agents, err := s.Svc.Agents(ctx, c.p)
	if err != nil {
		return err
	}
	var rows []agentRow
	for _, a := range agents {
		last := "never"
		if !a.LastUsedAt.IsZero() {
			last = a.LastUsedAt.UTC().Format("2006-01-02 15:04")
		}
		rows = append(rows, agentRow{ID: a.ID, Name: a.Name, Wallet: addr[a.WalletID], KeyPrefix: a.KeyPrefix, LastUsed: last, Revoked: a.Revoked()})
	}
	return s.render(w, r, c, status, "agents.html", "Agents", "agents", map[string]any{"Agents": rows, "Wallets": wallets, "Created": created})
}

func (s *Server) uiAgents(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	return s.agentsPage(w, r, c, 200, nil)
}

func (s *Server) uiCreateAgent(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	a, key, err := s.Svc.CreateAgent(r.Context(), c.p, r.PostForm.Get("name"), r.PostForm.Get("wallet_address"), r.PostForm.Get("mfa_code"))
	if err != nil {
		return back(w, r, "/agents", err, "")
	}
	base := "http://" + r.Host
	if secure(r) {
		base = "https://" + r.Host
	}
	curl := fmt.Sprintf(`curl -s --json '{"type":"native","to_address":"0x000000000000000000000000000000000000dEaD","amount":"1000000000000000","memo":"first test"}' \
  -H "X-API-KEY: %s" %s/api/prepare_transaction`, key, base)
	// Rendered, not redirected: the key must never travel in a cookie or URL.
	return s.agentsPage(w, r, c, http.StatusCreated, &createdAgent{Name: a.Name, Key: key, Curl: curl})
}

func (s *Server) uiRevokeAgent(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	err := s.Svc.RevokeAgent(r.Context(), c.p, r.PathValue("id"), r.PostForm.Get("mfa_code"))
	return back(w, r, "/agents", err, "Agent revoked: its key stopped working.")
}
