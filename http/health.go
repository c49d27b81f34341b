package http

import (
	"net/http"

	"github.com/countersign/countersign/core"
)

// Liveness, readiness and the OpenAPI document.

type okResp struct {
	Status string `json:"status"`
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(s.openapi)
	return err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	return writeJSON(w, 200, okResp{Status: "ok"})
}

type readyResp struct {
	Status      string `json:"status"`
	ChainID     int64  `json:"chain_id"`
	BlockNumber uint64 `json:"block_number"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	n, err := s.Svc.Ready(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, readyResp{Status: "ready", ChainID: s.Svc.ChainID().Int64(), BlockNumber: n})
}
