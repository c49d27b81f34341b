package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/store/postgres/pgtest"
)

// wsMsg is one message of GET /api/ws.
type wsMsg struct {
	ID          int64          `json:"id"`
	Type        string         `json:"type"`
	Transaction map[string]any `json:"transaction"`
}

func (m wsMsg) txID() string { s, _ := m.Transaction["transaction_id"].(string); return s }

// wsDial opens GET /api/ws<query> on e with the agent key and extra
// headers (name, value, …).
func wsDial(e *env, key, query string, extra ...string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if key != "" {
		h.Set("X-API-KEY", key)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/api/ws"+query, &websocket.DialOptions{HTTPHeader: h})
}

// wsMustDial is wsDial that fails the test unless the socket opens; it is
// closed at the end of the test.
func wsMustDial(t *testing.T, e *env, key, query string, extra ...string) *websocket.Conn {
	t.Helper()
	c, res, err := wsDial(e, key, query, extra...)
	if err != nil {
		t.Fatalf("websocket: %v (%s)", err, wsRefusal(res))
	}
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(1 << 20) // a contract call's event carries its calldata (a request body is at most 256 KiB)
	return c
}

// wsRefusal is a refused handshake's status and body.
func wsRefusal(res *http.Response) string {
	if res == nil {
		return "no response"
	}
	b, _ := io.ReadAll(res.Body)
	return strconv.Itoa(res.StatusCode) + " " + string(b)
}

// wsRefused fails the test unless the handshake is refused with status
// and the error envelope's code.
func wsRefused(t *testing.T, e *env, key, query string, status int, code string, extra ...string) {
	t.Helper()
	c, res, err := wsDial(e, key, query, extra...)
	if err == nil {
		c.CloseNow()
		t.Fatalf("the socket opened, want %d %s", status, code)
	}
	if res == nil {
		t.Fatalf("no answer: %v", err)
	}
	var body struct {
		Error struct{ Code, Detail string }
	}
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != status || json.Unmarshal(raw, &body) != nil || body.Error.Code != code || body.Error.Detail == "" {
		t.Fatalf("got %d %s, want %d %s with the error envelope", res.StatusCode, raw, status, code)
	}
}

// wsNext reads the next message within d.
func wsNext(c *websocket.Conn, d time.Duration) (wsMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		return wsMsg{}, err
	}
	var m wsMsg
	if typ != websocket.MessageText {
		return m, fmt.Errorf("a %v message", typ)
	}
	return m, json.Unmarshal(b, &m)
}

// wsWaitFor reads messages until one is about transaction id with status
// want, failing on any message about another transaction than those
// allowed.
func wsWaitFor(t *testing.T, c *websocket.Conn, id, want string, d time.Duration, allowed ...string) wsMsg {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		m, err := wsNext(c, time.Until(deadline))
		if err != nil {
			t.Fatalf("no %s message for %s: %v", want, id, err)
		}
		if m.txID() != id && !slices.Contains(allowed, m.txID()) {
			t.Fatalf("the socket sent another transaction's event: %+v", m)
		}
		if m.Type != "transaction."+m.Transaction["status"].(string) || m.ID <= 0 {
			t.Fatalf("malformed message: %+v", m)
		}
		if m.txID() == id && m.Type == "transaction."+want {
			return m
		}
	}
}

// liveSSE opens the user's /api/events on e and returns its events
// (type and data) as they come.
func liveSSE(t *testing.T, e *env, token string) <-chan [2]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/api/events: %v %v", err, res)
	}
	out := make(chan [2]string, 64)
	connected := make(chan struct{})
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var event string
		for sc.Scan() {
			line := sc.Text()
			if line == ": connected" {
				close(connected)
			}
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				event = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				out <- [2]string{event, v}
			}
		}
	}()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream did not start")
	}
	return out
}

// liveSSEWaitFor waits for the event of type typ about id.
func liveSSEWaitFor(t *testing.T, events <-chan [2]string, typ, id string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev := <-events:
			if ev[0] == typ && strings.Contains(ev[1], id) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s event for %s on the stream within %v", typ, id, d)
		}
	}
}

