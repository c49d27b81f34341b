package http

import (
	"net/http"

	"github.com/countersign/countersign/core"
)

// Credit top-ups (core/topups.go): an agent asks a provider for credits,
// the payment goes through the wallet's policy like any request, and the
// top-up's state is readable while it moves.

// topupRoutes are the credit top-up routes.
func topupRoutes() []Route {
	return []Route{
		{Method: "POST", Path: "/api/topups", Access: Agent, Summary: "Request provider credits (e.g. openrouter): the charge is paid from the agent's wallet through its policy", Status: 201, Req: core.TopupRequest{}, Resp: core.TopupView{}, h: (*Server).requestTopup},
		{Method: "GET", Path: "/api/topups", Access: UserOrAgent, Summary: "List top-ups (the owner's, or an agent's own), newest first", Status: 200, Query: []string{"status"}, Resp: topupsResp{}, h: (*Server).topups},
		{Method: "GET", Path: "/api/topups/{id}", Access: UserOrAgent, Summary: "One top-up: its state, charge, payment request and error", Status: 200, Resp: core.TopupView{}, h: (*Server).topup},
	}
}

type topupsResp struct {
	Topups []core.TopupView `json:"topups"`
}

func (s *Server) requestTopup(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req core.TopupRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := s.Svc.RequestTopup(r.Context(), p, req)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, core.TopupViewOf(t))
}

func (s *Server) topups(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.Topups(r.Context(), p, r.URL.Query().Get("status"))
	if err != nil {
		return err
	}
	out := topupsResp{Topups: make([]core.TopupView, len(list))}
	for i, t := range list {
		out.Topups[i] = core.TopupViewOf(t)
	}
	return writeJSON(w, 200, out)
}

func (s *Server) topup(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	t, err := s.Svc.Topup(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, core.TopupViewOf(t))
}
