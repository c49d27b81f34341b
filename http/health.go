package http

import (
	"errors"
	"net/http"

	"github.com/countersign/countersign"
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

// readyz answers anyone (a load balancer), so a failure is said without
// its detail — which names the node's host and port, or the database's —
// and logged in full for the operator.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	n, err := s.Svc.Ready(r.Context())
	if err != nil {
		s.Log.Warn("not ready", "err", err)
		what := "a dependency"
		var nr *core.NotReady
		if errors.As(err, &nr) {
			what = nr.Part
		}
		return countersign.Errorf(countersign.Unavailable, "not ready: %s does not answer (the server log says why)", what)
	}
	return writeJSON(w, 200, readyResp{Status: "ready", ChainID: s.Svc.ChainID().Int64(), BlockNumber: n})
}