// liveReplicas starts two servers on one fresh PostgreSQL database (the
// same master key file, each its own embedded dev chain: only the database
// is shared), both with opts.
func liveReplicas(t *testing.T, opts ...envOption) (a, b *env, dsn string) {
	t.Helper()
	dsn = pgtest.Start(t)
	var cfg, cfg2 *Config
	a = newEnv(t, append([]envOption{onPostgres(dsn, &cfg)}, opts...)...)
	b = newEnv(t, append([]envOption{onPostgres(dsn, &cfg2), func(c *Config) {
		c.MasterKeyFile = cfg.MasterKeyFile
		c.AcceptNewChain = true
	}}, opts...)...)
	t.Cleanup(func() {
		if t.Failed() {
			tail := func(s string) string { return s[max(0, len(s)-8000):] }
			t.Logf("replica a (the end):\n%s\nreplica b (the end):\n%s", tail(a.logs.String()), tail(b.logs.String()))
		}
	})
	return a, b, dsn
}

// liveCrossReplica: an agent long-polls transaction_status?wait=30s, the owner
// watches the SSE stream and the agent a WebSocket, all on replica b,
// while the human approves on replica a. Each hears of it within within,
// far sooner than the wait.
func liveCrossReplica(t *testing.T, a, b *env, within time.Duration) {
	u, _, _, key := setup(t, a)
	id := a.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	events := liveSSE(t, b, u.token)
	ws := wsMustDial(t, b, key, "")
	got := make(chan resp, 1)
	go func() { // not b.do: a failure here must not call t.Fatal off the test's goroutine
		req, _ := http.NewRequest("GET", b.url+"/api/transaction_status?transaction_id="+id+"&wait=30s", nil)
		req.Header.Set("X-API-KEY", key)
		var r resp
		if res, err := b.http.Do(req); err == nil {
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			r = resp{status: res.StatusCode, raw: string(raw)}
			_ = json.Unmarshal(raw, &r.body)
		} else {
			r.raw = err.Error()
		}
		got <- r
	}()
	time.Sleep(300 * time.Millisecond) // the long poll has subscribed
	approved := time.Now()
	a.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": a.code(u)}).must(t, 200)
	select {
	case r := <-got:
		if r.status != 200 || r.str("status") != "authorized" {
			t.Fatalf("the long poll on the other replica answered %s", r.raw)
		}
		if d := time.Since(approved); d > within {
			t.Fatalf("the long poll on the other replica woke %v after the approval, want within %v", d, within)
		}
	case <-time.After(within):
		t.Fatalf("the long poll on the other replica did not wake within %v of the approval", within)
	}
	liveSSEWaitFor(t, events, "transaction.authorized", id, within)
	wsWaitFor(t, ws, id, "authorized", within)
}

// TestLive_PostgresReplicasNotify: with LISTEN/NOTIFY (and the poll set
// far beyond the test, so only a notification can wake anyone), a change
// committed on one replica wakes the long poll, the SSE stream and the
// WebSocket on the other within seconds. On the old code the broker was
// woken only by commits in its own process: the long poll on b ran its
// full 30 s and answered pending.
func TestLive_PostgresReplicasNotify(t *testing.T) {
	a, b, _ := liveReplicas(t, func(c *Config) { c.EventPoll = time.Hour })
	liveCrossReplica(t, a, b, 5*time.Second)
}

// TestLive_PostgresPollingFallback: with LISTEN disabled, the outbox poll
// alone (EVENT_POLL_INTERVAL) still delivers across replicas.
func TestLive_PostgresPollingFallback(t *testing.T) {
	a, b, _ := liveReplicas(t, func(c *Config) { c.NoListen, c.EventPoll = true, 200*time.Millisecond })
	liveCrossReplica(t, a, b, 5*time.Second)
}

