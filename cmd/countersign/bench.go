package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// `countersign bench` drives a running server over HTTP with N keep-alive
// connections for a while, one scenario after another, and reports for
// each the rate, p50/p90/p99 and errors, the server's CPU and RSS sampled
// from /proc while it ran, and every figure as a ratio: the signing
// scenarios to the in-process single-core signing rate of the same curve
// measured in the same run (the machine's physical limit), the others to
// the target. It sets up what it needs through the public API
// (a user with TOTP, a wallet, an agent, a policy, a daemon wallet), so it
// works against any fresh server. The client is lean — requests prebuilt,
// answers parsed by hand — so the figures describe the server, not the
// client. `countersign load` is the older name; its --mode sign and
// --mode spend stay as they were.

// benchScenarios are the scenarios in the order "all" runs them.
var benchScenarios = []string{"sign-ed25519", "sign-secp256k1", "rpc-personal-sign", "status", "prepare", "prepare-budget", "eth-send", "flow"}

// benchTargets are the targets for the scenarios that have one
// (requests per second), so each rate is also a ratio to its target.
var benchTargets = map[string]float64{"status": 20000, "prepare": 5000, "prepare-budget": 4000}

type benchStage struct {
	Count int64   `json:"count"`
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// serverSample is what /proc said about the server during a scenario.
type serverSample struct {
	PID         int     `json:"pid"`
	CPUCores    float64 `json:"cpu_cores"`          // CPU seconds per second of the run
	CPUMsPerReq float64 `json:"cpu_ms_per_request"` // the server's CPU per request (per flow for flow)
	RSSMeanMB   float64 `json:"rss_mean_mb"`
	RSSMaxMB    float64 `json:"rss_max_mb"`
	Samples     int     `json:"samples"`
}

type benchResult struct {
	Scenario    string  `json:"scenario"`
	Request     string  `json:"request"`
	Connections int     `json:"connections"`
	Seconds     float64 `json:"seconds"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Rate        float64 `json:"requests_per_second"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	// Baseline names what Ratio divides by: "in-process <curve>", or
	// "target" (the issue's), or "" when the scenario has neither.
	Baseline     string                `json:"baseline,omitempty"`
	BaselineRate float64               `json:"baseline_per_second,omitempty"`
	Ratio        float64               `json:"ratio,omitempty"`
	Stages       map[string]benchStage `json:"stages,omitempty"`
	Server       *serverSample         `json:"server,omitempty"`
	Note         string                `json:"note,omitempty"`
}

type benchMachine struct {
	CPUs        int    `json:"cpus"`
	Platform    string `json:"platform"`
	Go          string `json:"go"`
	LoadAverage string `json:"load_average"`
}

type benchReport struct {
	URL     string       `json:"url"`
	Date    string       `json:"date"`
	Machine benchMachine `json:"machine"`
	// InProcess is the single-core in-process signing rate per curve.
	InProcess map[string]float64 `json:"in_process_single_core_per_second,omitempty"`
	Results   []benchResult      `json:"results"`
	Footprint *footprintReport   `json:"footprint,omitempty"`
	// LoadAverageAfter is /proc/loadavg when the run ended: the machine
	// is shared, so the report says how busy it was.
	LoadAverageAfter string `json:"load_average_after"`
}

type benchOpts struct {
	base, host, dataDir  string
	scenarios            []string
	conns, wallets       int
	dur, calib, settle   time.Duration
	flowSettle           time.Duration // footprint: a pause between flow's setup and its run
	asJSON, quiet, spawn bool
	pid                  int
	binary               string
	clefURL, clefAccount string
	logins               int
	coldStarts           int
	getenv               func(string) string
}

const benchUsage = `Usage: countersign bench [--scenario S[,S…]|all] [--url U | --spawn] [--connections N] [--duration D] [--json] [flags]
       countersign bench footprint [--spawn | --url U --server-pid PID] [flags]

Drives a running server over HTTP from --connections keep-alive connections
for --duration per scenario and prints requests/s, p50/p90/p99, errors, the
server's CPU and RSS (sampled from /proc: --server-pid, else the process
listening on --url's port when it is local, else the one --spawn started)
and each rate as a ratio: to the in-process single-core signing rate of the
same curve (measured in the same run) or to the issue's target.

Scenarios:
  sign-ed25519       POST /v1/sign/message, a daemon ed25519 account
  sign-secp256k1     POST /v1/sign/message, a daemon secp256k1 account (EIP-191)
  rpc-personal-sign  POST /rpc sign_message (JSON-RPC), a secp256k1 account: the
                     same EIP-191 personal signature clef's account_signData makes
  status             GET /api/transaction_status as an agent (API key)
  prepare            POST /api/prepare_transaction, no policy (each waits for a human)
  prepare-budget     the same with an auto policy and a budget reserved per request
  eth-send           eth_sendTransaction on /eth with an auto policy: prepare,
                     decide, sign, store, broadcast in one request
  flow               prepare → authorize with a TOTP code the bench computes →
                     execute → confirmed; one user per connection, and a code is
                     accepted once per 30 s step, so flows wait for the clock
                     (reported apart; the stages exclude it)
  clef-sign          clef's account_signData (text/plain) at --clef-url, with the
                     same client as rpc-personal-sign (bench/clef.sh sets clef up)
  footprint          idle RSS after start, RSS during flow, RSS --settle after a
                     burst of --logins logins, the binary's size, cold start to
                     /readyz (--spawn only)

The signing scenarios need a server started with SIGN_RATE and SIGN_BURST
above the rate (--spawn sets them) and its wallet token (WALLET_TOKEN, or
--data-dir's wallet.token). The API scenarios register users on the server
and fund wallets from the embedded chain's faucet.`

func benchCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "footprint" {
		args = append([]string{"--scenario", "footprint"}, args[1:]...)
	}
	o, err := parseBenchFlags(args, getenv, stdout)
	if err != nil {
		return err
	}
	rep := &benchReport{Date: time.Now().UTC().Format(time.RFC3339), Machine: machineInfo(), InProcess: map[string]float64{}}
	var srv *spawned
	if o.spawn {
		if srv, err = spawnServer(ctx, o, "", stderr); err != nil {
			return err
		}
		defer srv.stop()
		o.base, o.host, o.dataDir, o.pid = srv.url, srv.host, srv.dataDir, srv.pid
	} else if o.pid == 0 {
		o.pid = localServerPID(o.host)
	}
	rep.URL = o.base
	for _, sc := range o.scenarios {
		if ctx.Err() != nil {
			break
		}
		if sc == "footprint" {
			fp, err := runFootprint(ctx, o, srv, stderr)
			if err != nil {
				return fmt.Errorf("footprint: %w", err)
			}
			rep.Footprint = fp
			continue
		}
		res, err := runScenario(ctx, o, sc, rep, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", sc, err)
		}
		rep.Results = append(rep.Results, *res)
	}
	rep.LoadAverageAfter = loadAverage()
	printBenchReport(stdout, rep, o.asJSON)
	for _, r := range rep.Results {
		if r.Requests == 0 {
			return fmt.Errorf("%s: no request succeeded: %s", r.Scenario, r.FirstError)
		}
	}
	return nil
}

