package http

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/countersign/countersign/core"
)

// The user's hash-chained audit log.

type auditJSON struct {
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Subject  string          `json:"subject"`
	Details  json.RawMessage `json:"details"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

type auditResp struct {
	Entries []auditJSON `json:"entries"`
}

func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	q := r.URL.Query()
	after, limit := int64(0), 100
	if a := q.Get("after"); a != "" {
		n, err := parseSeq("after", a)
		if err != nil {
			return err
		}
		after = n
	}
	if l := q.Get("limit"); l != "" {
		n, err := parseLimit(l, 1000)
		if err != nil {
			return err
		}
		limit = n
	}
	list, err := s.Svc.AuditLog(r.Context(), p.User.ID, after, limit)
	if err != nil {
		return err
	}
	out := auditResp{Entries: []auditJSON{}}
	for _, e := range list {
		out.Entries = append(out.Entries, auditJSON{Seq: e.Seq, At: e.At, Actor: e.Actor, Action: e.Action, Subject: e.Subject,
			Details: json.RawMessage(e.Details), PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)})
	}
	return writeJSON(w, 200, out)
}