// TestLive_PostgresListenerReconnects: the listener's connection is
// killed behind its back (pg_terminate_backend, as a failover or a
// restarted PostgreSQL would); it connects again and the next change
// still wakes the other replica with no poll to fall back on.
func TestLive_PostgresListenerReconnects(t *testing.T) {
	a, b, dsn := liveReplicas(t, func(c *Config) { c.EventPoll = time.Hour })
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const listeners = `FROM pg_stat_activity WHERE application_name = 'countersign-listen' AND datname = current_database()`
	// a replica's listener connects in the background after it serves:
	// wait until both are listening before killing them
	// (after the kill, only connections that started after it count: a
	// terminated backend may linger in pg_stat_activity for a moment)
	var since time.Time
	waitListeners := func(when string) {
		deadline := time.Now().Add(20 * time.Second)
		for n := 0; n < 2; {
			if err := db.QueryRow(`SELECT count(*) `+listeners+` AND backend_start > $1`, since).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n >= 2 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d listeners %s, want both replicas listening", n, when)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitListeners("before the kill")
	if err := db.QueryRow(`SELECT now()`).Scan(&since); err != nil {
		t.Fatal(err)
	}
	var killed int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) ` + listeners).Scan(&killed); err != nil || killed != 2 {
		t.Fatalf("killed %d listen connections, want 2 (%v)", killed, err)
	}
	waitListeners("after the kill")
	liveCrossReplica(t, a, b, 5*time.Second)
}

// TestSecurity_WebSocketOwnTransactionsOnly: an agent's socket carries the
// events of the transactions it prepared, and nothing of another agent of
// the same owner, the owner's own spend, or another owner's agent — all
// of which happen on the same outbox (or the same server) while it
// listens. A socket that forwarded the owner's outbox as it is (what the
// user's SSE stream does) would send them all.
func TestSecurity_WebSocketOwnTransactionsOnly(t *testing.T) {
	e := newEnv(t)
	u, wallet, _, key := setup(t, e)
	_, sibling := e.createAgent(u, wallet)
	other := e.newUser(true)
	otherWallet := e.createWallet(other)
	_, otherKey := e.createAgent(other, otherWallet)
	ws := wsMustDial(t, e, key, "")
	prepare := func(k string) string {
		return e.do("POST", "/api/prepare_transaction", apiKey(k), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	}
	sib := prepare(sibling)
	prepare(otherKey)
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": sib, "mfa_code": e.code(u)}).must(t, 200)
	e.do("POST", "/api/transfer", bearer(u.token), map[string]string{"password": testPassword, "mfa_code": e.code(u), "address": wallet, "to_address": randomAddress(), "amount": "1"}).must(t, 201)
	own := prepare(key)
	// events arrive in outbox order: the others' came first, so any that
	// leaked would be read before this one
	wsWaitFor(t, ws, own, "pending", 10*time.Second)
	e.do("POST", "/api/cancel_transaction", apiKey(sibling), map[string]string{"transaction_id": prepare(sibling)}).must(t, 200)
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": own, "mfa_code": e.code(u)}).must(t, 200)
	m := wsWaitFor(t, ws, own, "authorized", 10*time.Second)
	if m.Transaction["agent_id"] == nil || m.Transaction["approval_digest"] == "" {
		t.Fatalf("the message lacks the transaction view: %+v", m)
	}
}

// TestWebSocket_ResumeAfter: ?after=<id> (or Last-Event-ID) replays the
// agent's events after that id, in order; without it a socket starts from
// now.
func TestWebSocket_ResumeAfter(t *testing.T) {
	e := newEnv(t)
	_, _, _, key := setup(t, e)
	first := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	second := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "2"}).must(t, 202).str("transaction_id")

	all := wsMustDial(t, e, key, "?after=0")
	m1 := wsWaitFor(t, all, first, "pending", 10*time.Second)
	m2 := wsWaitFor(t, all, second, "pending", 10*time.Second)
	if m2.ID <= m1.ID {
		t.Fatalf("ids out of order: %d then %d", m1.ID, m2.ID)
	}
	for _, c := range []*websocket.Conn{
		wsMustDial(t, e, key, "?after="+strconv.FormatInt(m1.ID, 10)),
		wsMustDial(t, e, key, "", "Last-Event-ID", strconv.FormatInt(m1.ID, 10)),
	} {
		if m, err := wsNext(c, 10*time.Second); err != nil || m.ID != m2.ID || m.txID() != second {
			t.Fatalf("resumed after %d: %+v %v, want event %d", m1.ID, m, err, m2.ID)
		}
	}
	fresh := wsMustDial(t, e, key, "")
	if m, err := wsNext(fresh, 500*time.Millisecond); err == nil {
		t.Fatalf("a socket without after= replayed %+v", m)
	}
	wsRefused(t, e, key, "?after=-1", 400, "BAD_REQUEST")
	wsRefused(t, e, key, "?after=x", 400, "BAD_REQUEST")
}

// TestSecurity_WebSocketRevokedKey: a revoked key is refused before the
// upgrade with the 401 envelope, and a socket open when its key is revoked
// is closed (policy violation) and shows nothing more.
func TestSecurity_WebSocketRevokedKey(t *testing.T) {
	e := newEnv(t)
	u, _, agentID, key := setup(t, e)
	ws := wsMustDial(t, e, key, "")
	e.do("DELETE", "/api/agents/"+agentID, bearer(u.token), map[string]string{"mfa_code": e.code(u)}).must(t, 200)
	_, err := wsNext(ws, 30*time.Second)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("the open socket of a revoked key: %v, want closed with %d", err, websocket.StatusPolicyViolation)
	}
	wsRefused(t, e, key, "", 401, "UNAUTHORIZED")
	wsRefused(t, e, "", "", 401, "UNAUTHORIZED")
	wsRefused(t, e, "csk_"+strings.Repeat("0", 40), "", 401, "UNAUTHORIZED")
	wsRefused(t, e, "", "", 403, "FORBIDDEN", "Authorization", "Bearer "+u.token) // a user session is not an agent
}

// TestSecurity_WebSocketHandshakeRefusals: a request that is not a
// WebSocket handshake gets a clear 4xx envelope, not a plain-text answer;
// a browser page of another origin is refused (403) while a page of the
// server's own origin and a program that sends no Origin are admitted;
// more than core.MaxAgentFeeds sockets of one agent are refused (429)
// until one closes.
func TestSecurity_WebSocketHandshakeRefusals(t *testing.T) {
	e := newEnv(t)
	_, _, _, key := setup(t, e)
	e.do("GET", "/api/ws", apiKey(key), nil).refused(t, 400, "BAD_REQUEST")
	e.do("GET", "/api/ws", apiKey(key), nil, "Connection", "Upgrade", "Upgrade", "websocket").refused(t, 400, "BAD_REQUEST") // no version, no key
	if r := e.do("POST", "/api/ws", apiKey(key), "{}"); r.status < 400 || r.status >= 500 || r.code() == "" {
		t.Fatalf("POST /api/ws: %d %s", r.status, r.raw)
	}
	wsRefused(t, e, key, "", 403, "FORBIDDEN", "Origin", "https://evil.example")
	wsRefused(t, e, key, "", 403, "FORBIDDEN", "Origin", "null")
	wsMustDial(t, e, key, "", "Origin", e.url).CloseNow()
	// The server frees the closed socket's slot once its handler has seen
	// the close, a moment later: until then a dial may still meet the limit.
	var open []*websocket.Conn
	for len(open) < core.MaxAgentFeeds {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, res, err := wsDial(e, key, "")
			if err == nil {
				t.Cleanup(func() { c.CloseNow() })
				open = append(open, c)
				break
			}
			if len(open) > 0 || res == nil || res.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
				t.Fatalf("socket %d: %v (%s)", len(open)+1, err, wsRefusal(res))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wsRefused(t, e, key, "", 429, "RATE_LIMIT")
	open[0].Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err := wsDial(e, key, "")
		if err == nil {
			c.CloseNow()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed socket did not free its slot: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWebSocket_SQLiteFlow: on the embedded SQLite store, the agent's
// socket carries its transaction's whole lifecycle: pending, authorized,
// submitted, confirmed.
func TestWebSocket_SQLiteFlow(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	ws := wsMustDial(t, e, key, "")
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	wsWaitFor(t, ws, id, "pending", 10*time.Second)
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
	wsWaitFor(t, ws, id, "authorized", 10*time.Second)
	hash := e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).must(t, 201).str("tx_hash")
	wsWaitFor(t, ws, id, "submitted", 10*time.Second)
	m := wsWaitFor(t, ws, id, "confirmed", 30*time.Second)
	if m.Transaction["tx_hash"] != hash {
		t.Fatalf("confirmed message with hash %v, want %s", m.Transaction["tx_hash"], hash)
	}
}

// TestWebSocket_NodeClient: Node's built-in WebSocket (undici: an
// independent implementation of RFC 6455) reads the agent's events. It
// runs wherever node is (scripts/ensure-tools.sh installs it); under CI a
// missing or too old node fails the test.
func TestWebSocket_NodeClient(t *testing.T) {
	args, err := nodeWebSocketArgs()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node: %v (scripts/ensure-tools.sh installs it)", err)
		}
		t.Skipf("node: %v", err)
	}
	e := newEnv(t)
	_, _, _, key := setup(t, e)
	script := `
const ws = new WebSocket(process.argv[1], { headers: { "X-API-KEY": process.argv[2] } });
ws.onopen = () => console.log("open");
ws.onmessage = (m) => { console.log("message " + m.data); ws.close(1000); };
ws.onerror = (e) => { console.log("error " + (e.message || e.type)); process.exit(2); };
ws.onclose = (e) => { console.log("close " + e.code); process.exit(0); };
setTimeout(() => { console.log("timeout"); process.exit(3); }, 20000);
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append(args, "-e", script, "ws"+strings.TrimPrefix(e.url, "http")+"/api/ws", key)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "open" {
		t.Fatalf("node did not open the socket: %q", lines.Text())
	}
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	if !lines.Scan() {
		t.Fatal("node read nothing")
	}
	msg, ok := strings.CutPrefix(lines.Text(), "message ")
	var m wsMsg
	if !ok || json.Unmarshal([]byte(msg), &m) != nil || m.txID() != id || m.Type != "transaction.pending" {
		t.Fatalf("node read %q, want the pending event of %s", lines.Text(), id)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v", err)
	}
}

// nodeWebSocketArgs are the node flags that give a global WebSocket: none
// from Node 22, --experimental-websocket on 20.10 and 21.
func nodeWebSocketArgs() ([]string, error) {
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		return nil, err
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	parts := strings.Split(v, ".")
	major, _ := strconv.Atoi(parts[0])
	minor := 0
	if len(parts) > 1 {
		minor, _ = strconv.Atoi(parts[1])
	}
	switch {
	case major >= 22:
		return nil, nil
	case major == 21 || (major == 20 && minor >= 10):
		return []string{"--experimental-websocket"}, nil
	}
	return nil, errors.New("node " + v + " has no WebSocket (20.10 or newer is needed)")
}

// EVENT_POLL_INTERVAL is a duration of at least 100ms; anything else stops
// the start with an error naming it.
func TestLive_EventPollIntervalSetting(t *testing.T) {
	tests := map[string]struct {
		v    string
		want time.Duration
	}{
		"ok/unset":     {"", 0}, // core's default, 2s
		"ok/seconds":   {"5s", 5 * time.Second},
		"ok/floor":     {"100ms", 100 * time.Millisecond},
		"fail/too low": {"10ms", -1},
		"fail/zero":    {"0s", -1},
		"fail/words":   {"often", -1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := parseServeConfig(nil, func(k string) string {
				if k == "EVENT_POLL_INTERVAL" {
					return tt.v
				}
				return ""
			}, io.Discard)
			if tt.want < 0 {
				if err == nil || !strings.Contains(err.Error(), "EVENT_POLL_INTERVAL") {
					t.Fatalf("EVENT_POLL_INTERVAL=%s: %v, want an error naming it", tt.v, err)
				}
				return
			}
			if err != nil || c.EventPoll != tt.want {
				t.Fatalf("EVENT_POLL_INTERVAL=%s: %v %v", tt.v, c, err)
			}
		})
	}
}

// TestWebSocket_ShutdownClosesSockets: http.Server.Shutdown neither waits
// for nor closes a hijacked connection; the server's shutdown hook ends
// each open socket with 1001 (going away) so the agent reconnects
// elsewhere, and Close does not hang on them.
func TestWebSocket_ShutdownClosesSockets(t *testing.T) {
	e, stop, err := startAt(t, t.TempDir(), restartClock())
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, key := setup(t, e)
	ws := wsMustDial(t, e, key, "")
	began := time.Now()
	stop()
	if d := time.Since(began); d > 10*time.Second {
		t.Fatalf("Close took %v with a socket open", d)
	}
	if _, err := wsNext(ws, 10*time.Second); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("the open socket at shutdown: %v, want closed with %d", err, websocket.StatusGoingAway)
	}
}