func parseBenchFlags(args []string, getenv func(string) string, stdout io.Writer) (*benchOpts, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o := &benchOpts{getenv: getenv}
	var scen string
	fs.StringVar(&o.base, "url", or(getenv("COUNTERSIGN_URL"), "http://127.0.0.1:8555"), "the server (env COUNTERSIGN_URL)")
	fs.StringVar(&scen, "scenario", "all", "comma-separated scenarios, or all (see above)")
	fs.IntVar(&o.conns, "connections", 32, "concurrent keep-alive connections")
	fs.IntVar(&o.wallets, "wallets", 4, "prepare, prepare-budget, eth-send: wallets (a user, wallet and agent each) the connections share in turn")
	fs.DurationVar(&o.dur, "duration", 10*time.Second, "how long each scenario runs")
	fs.DurationVar(&o.calib, "in-process-time", 2*time.Second, "how long to measure each in-process signing rate")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line on stderr")
	fs.BoolVar(&o.spawn, "spawn", false, "start the server (this binary's serve, or --binary) on a fresh data directory and a free loopback port, and stop it at the end")
	fs.StringVar(&o.binary, "binary", "", "--spawn: the countersign binary to start (default: this one)")
	fs.IntVar(&o.pid, "server-pid", 0, "sample this process's CPU and RSS (default: the local process listening on --url's port)")
	fs.StringVar(&o.dataDir, "data-dir", defaultDataDir(getenv), "the server's data directory, for its wallet.token when WALLET_TOKEN is not set (env COUNTERSIGN_DATA_DIR)")
	fs.StringVar(&o.clefURL, "clef-url", "http://127.0.0.1:8550", "clef-sign: clef's HTTP JSON-RPC endpoint")
	fs.StringVar(&o.clefAccount, "clef-account", "", "clef-sign: the account clef signs with (0x…)")
	fs.IntVar(&o.logins, "logins", 20, "footprint: the burst of concurrent logins")
	fs.DurationVar(&o.settle, "settle", 30*time.Second, "footprint: how long after the login burst RSS is read")
	fs.IntVar(&o.coldStarts, "cold-starts", 5, "footprint with --spawn: cold starts to /readyz to take the median of")
	if err := parseFlags(fs, args, stdout, benchUsage, nil); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("bench: unexpected argument %q (footprint comes first: countersign bench footprint [flags])", truncateArg(fs.Arg(0)))
	}
	if o.conns < 1 || o.conns > 4096 || o.dur <= 0 || o.calib <= 0 || o.wallets < 1 || o.wallets > 256 || o.logins < 1 || o.logins > 1000 || o.settle < 0 || o.coldStarts < 1 || o.coldStarts > 50 {
		return nil, errors.New("--connections must be 1…4096, --wallets 1…256, --logins 1…1000, --cold-starts 1…50, --duration and --in-process-time positive")
	}
	for _, s := range strings.Split(scen, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "all":
			o.scenarios = append(o.scenarios, benchScenarios...)
		case slices.Contains(benchScenarios, s) || s == "clef-sign" || s == "footprint":
			o.scenarios = append(o.scenarios, s)
		default:
			return nil, fmt.Errorf("--scenario: %q is not one of %s, clef-sign, footprint or all", truncateArg(s), strings.Join(benchScenarios, ", "))
		}
	}
	if !o.spawn {
		u, err := neturl.Parse(o.base)
		if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, errors.New("--url must be http://host:port (bench talks plain HTTP/1.1, as on loopback)")
		}
		o.base, o.host = "http://"+u.Host, u.Host
	}
	if slices.Contains(o.scenarios, "clef-sign") {
		u, err := neturl.Parse(o.clefURL)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, errors.New("--clef-url must be http://host:port")
		}
		if len(o.clefAccount) != 42 || !strings.HasPrefix(o.clefAccount, "0x") {
			return nil, errors.New("clef-sign needs --clef-account 0x… (the account clef holds)")
		}
	}
	return o, nil
}

