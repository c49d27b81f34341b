package http

import (
	"net/http"

	"github.com/countersign/countersign/core"
)

// auditCheckpoint returns the head of the caller's own audit chain signed
// with the server's audit key, to keep somewhere the server cannot write:
// `countersign audit verify --checkpoint FILE` then shows whether any entry
// up to it was removed. A user sees only their own chain's head (chains
// are per owner); the whole server's checkpoint comes from the CLI, which
// opens the database itself.
func (s *Server) auditCheckpoint(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	cp, err := s.Svc.AuditCheckpoint(r.Context(), p.User.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, cp)
}
