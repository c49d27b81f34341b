package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/countersign/countersign/auth"
)

// `countersign load --mode spend` drives the countersigned spend —
// prepare, approval, execute — on one or several running servers (the
// replicas of one database, --url A,B,C: each request goes to the next URL
// in turn) and reports transactions per second and each stage's p50/p99.
//
// The human's step cannot be driven at load: a TOTP code is accepted once
// per 30-second step and user, so one human approves at most a few
// batches a minute. The run therefore gives each wallet a policy that
// approves native payments automatically within a budget far above what
// the run spends (docs/POLICY.md): the approval is decided, and its budget
// reserved, inside prepare's own transaction, which is measured as the
// prepare stage. Each wallet gets a user of its own (the setup needs two
// codes per wallet: the policy and the agent), funded from the embedded
// chain's faucet or, on a real node, from --fund-rpc's first unlocked
// account (geth --dev). Confirmations are not waited for inside the loop
// (they come from the receipt tracker's period, not from the request
// path); after the run the command waits for every executed transaction
// to be confirmed and reports how many were and how long that took.

// spendStage is one stage's latency summary.
type spendStage struct {
	Count int64   `json:"count"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
}

type spendReport struct {
	Mode          string                `json:"mode"`
	URLs          []string              `json:"urls"`
	Connections   int                   `json:"connections"`
	Wallets       int                   `json:"wallets"`
	Approval      string                `json:"approval"`
	Seconds       float64               `json:"seconds"`
	Prepared      int64                 `json:"prepared"`
	Executed      int64                 `json:"executed"`
	Confirmed     int64                 `json:"confirmed"`
	ConfirmWaitS  float64               `json:"confirm_wait_seconds"`
	Errors        int64                 `json:"errors"`
	FirstError    string                `json:"first_error,omitempty"`
	PrepareRate   float64               `json:"prepares_per_second"`
	Rate          float64               `json:"transactions_per_second"`
	Stages        map[string]spendStage `json:"stages"`
	PerURLExecute []int64               `json:"executes_per_url"` // in the order of urls
}

// spendOpts are the spend mode's flags.
type spendOpts struct {
	urls    []string
	wallets int
	fundRPC string
	confirm time.Duration
}

// parseSpendURLs checks --url's comma-separated list.
func parseSpendURLs(list string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimRight(strings.TrimSpace(s), "/")
		u, err := neturl.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			return nil, fmt.Errorf("--url: %q is not http(s)://host:port", truncateArg(s))
		}
		out = append(out, s)
	}
	if len(out) > 64 {
		return nil, errors.New("--url: at most 64 servers")
	}
	return out, nil
}

func truncateArg(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// spendClient talks to the servers as users and agents do.
type spendClient struct {
	http *http.Client
	urls []string
	next atomic.Uint64
	hits []atomic.Int64 // executes per URL
}

// pick returns the next server in turn.
func (c *spendClient) pick() int { return int(c.next.Add(1)-1) % len(c.urls) }

// call sends a JSON request to server i with a bearer token or an agent
// key and decodes the answer into out. A status other than want is an
// error naming the server's code and detail.
func (c *spendClient) call(ctx context.Context, i int, method, path, bearerTok, key string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.urls[i]+path, rd)
	if err != nil {
		return err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearerTok != "" {
		req.Header.Set("Authorization", "Bearer "+bearerTok)
	}
	if key != "" {
		req.Header.Set("X-API-KEY", key)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != want {
		var e struct {
			Error struct{ Code, Detail string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s %s on %s: HTTP %d %s: %s", method, path, c.urls[i], res.StatusCode, e.Error.Code, e.Error.Detail)
		}
		return fmt.Errorf("%s %s on %s: HTTP %d", method, path, c.urls[i], res.StatusCode)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// callBusy is call for the password routes, which answer 503 while the
// server's password hashing slots are taken: it waits and tries again.
func (c *spendClient) callBusy(ctx context.Context, i int, method, path string, body, out any, want int) error {
	for try := 0; ; try++ {
		err := c.call(ctx, i, method, path, "", "", body, out, want)
		if err == nil || try == 20 || !strings.Contains(err.Error(), "HTTP 503") {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// spendAgent is one wallet of the run with its human and its agent.
type spendAgent struct {
	token, key, walletID, wallet string
	steps                        totpSeq
	secret                       []byte // the user's TOTP secret, kept only when asked (bench's flow approves with it)
}

// totpSeq hands out codes of later and later steps (a code is accepted
// once), within the ±1 step the server accepts, waiting for the clock when
// the window is used up.
type totpSeq struct{ last int64 }

// totpNow is the clock TOTP codes are made for: the server's, which is
// the wall clock (tests set the harness's injected clock).
var totpNow = time.Now

func (z *totpSeq) code(ctx context.Context, secret []byte) (string, error) {
	for {
		now := totpNow().Unix()
		cur := now / auth.TOTPPeriod
		step := max(z.last+1, cur-1)
		if step == cur-1 && now%auth.TOTPPeriod >= auth.TOTPPeriod-2 {
			step = cur // the previous step is about to leave the window
		}
		if step <= cur+1 {
			z.last = step
			return auth.TOTPCode(secret, time.Unix(step*auth.TOTPPeriod, 0)), nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// loadFunding is what each wallet of a run receives.
var loadFunding = new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18))

// setupSpendAgent registers a user with TOTP, a wallet funded with
// loadFunding, the auto-approve policy and an agent, on server i.
func setupSpendAgent(ctx context.Context, c *spendClient, i int, run string, n int, fund func(ctx context.Context, i int, a *spendAgent) error) (*spendAgent, error) {
	return setupAgent(ctx, c, i, run, n, fund, agentSetup{policy: true})
}

// agentSetup says what setupAgent gives the wallet beyond its agent.
type agentSetup struct {
	policy     bool // the auto-approve policy within a budget (else every request waits for the human)
	keepSecret bool // keep the TOTP secret in spendAgent.secret (the caller clears it)
}

// setupAgent is setupSpendAgent with the policy optional.
func setupAgent(ctx context.Context, c *spendClient, i int, run string, n int, fund func(ctx context.Context, i int, a *spendAgent) error, how agentSetup) (*spendAgent, error) {
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	name, password := fmt.Sprintf("load-%s-%d", run, n), hex.EncodeToString(pw)
	a := &spendAgent{}
	if err := c.callBusy(ctx, i, "POST", "/api/register", map[string]string{"username": name, "password": password}, nil, 201); err != nil {
		return nil, err
	}
	var login struct {
		Token string `json:"access_token"`
	}
	if err := c.callBusy(ctx, i, "POST", "/api/login", map[string]string{"username": name, "password": password}, &login, 200); err != nil {
		return nil, err
	}
	a.token = login.Token
	var mfa struct {
		Secret string `json:"secret"`
	}
	if err := c.call(ctx, i, "POST", "/api/setup_mfa", a.token, "", nil, &mfa, 201); err != nil {
		return nil, err
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(mfa.Secret)
	if err != nil {
		return nil, fmt.Errorf("setup_mfa answered a secret that is not base32: %w", err)
	}
	if how.keepSecret {
		a.secret = secret
	} else {
		defer clear(secret)
	}
	var w struct {
		WalletID string `json:"wallet_id"`
		Address  string `json:"address"`
	}
	if err := c.call(ctx, i, "POST", "/api/create_wallet", a.token, "", map[string]string{"password": password}, &w, 201); err != nil {
		return nil, err
	}
	a.walletID, a.wallet = w.WalletID, w.Address
	if err := fund(ctx, i, a); err != nil {
		return nil, fmt.Errorf("fund wallet %s: %w", a.wallet, err)
	}
	if how.policy {
		if err := putLoadPolicy(ctx, c, i, a, secret); err != nil {
			return nil, err
		}
	}
	code, err := a.steps.code(ctx, secret)
	if err != nil {
		return nil, err
	}
	var ag struct {
		Key string `json:"api_key"`
	}
	if err := c.call(ctx, i, "POST", "/api/agents", a.token, "", map[string]string{"name": "load", "wallet_address": a.wallet, "mfa_code": code}, &ag, 201); err != nil {
		return nil, err
	}
	a.key = ag.Key
	return a, nil
}

// putLoadPolicy gives a's wallet a policy that approves native payments
// automatically within a budget far above what a run spends.
func putLoadPolicy(ctx context.Context, c *spendClient, i int, a *spendAgent, secret []byte) error {
	code, err := a.steps.code(ctx, secret)
	if err != nil {
		return err
	}
	policy := map[string]any{"mfa_code": code, "default": "human", "rules": []any{map[string]any{
		"id": "load", "when": map[string]any{"kind": []string{"native"}}, "then": "auto",
		"budget": map[string]string{"max": "1000000000000000000000000", "window": "24h", "scope": "wallet"}, "overflow": "deny"}}}
	return c.call(ctx, i, "PUT", "/api/wallets/"+a.walletID+"/policy", a.token, "", policy, nil, 200)
}

// spendFunder returns how wallets are funded: --fund-rpc's first unlocked
// account, or the embedded chain's faucet of the server.
func spendFunder(ctx context.Context, c *spendClient, fundRPC string) (func(ctx context.Context, i int, a *spendAgent) error, func(), error) {
	if fundRPC == "" {
		return func(ctx context.Context, i int, a *spendAgent) error {
			return c.call(ctx, i, "POST", "/api/dev/faucet", a.token, "", map[string]string{"address": a.wallet, "amount": loadFunding.String()}, nil, 200)
		}, func() {}, nil
	}
	rc, err := rpc.DialContext(ctx, fundRPC)
	if err != nil {
		return nil, nil, fmt.Errorf("--fund-rpc: %w", err)
	}
	var accounts []common.Address
	if err := rc.CallContext(ctx, &accounts, "eth_accounts"); err != nil || len(accounts) == 0 {
		rc.Close()
		return nil, nil, fmt.Errorf("--fund-rpc: the node has no unlocked account to fund from (geth --dev has one): %v", err)
	}
	var mu sync.Mutex // one sender: its transactions one at a time, so the node assigns nonces in order
	return func(ctx context.Context, _ int, a *spendAgent) error {
		mu.Lock()
		defer mu.Unlock()
		var h common.Hash
		if err := rc.CallContext(ctx, &h, "eth_sendTransaction", map[string]any{"from": accounts[0], "to": common.HexToAddress(a.wallet), "value": (*hexutil.Big)(loadFunding)}); err != nil {
			return err
		}
		for {
			var r map[string]any
			// A node that has just started answers "transaction indexing is
			// in progress" until its index catches up: not yet, not a failure.
			if err := rc.CallContext(ctx, &r, "eth_getTransactionReceipt", h); err != nil && !strings.Contains(err.Error(), "indexing is in progress") {
				return err
			}
			if r != nil {
				if r["status"] != "0x1" {
					return fmt.Errorf("funding transaction %s failed", h.Hex())
				}
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}, rc.Close, nil
}

// spendCounters are shared by the workers of one run.
type spendCounters struct {
	prepared, executed, failed atomic.Int64
	firstErr                   sync.Once
	rep                        *spendReport
}

func (sc *spendCounters) fail(err error) {
	sc.failed.Add(1)
	sc.firstErr.Do(func() { sc.rep.FirstError = err.Error() })
}

// spendSamples are one worker's latencies and the transactions it executed.
type spendSamples struct {
	prepare, execute, total []time.Duration
	executed                []spendExecuted
}

type spendExecuted struct {
	id, key string
}

// spendWorker prepares and executes until the deadline, as agent a.
// It stops at its first failure: a refusal will not go away by repeating it.
func spendWorker(ctx context.Context, c *spendClient, a *spendAgent, to string, deadline time.Time, sc *spendCounters) *spendSamples {
	s := &spendSamples{}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		t0 := time.Now()
		var p struct {
			ID       string `json:"transaction_id"`
			Status   string `json:"status"`
			Decision string `json:"decision"`
		}
		if err := c.call(ctx, c.pick(), "POST", "/api/prepare_transaction", "", a.key, map[string]string{"type": "native", "to_address": to, "amount": "1"}, &p, 202); err != nil {
			sc.fail(err)
			return s
		}
		t1 := time.Now()
		sc.prepared.Add(1)
		s.prepare = append(s.prepare, t1.Sub(t0))
		if p.Status != "authorized" {
			sc.fail(fmt.Errorf("prepare answered %s (decision %s), not authorized by the run's policy", p.Status, p.Decision))
			return s
		}
		var e struct {
			Hash string `json:"tx_hash"`
		}
		i := c.pick()
		if err := c.call(ctx, i, "POST", "/api/execute_transaction", "", a.key, map[string]string{"transaction_id": p.ID}, &e, 201); err != nil {
			sc.fail(err)
			return s
		}
		if e.Hash == "" {
			sc.fail(errors.New("execute answered no tx_hash"))
			return s
		}
		t2 := time.Now()
		c.hits[i].Add(1)
		sc.executed.Add(1)
		s.execute = append(s.execute, t2.Sub(t1))
		s.total = append(s.total, t2.Sub(t0))
		s.executed = append(s.executed, spendExecuted{p.ID, a.key})
	}
	return s
}

// spendStageOf summarises latencies.
func spendStageOf(lat []time.Duration) spendStage {
	slices.Sort(lat)
	st := spendStage{Count: int64(len(lat))}
	if len(lat) > 0 {
		st.P50Ms = float64(lat[len(lat)/2].Microseconds()) / 1000
		st.P99Ms = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	}
	return st
}

// waitConfirmed waits, until timeout, for each executed transaction to be
// confirmed, and returns how many were.
func waitConfirmed(ctx context.Context, c *spendClient, done []spendExecuted, timeout time.Duration, sc *spendCounters) int64 {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	work := make(chan spendExecuted)
	var confirmed atomic.Int64
	var wg sync.WaitGroup
	for range min(16, max(1, len(done))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for x := range work {
				for ctx.Err() == nil {
					var st struct {
						Status string `json:"status"`
						Error  string `json:"error"`
					}
					if err := c.call(ctx, c.pick(), "GET", "/api/transaction_status?transaction_id="+neturl.QueryEscape(x.id)+"&wait=10s", "", x.key, nil, &st, 200); err != nil {
						if ctx.Err() == nil {
							sc.fail(err)
						}
						break
					}
					if st.Status == "confirmed" {
						confirmed.Add(1)
						break
					}
					if st.Status != "submitted" {
						sc.fail(fmt.Errorf("transaction %s ended %s: %s", x.id, st.Status, st.Error))
						break
					}
				}
			}
		}()
	}
	for _, x := range done {
		select {
		case work <- x:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	return confirmed.Load()
}

// runSpendLoad is the spend mode: setup, the timed run, the confirmations.
func runSpendLoad(ctx context.Context, o *loadOpts, stdout, stderr io.Writer) error {
	so := o.spend
	c := &spendClient{urls: so.urls, hits: make([]atomic.Int64, len(so.urls)),
		http: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: o.conns + 16, MaxConnsPerHost: o.conns + 32}}}
	rep := &spendReport{Mode: "spend", URLs: so.urls, Connections: o.conns, Wallets: so.wallets,
		Approval: "policy: auto within a wallet budget, decided in prepare (no TOTP step)", Stages: map[string]spendStage{}}
	fund, closeFund, err := spendFunder(ctx, c, so.fundRPC)
	if err != nil {
		return err
	}
	defer closeFund()
	runID := make([]byte, 4)
	if _, err := rand.Read(runID); err != nil {
		return err
	}
	agents := make([]*spendAgent, so.wallets)
	errs := make([]error, so.wallets)
	var wg sync.WaitGroup
	slots := make(chan struct{}, 4) // a few at a time: register and login hash passwords on purpose slowly
	for n := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			agents[n], errs[n] = setupSpendAgent(ctx, c, n%len(c.urls), hex.EncodeToString(runID), n, fund)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("set up the run's users, wallets and agents: %w", err)
	}
	fmt.Fprintf(stderr, "%d wallets funded with %s wei each, each with an auto-approve policy and an agent (users load-%x-*)\n", so.wallets, loadFunding, runID)
	payee := "0x" + hex.EncodeToString(runID) + strings.Repeat("0", 32)

	sc := &spendCounters{rep: rep}
	samples := make([]*spendSamples, o.conns)
	start := time.Now()
	deadline := start.Add(o.dur)
	for w := range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			samples[w] = spendWorker(ctx, c, agents[w%len(agents)], payee, deadline, sc)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var prep, exec, total []time.Duration
	var done []spendExecuted
	for _, s := range samples {
		prep, exec, total = append(prep, s.prepare...), append(exec, s.execute...), append(total, s.total...)
		done = append(done, s.executed...)
	}
	rep.Seconds = elapsed.Seconds()
	rep.Prepared, rep.Executed = sc.prepared.Load(), sc.executed.Load()
	rep.PrepareRate = float64(rep.Prepared) / elapsed.Seconds()
	rep.Rate = float64(rep.Executed) / elapsed.Seconds()
	rep.Stages["prepare+approve"], rep.Stages["execute"], rep.Stages["prepare→execute"] = spendStageOf(prep), spendStageOf(exec), spendStageOf(total)
	for i := range c.urls {
		rep.PerURLExecute = append(rep.PerURLExecute, c.hits[i].Load())
	}
	cstart := time.Now()
	rep.Confirmed = waitConfirmed(ctx, c, done, so.confirm, sc)
	rep.ConfirmWaitS = time.Since(cstart).Seconds()
	rep.Errors = sc.failed.Load()
	printSpendReport(stdout, rep, o.asJSON)
	if rep.Executed == 0 {
		return fmt.Errorf("no transaction was executed: %s", rep.FirstError)
	}
	return nil
}

func printSpendReport(stdout io.Writer, rep *spendReport, asJSON bool) {
	if asJSON {
		out, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return
	}
	fmt.Fprintf(stdout, "countersigned spend on %s: %d connections, %d wallets, %.1f s\n", strings.Join(rep.URLs, ","), rep.Connections, rep.Wallets, rep.Seconds)
	fmt.Fprintf(stdout, "  approval     %s\n", rep.Approval)
	fmt.Fprintf(stdout, "  prepared     %d (%.1f/s), executed %d (%.1f transactions/s), errors %d\n", rep.Prepared, rep.PrepareRate, rep.Executed, rep.Rate, rep.Errors)
	for _, k := range []string{"prepare+approve", "execute", "prepare→execute"} {
		st := rep.Stages[k]
		fmt.Fprintf(stdout, "  %-16s p50 %.1f ms, p99 %.1f ms (%d)\n", k, st.P50Ms, st.P99Ms, st.Count)
	}
	fmt.Fprintf(stdout, "  confirmed    %d of %d, %.1f s after the run\n", rep.Confirmed, rep.Executed, rep.ConfirmWaitS)
	for i, u := range rep.URLs {
		fmt.Fprintf(stdout, "  executes on %s: %d\n", u, rep.PerURLExecute[i])
	}
	if rep.FirstError != "" {
		fmt.Fprintf(stdout, "  first error  %s\n", rep.FirstError)
	}
}