// leanPlan is a scenario the lean client drives: one prebuilt request per
// connection (connection i sends reqs[i % len]), the status a success
// answers, and a check of a sample of the answers' bodies.
type leanPlan struct {
	host    string
	reqs    [][]byte
	want    int
	check   func(body []byte) error
	request string
}

// runScenario sets up and runs one scenario.
func runScenario(ctx context.Context, o *benchOpts, sc string, rep *benchReport, stderr io.Writer) (*benchResult, error) {
	res := &benchResult{Scenario: sc, Connections: o.conns}
	if sc == "flow" {
		return res, runFlowScenario(ctx, o, res, stderr)
	}
	plan, cleanup, err := planScenario(ctx, o, sc, rep, stderr)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	res.Request = plan.request
	sampler := startSampler(o.pid)
	lat, elapsed := runLean(ctx, o, sc, plan, res, stderr)
	res.Server = sampler.stop(res.Requests)
	fillLatency(res, slices.Concat(lat...), elapsed)
	switch {
	case strings.HasPrefix(sc, "sign-") || sc == "rpc-personal-sign" || sc == "clef-sign":
		curve := "secp256k1"
		if sc == "sign-ed25519" {
			curve = "ed25519"
		}
		res.Baseline, res.BaselineRate = "in-process "+curve, rep.InProcess[curve]
	case benchTargets[sc] > 0:
		res.Baseline, res.BaselineRate = "target", benchTargets[sc]
	}
	if res.BaselineRate > 0 {
		res.Ratio = res.Rate / res.BaselineRate
	}
	return res, nil
}

