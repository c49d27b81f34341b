package http

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

type eventResp struct {
	ID      int64           `json:"id"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Data    json.RawMessage `json:"data"`
}

// heartbeat keeps idle connections open through proxies.
const heartbeat = 15 * time.Second

// events streams the user's outbox as Server-Sent Events. It starts after
// Last-Event-ID (or ?after=) when given, and otherwise with new events only.
func (s *Server) events(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return countersign.Errorf(countersign.Internal, "streaming is not supported")
	}
	ctx := r.Context()
	wake, stop := s.Svc.Broker.Subscribe(p.User.ID)
	defer stop()

	after := int64(-1)
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after")} {
		if v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return countersign.Errorf(countersign.BadRequest, "Last-Event-ID must be an event id")
			}
			after = n
		}
	}
	if after < 0 { // only what happens from now on
		n, err := s.Svc.Store.LastEventID(ctx, p.User.ID)
		if err != nil {
			return err
		}
		after = n
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n: connected\n\n")
	fl.Flush()

	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		page, err := s.Svc.Events(ctx, p.User.ID, after)
		if err != nil {
			return nil // the stream has started: nothing more to report
		}
		for _, e := range page {
			b, _ := json.Marshal(eventResp{ID: e.ID, Type: e.Type, Subject: e.Subject, Data: json.RawMessage(e.Payload)})
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, b)
			after = e.ID
		}
		fl.Flush()
		if len(page) == 100 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-tick.C:
			fmt.Fprintf(w, ": keep-alive\n\n")
			fl.Flush()
		}
	}
}
