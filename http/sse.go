package http

import (
	"encoding/json"
	"fmt"
	"net/http"
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

// events streams the user's events as Server-Sent Events: their own
// chain's, and those of the wallets they approve (core.EventStream). It
// starts after Last-Event-ID (or ?after=) when given, and otherwise with
// new events only.
func (s *Server) events(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return countersign.Errorf(countersign.Internal, "streaming is not supported")
	}
	ctx := r.Context()
	after, err := eventCursor(r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after"))
	if err != nil {
		return err
	}
	stream, err := s.Svc.OpenEventStream(ctx, p)
	if err != nil {
		return err
	}
	defer stream.Close()
	if after < 0 { // only what happens from now on
		n, err := stream.LastID(ctx)
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
		page, next, more, err := stream.Next(ctx, after)
		if err != nil {
			return nil // the stream has started: nothing more to report
		}
		for _, e := range page {
			b, _ := json.Marshal(eventResp{ID: e.ID, Type: e.Type, Subject: e.Subject, Data: json.RawMessage(e.Payload)})
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, b)
		}
		after = next
		fl.Flush()
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-stream.Wake():
		case <-tick.C:
			fmt.Fprintf(w, ": keep-alive\n\n")
			fl.Flush()
		}
	}
}

// eventCursor returns the event id a stream resumes after: the
// Last-Event-ID header a reconnecting EventSource sends, or ?after= (which
// wins when both are given), and -1 when neither is. An id is a decimal
// integer 0 to 2^63-1 without sign or spaces; anything else is a
// BadRequest naming the parameter.
func eventCursor(lastEventID, after string) (int64, error) {
	cur := int64(-1)
	for _, p := range [...]struct{ name, v string }{{"Last-Event-ID", lastEventID}, {"after", after}} {
		if p.v == "" {
			continue
		}
		n, err := parseSeq(p.name, p.v)
		if err != nil {
			return 0, err
		}
		cur = n
	}
	return cur, nil
}