// planScenario makes what a lean scenario sends, through the public API.
func planScenario(ctx context.Context, o *benchOpts, sc string, rep *benchReport, stderr io.Writer) (*leanPlan, func(), error) {
	none := func() {}
	msg := []byte("countersign bench")
	switch sc {
	case "sign-ed25519", "sign-secp256k1", "rpc-personal-sign":
		curve := "secp256k1"
		if sc == "sign-ed25519" {
			curve = "ed25519"
		}
		c, from := daemonClient(o.getenv, o.base, o.dataDir)
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, nil, err
		}
		defer clear(key)
		lo := &loadOpts{curve: curve}
		accountID, lock, err := loadAccount(ctx, c, from, lo, key, io.Discard)
		if err != nil {
			return nil, nil, err
		}
		if _, ok := rep.InProcess[curve]; !ok {
			rep.InProcess[curve] = inProcessRate(curve, key, msg, o.calib)
		}
		if strings.ContainsAny(c.authToken, "\r\n") {
			lock()
			return nil, nil, errors.New("the wallet token holds a line break")
		}
		if sc == "rpc-personal-sign" {
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"sign_message","params":[%q,%q]}`, accountID, base64.StdEncoding.EncodeToString(msg))
			req := rawRequest("POST", "/rpc", o.host, body, "X-Auth-Token", c.authToken)
			return &leanPlan{host: o.host, reqs: [][]byte{req}, want: 200, request: "POST /rpc sign_message (JSON-RPC 2.0, secp256k1, EIP-191)",
				check: func(b []byte) error { return checkRPCSignature(b, msg) }}, lock, nil
		}
		req, err := loadRequest(o.host, c.authToken, accountID, msg)
		if err != nil {
			lock()
			return nil, nil, err
		}
		return &leanPlan{host: o.host, reqs: [][]byte{req}, want: 200, request: "POST /v1/sign/message (" + curve + ")",
			check: func(b []byte) error { return verifyLoadSignature(curve, b, msg) }}, lock, nil
	case "clef-sign":
		if _, ok := rep.InProcess["secp256k1"]; !ok {
			key := make([]byte, 32)
			_, _ = rand.Read(key)
			rep.InProcess["secp256k1"] = inProcessRate("secp256k1", key, msg, o.calib)
			clear(key)
		}
		u, _ := neturl.Parse(o.clefURL)
		path := u.Path
		if path == "" {
			path = "/"
		}
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"account_signData","params":["text/plain",%q,"0x%x"]}`, o.clefAccount, msg)
		return &leanPlan{host: u.Host, reqs: [][]byte{rawRequest("POST", path, u.Host, body)}, want: 200, request: "clef account_signData (text/plain, EIP-191)",
			check: func(b []byte) error { return checkRPCSignature(b, msg) }}, none, nil
	}
	agents, err := benchAgents(ctx, o, sc, stderr)
	if err != nil {
		return nil, nil, err
	}
	plan := &leanPlan{host: o.host}
	switch sc {
	case "status":
		a := agents[0]
		var p struct {
			ID string `json:"transaction_id"`
		}
		c := benchSpendClient(o)
		if err := c.call(ctx, 0, "POST", "/api/prepare_transaction", "", a.key, map[string]string{"type": "native", "to_address": benchPayee, "amount": "1"}, &p, 202); err != nil {
			return nil, nil, err
		}
		plan.reqs = [][]byte{rawRequest("GET", "/api/transaction_status?transaction_id="+neturl.QueryEscape(p.ID), o.host, "", "X-API-KEY", a.key)}
		plan.want, plan.request = 200, "GET /api/transaction_status (agent API key)"
		plan.check = func(b []byte) error { return wantField(b, `"transaction_id":"`+p.ID+`"`) }
	case "prepare", "prepare-budget":
		body := fmt.Sprintf(`{"type":"native","to_address":%q,"amount":"1"}`, benchPayee)
		for _, a := range agents {
			plan.reqs = append(plan.reqs, rawRequest("POST", "/api/prepare_transaction", o.host, body, "X-API-KEY", a.key))
		}
		want := `"status":"pending"`
		plan.request = "POST /api/prepare_transaction (no policy: pending for a human)"
		if sc == "prepare-budget" {
			want, plan.request = `"status":"authorized"`, "POST /api/prepare_transaction (auto policy, budget reserved)"
		}
		plan.want = 202
		plan.check = func(b []byte) error { return wantField(b, want) }
	case "eth-send":
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","params":[{"to":%q,"value":"0x1"}]}`, benchPayee)
		for _, a := range agents {
			plan.reqs = append(plan.reqs, rawRequest("POST", "/eth", o.host, body, "X-API-KEY", a.key))
		}
		plan.want, plan.request = 200, "POST /eth eth_sendTransaction (auto policy: prepare, decide, sign, store, broadcast)"
		plan.check = func(b []byte) error { return wantField(b, `"result":"0x`) }
	}
	return plan, none, nil
}

