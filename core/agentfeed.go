package core

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	"github.com/countersign/countersign"
)

// MaxAgentFeeds is how many live feeds (GET /api/ws WebSockets) one agent
// may hold open on one server process at once: each holds a connection and
// a subscription, so a leaking or hostile agent cannot exhaust them.
const MaxAgentFeeds = 8

// agentFeeds counts the open feeds per agent and ends them all when the
// server shuts down (a hijacked WebSocket connection is not one
// http.Server.Shutdown waits for or closes).
type agentFeeds struct {
	mu    sync.Mutex
	open  map[string]int
	done  chan struct{}
	ended bool
}

func newAgentFeeds() *agentFeeds {
	return &agentFeeds{open: map[string]int{}, done: make(chan struct{})}
}

// AgentFeed is an agent's live feed: the transaction.* events of the
// transactions the agent itself prepared, and nothing else. They are read
// from the owner's outbox, where each change stored its event once, and
// filtered per event on the agent id the event's transaction carries: the
// rule of transaction_status (visible), so a feed shows what the agent may
// read anyway, never another agent's or the owner's own spends.
type AgentFeed struct {
	s    *Service
	p    *Principal
	wake <-chan struct{}
	stop func()
	once sync.Once
}

// OpenAgentFeed opens p's feed; Close it when done. It is RateLimit when
// the agent already holds MaxAgentFeeds, Unavailable once the server is
// shutting down.
func (s *Service) OpenAgentFeed(ctx context.Context, p *Principal) (*AgentFeed, error) {
	if !p.IsAgent() {
		return nil, countersign.Errorf(countersign.Forbidden, "the live feed is for agents: send X-API-KEY")
	}
	fs := s.feeds
	fs.mu.Lock()
	switch {
	case fs.ended:
		fs.mu.Unlock()
		return nil, countersign.Errorf(countersign.Unavailable, "the server is shutting down: connect again (to another replica)")
	case fs.open[p.Agent.ID] >= MaxAgentFeeds:
		fs.mu.Unlock()
		return nil, countersign.Errorf(countersign.RateLimit, "this agent already has %d live connections open here (the most allowed): close one first", MaxAgentFeeds)
	}
	fs.open[p.Agent.ID]++
	fs.mu.Unlock()
	wake, stop := s.broker.Subscribe(p.User.ID)
	return &AgentFeed{s: s, p: p, wake: wake, stop: stop}, nil
}

// EndAgentFeeds tells every open feed the server is going away (their
// Done channel closes) and refuses new ones: the HTTP server's shutdown
// hook.
func (s *Service) EndAgentFeeds() {
	fs := s.feeds
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !fs.ended {
		fs.ended = true
		close(fs.done)
	}
}

// Wake receives a value whenever the owner's outbox may have grown.
func (f *AgentFeed) Wake() <-chan struct{} { return f.wake }

// Done is closed when the server shuts down.
func (f *AgentFeed) Done() <-chan struct{} { return f.s.feeds.done }

// Close ends the subscription and frees the agent's slot. It may be called
// more than once.
func (f *AgentFeed) Close() {
	f.once.Do(func() {
		f.stop()
		fs := f.s.feeds
		fs.mu.Lock()
		if fs.open[f.p.Agent.ID]--; fs.open[f.p.Agent.ID] <= 0 {
			delete(fs.open, f.p.Agent.ID)
		}
		fs.mu.Unlock()
	})
}

// LastID is the id of the owner's newest event: a feed that starts "from
// now" starts after it.
func (f *AgentFeed) LastID(ctx context.Context) (int64, error) {
	return f.s.store.LastEventID(ctx, f.p.User.ID)
}

// Next returns the agent's events after the cursor, in id order, the
// cursor to continue from (past every event read, the agent's or not), and
// whether more may be waiting. It re-reads the agent first: a key revoked
// while its feed is open is Unauthorized at the next read, and the feed
// shows nothing more.
func (f *AgentFeed) Next(ctx context.Context, after int64) ([]*countersign.Event, int64, bool, error) {
	a, err := f.s.store.AgentByID(ctx, f.p.Agent.ID)
	if countersign.ErrorCode(err) == countersign.NotFound || (err == nil && (a.Revoked() || a.OwnerID != f.p.User.ID)) {
		return nil, after, false, countersign.Errorf(countersign.Unauthorized, "API key has been revoked")
	}
	if err != nil {
		return nil, after, false, err
	}
	page, err := f.s.store.EventsAfter(ctx, f.p.User.ID, after, StreamPage)
	if err != nil {
		return nil, after, false, err
	}
	var out []*countersign.Event
	for _, e := range page {
		after = e.ID
		if agentOfEvent(e) == f.p.Agent.ID {
			out = append(out, e)
		}
	}
	return out, after, len(page) == StreamPage, nil
}

// agentOfEvent is the agent whose transaction a transaction.* event is
// about ("" for any other event, and for a user's own spend): the
// agent_id of the transaction view the change stored as its payload.
func agentOfEvent(e *countersign.Event) string {
	if !strings.HasPrefix(e.Type, "transaction.") {
		return ""
	}
	var v struct {
		TransactionID string `json:"transaction_id"`
		AgentID       string `json:"agent_id"`
	}
	if json.Unmarshal([]byte(e.Payload), &v) != nil || v.TransactionID != e.Subject {
		return "" // not a transaction view: shown to no agent
	}
	return v.AgentID
}
