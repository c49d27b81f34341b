package http

import (
	"net/http"
)

// The web UI's audit log page.

func (s *Server) uiAudit(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	after := int64(0)
	if a := r.URL.Query().Get("after"); a != "" {
		n, err := parseSeq("after", a)
		if err != nil {
			return err
		}
		after = n
	}
	entries, err := s.Svc.AuditLog(r.Context(), c.p.User.ID, after, 200)
	if err != nil {
		return err
	}
	actors := make([]string, 0, len(entries))
	for _, e := range entries {
		actors = append(actors, e.Actor)
	}
	d := map[string]any{"Entries": entries, "Actors": s.Svc.ActorNames(r.Context(), c.p, actors)}
	if len(entries) == 200 {
		d["Next"] = entries[len(entries)-1].Seq
	}
	return s.render(w, r, c, 200, "audit.html", "Audit log", "audit", d)
}