// benchPayee receives every payment of a run (1 wei each).
const benchPayee = "0x00000000000000000000000000000000000bec4c"

func benchSpendClient(o *benchOpts) *spendClient {
	return &spendClient{urls: []string{o.base}, hits: make([]atomic.Int64, 1),
		http: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: o.conns + 16, MaxConnsPerHost: o.conns + 32}}}
}

// benchAgents sets up the users, funded wallets and agents a scenario
// needs: one for status, --wallets for the others (one per connection for
// flow), with the auto policy for prepare-budget and eth-send.
func benchAgents(ctx context.Context, o *benchOpts, sc string, stderr io.Writer) ([]*spendAgent, error) {
	n, how := min(o.wallets, o.conns), agentSetup{policy: sc == "prepare-budget" || sc == "eth-send"}
	switch sc {
	case "status":
		n = 1
	case "flow":
		n, how.keepSecret = o.conns, true
	}
	c := benchSpendClient(o)
	fund, closeFund, err := spendFunder(ctx, c, "")
	if err != nil {
		return nil, err
	}
	defer closeFund()
	run := make([]byte, 4)
	if _, err := rand.Read(run); err != nil {
		return nil, err
	}
	agents := make([]*spendAgent, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	slots := make(chan struct{}, 4) // register and login hash passwords, slowly on purpose
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			agents[i], errs[i] = setupAgent(ctx, c, 0, "bench-"+hex.EncodeToString(run), i, fund, how)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("set up the users, wallets and agents: %w", err)
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "%s: %d user(s) with TOTP, funded wallet(s) and agent(s) bench-%x-*\n", sc, n, run)
	}
	return agents, nil
}

