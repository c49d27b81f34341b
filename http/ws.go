package http

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// wsEvent is one message of GET /api/ws: an event of one of the agent's
// own transactions, with the transaction view the change stored (the SSE
// stream's data).
type wsEvent struct {
	ID          int64       `json:"id"`
	Type        string      `json:"type"` // transaction.pending, transaction.authorized, transaction.submitted, …
	Transaction core.TxView `json:"transaction"`
}

// wsEventRaw is wsEvent as sent: the stored view passed through as it is.
type wsEventRaw struct {
	ID          int64           `json:"id"`
	Type        string          `json:"type"`
	Transaction json.RawMessage `json:"transaction"`
}

const (
	// wsWriteTimeout bounds each message: a client that does not read
	// fills its socket buffers, the write times out, and it is
	// disconnected. The server holds at most one page of events per
	// socket (it reads the outbox by cursor), so a slow client costs a
	// bounded buffer and never holds up anyone else.
	wsWriteTimeout = 10 * time.Second
	// wsPongTimeout is how long a keepalive ping waits for its pong.
	wsPongTimeout = 10 * time.Second
)

// agentSocket is GET /api/ws: a WebSocket streaming the status changes of
// the calling agent's own transactions as JSON text messages (wsEvent),
// from after ?after= (or Last-Event-ID) when given, else from now. The
// key was checked by the route's Access before this runs; every refusal
// before the upgrade is the one error envelope, so an agent's HTTP client
// sees why. It is one-way: a message from the client closes the socket.
func (s *Server) agentSocket(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	if err := checkWebSocketHandshake(w, r); err != nil {
		return err
	}
	after, err := eventCursor(r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	feed, err := s.Svc.OpenAgentFeed(ctx, p)
	if err != nil {
		return err
	}
	defer feed.Close()
	if after < 0 { // only what happens from now on
		if after, err = feed.LastID(ctx); err != nil {
			return err
		}
	}
	// nil options: coder/websocket's own Origin check stays on behind
	// checkWebSocketHandshake's (only the request's own host).
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.Log.WarnContext(ctx, "websocket upgrade", "err", err)
		return nil // Accept has answered
	}
	defer c.CloseNow()
	s.streamAgentEvents(ctx, c, feed, after)
	return nil
}

// streamAgentEvents writes the feed to c until the client goes, the key is
// revoked, a write or a ping times out, or the server shuts down.
func (s *Server) streamAgentEvents(ctx context.Context, c *websocket.Conn, feed *core.AgentFeed, after int64) {
	ctx = c.CloseRead(ctx) // answers pings and the close handshake; cancelled when the socket closes
	go keepAlive(ctx, c)
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		page, next, more, err := feed.Next(ctx, after)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if countersign.ErrorCode(err) == countersign.Unauthorized {
				c.Close(websocket.StatusPolicyViolation, "API key has been revoked")
				return
			}
			s.Log.ErrorContext(ctx, "websocket feed", "err", err)
			c.Close(websocket.StatusInternalError, "internal error: connect again")
			return
		}
		for _, e := range page {
			b, err := json.Marshal(wsEventRaw{ID: e.ID, Type: e.Type, Transaction: json.RawMessage(e.Payload)})
			if err != nil {
				continue // a payload that is not JSON: not a transaction view
			}
			wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
			err = c.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				return // gone, or not reading: the write's timeout closed the socket
			}
		}
		after = next
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-feed.Done():
			c.Close(websocket.StatusGoingAway, "server shutting down: connect again with after=<last id>")
			return
		case <-feed.Wake():
		case <-tick.C: // re-read: a revoked key is cut within one heartbeat
		}
	}
}

// keepAlive pings c every heartbeat (through proxies that cut idle
// connections) and closes it when a pong does not come back in time.
func keepAlive(ctx context.Context, c *websocket.Conn) {
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, wsPongTimeout)
		err := c.Ping(pctx)
		cancel()
		if err != nil {
			c.CloseNow()
			return
		}
	}
}

// checkWebSocketHandshake refuses, with the error envelope, what
// websocket.Accept would refuse with a plain-text answer: a request that
// is not an RFC 6455 handshake (BadRequest), and a browser page of
// another origin (Forbidden). Agents are programs and send no Origin; a
// page that could make a browser open this socket would otherwise read an
// agent's feed with whatever credentials the browser attaches.
func checkWebSocketHandshake(w http.ResponseWriter, r *http.Request) error {
	if !r.ProtoAtLeast(1, 1) || !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		return countersign.Errorf(countersign.BadRequest, "GET /api/ws is a WebSocket: open it with a WebSocket client (an HTTP/1.1 request with Connection: Upgrade and Upgrade: websocket)")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return countersign.Errorf(countersign.BadRequest, "Sec-WebSocket-Version must be 13")
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return countersign.Errorf(countersign.BadRequest, "send one Sec-WebSocket-Key")
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return countersign.Errorf(countersign.BadRequest, "Sec-WebSocket-Key must be 16 bytes in base64")
	}
	if err := sameOrigin(r); err != nil {
		return err
	}
	return nil
}

// sameOrigin admits a request without Origin (a program) or with the
// request's own host as origin, as coder/websocket's Accept does by
// default (which runs after this one, as a second check).
func sameOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return countersign.Errorf(countersign.Forbidden, "a web page of another origin may not open this WebSocket")
	}
	return nil
}

// headerHasToken reports whether a comma-separated header has token
// (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