// rawRequest is one HTTP/1.1 request as bytes, headers given as pairs.
func rawRequest(method, path, host, body string, headers ...string) []byte {
	b := []byte(method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n")
	for i := 0; i+1 < len(headers); i += 2 {
		b = append(b, headers[i]+": "+headers[i+1]+"\r\n"...)
	}
	if body != "" {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n"...)
	}
	return append(b, "\r\n"+body...)
}

func wantField(b []byte, s string) error {
	if !bytes.Contains(b, []byte(s)) {
		return fmt.Errorf("answer without %s: %.200s", s, b)
	}
	return nil
}

// checkRPCSignature checks a JSON-RPC answer's result: a 65-byte EIP-191
// signature of msg, as hex (clef) or as the daemon's signature object.
func checkRPCSignature(b, msg []byte) error {
	var a struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(b, &a); err != nil || len(a.Result) == 0 || len(a.Error) > 0 {
		return fmt.Errorf("not a JSON-RPC result: %.200s", b)
	}
	var hexSig string
	if json.Unmarshal(a.Result, &hexSig) == nil {
		sig, err := hex.DecodeString(strings.TrimPrefix(hexSig, "0x"))
		if err != nil || len(sig) != 65 {
			return fmt.Errorf("result is not a 65-byte signature: %.100s", hexSig)
		}
		return nil
	}
	return verifyLoadSignature("secp256k1", a.Result, msg)
}

// benchCounters are shared by the connections of one run.
type benchCounters struct {
	ok, failed atomic.Int64
	firstErr   sync.Once
	res        *benchResult
}

func (bc *benchCounters) fail(err error) {
	bc.failed.Add(1)
	bc.firstErr.Do(func() { bc.res.FirstError = err.Error() })
}

// runLean sends plan's requests from o.conns connections for o.dur and
// returns each connection's latencies and the time taken.
func runLean(ctx context.Context, o *benchOpts, sc string, plan *leanPlan, res *benchResult, stderr io.Writer) ([][]time.Duration, time.Duration) {
	bc := &benchCounters{res: res}
	lat := make([][]time.Duration, o.conns)
	start := time.Now()
	deadline := start.Add(o.dur)
	stopProgress := progress(o, sc, start, &bc.ok, &bc.failed, stderr)
	var wg sync.WaitGroup
	for i := range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat[i] = leanConn(ctx, plan, plan.reqs[i%len(plan.reqs)], deadline, bc)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	res.Requests, res.Errors = bc.ok.Load(), bc.failed.Load()
	return lat, elapsed
}

// leanConn is one keep-alive connection's loop. It stops at its first
// failure: a refusal (429: raise SIGN_RATE and SIGN_BURST) will not go
// away by repeating it.
func leanConn(ctx context.Context, plan *leanPlan, req []byte, deadline time.Time, bc *benchCounters) []time.Duration {
	conn, err := net.Dial("tcp", plan.host)
	if err != nil {
		bc.fail(err)
		return nil
	}
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 8192)
	samples := make([]time.Duration, 0, 1<<12)
	var body []byte
	for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
		t0 := time.Now()
		if _, err := conn.Write(req); err != nil {
			bc.fail(err)
			return samples
		}
		status, b, err := readResponse(r, body[:0])
		body = b
		if err != nil {
			bc.fail(err)
			return samples
		}
		if status != plan.want {
			bc.fail(fmt.Errorf("HTTP %d: %.200s", status, b))
			return samples
		}
		samples = append(samples, time.Since(t0))
		if n%500 == 0 && plan.check != nil { // real answers, not just statuses
			if err := plan.check(b); err != nil {
				bc.fail(err)
				return samples
			}
		}
		bc.ok.Add(1)
	}
	return samples
}

// progress prints a line on stderr each second while a scenario runs.
func progress(o *benchOpts, sc string, start time.Time, ok, failed *atomic.Int64, stderr io.Writer) func() {
	if o.quiet {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, lastT := int64(0), start
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				n := ok.Load()
				fmt.Fprintf(stderr, "%s  %4.0f/%.0f s  %d done  %.0f/s now  errors %d\n", sc, now.Sub(start).Seconds(), o.dur.Seconds(), n,
					float64(n-last)/now.Sub(lastT).Seconds(), failed.Load())
				last, lastT = n, now
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// fillLatency sets the rate and percentiles from all latencies.
func fillLatency(res *benchResult, all []time.Duration, elapsed time.Duration) {
	res.Seconds = elapsed.Seconds()
	res.Rate = float64(res.Requests) / elapsed.Seconds()
	st := stageOf(all)
	res.P50Ms, res.P90Ms, res.P99Ms = st.P50Ms, st.P90Ms, st.P99Ms
}

func stageOf(lat []time.Duration) benchStage {
	slices.Sort(lat)
	st := benchStage{Count: int64(len(lat))}
	if len(lat) > 0 {
		at := func(q int) float64 { return float64(lat[min(len(lat)-1, len(lat)*q/100)].Microseconds()) / 1000 }
		st.P50Ms, st.P90Ms, st.P99Ms = at(50), at(90), at(99)
	}
	return st
}

func machineInfo() benchMachine {
	return benchMachine{CPUs: runtime.NumCPU(), Platform: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), LoadAverage: loadAverage()}
}

// loadAverage is /proc/loadavg's three averages, or "".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func printBenchReport(w io.Writer, rep *benchReport, asJSON bool) {
	if asJSON {
		out, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(w, string(out))
		return
	}
	m := rep.Machine
	fmt.Fprintf(w, "countersign bench on %s, %s: %d CPUs, %s, %s, load average %s (after: %s)\n", rep.URL, rep.Date, m.CPUs, m.Platform, m.Go, m.LoadAverage, rep.LoadAverageAfter)
	for _, c := range []string{"ed25519", "secp256k1"} {
		if r, ok := rep.InProcess[c]; ok {
			fmt.Fprintf(w, "in process, one core: %s %.0f signatures/s\n", c, r)
		}
	}
	for _, r := range rep.Results {
		fmt.Fprintf(w, "\n%s: %s, %d connections, %.1f s\n", r.Scenario, r.Request, r.Connections, r.Seconds)
		switch {
		case r.Baseline == "target":
			fmt.Fprintf(w, "  rate      %.0f/s = %.2f of the target (%.0f/s)\n", r.Rate, r.Ratio, r.BaselineRate)
		case r.Baseline != "":
			fmt.Fprintf(w, "  rate      %.0f/s = %.2f of the %s single-core rate (%.0f/s)\n", r.Rate, r.Ratio, r.Baseline, r.BaselineRate)
		default:
			fmt.Fprintf(w, "  rate      %.1f/s\n", r.Rate)
		}
		fmt.Fprintf(w, "  latency   p50 %.2f ms, p90 %.2f ms, p99 %.2f ms\n", r.P50Ms, r.P90Ms, r.P99Ms)
		fmt.Fprintf(w, "  requests  %d, errors %d\n", r.Requests, r.Errors)
		for _, k := range flowStages {
			if st, ok := r.Stages[k]; ok {
				fmt.Fprintf(w, "  %-9s p50 %.2f ms, p90 %.2f ms, p99 %.2f ms (%d)\n", k, st.P50Ms, st.P90Ms, st.P99Ms, st.Count)
			}
		}
		if s := r.Server; s != nil {
			fmt.Fprintf(w, "  server    pid %d: %.2f cores, %.3f ms CPU per request, RSS %.0f MB (max %.0f MB)\n", s.PID, s.CPUCores, s.CPUMsPerReq, s.RSSMeanMB, s.RSSMaxMB)
		}
		if r.Note != "" {
			fmt.Fprintf(w, "  note      %s\n", r.Note)
		}
		if r.FirstError != "" {
			fmt.Fprintf(w, "  first error  %s\n", r.FirstError)
		}
	}
	if f := rep.Footprint; f != nil {
		printFootprint(w, f)
	}
}
