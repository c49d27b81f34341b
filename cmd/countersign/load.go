package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"
)

// `countersign load` drives POST /v1/sign/message on a running server from
// many keep-alive connections for a while and reports the signing rate,
// latencies and errors, next to the single-core in-process signing rate
// measured on the same machine in the same run. Its HTTP client is lean
// (requests prebuilt, answers parsed by hand, no per-request allocation to
// speak of), as load generators such as wrk are, so the figures describe
// the server rather than the client.

type loadReport struct {
	URL             string  `json:"url"`
	Curve           string  `json:"curve"`
	Connections     int     `json:"connections"`
	Seconds         float64 `json:"seconds"`
	Signatures      int64   `json:"signatures"`
	Errors          int64   `json:"errors"`
	FirstError      string  `json:"first_error,omitempty"`
	Rate            float64 `json:"signatures_per_second"`
	P50Micros       float64 `json:"p50_us"`
	P99Micros       float64 `json:"p99_us"`
	InProcessRate   float64 `json:"in_process_single_core_per_second"`
	RatioPercent    float64 `json:"http_vs_in_process_percent"`
	VerifiedAnswers int64   `json:"verified_signatures"`
}

// loadOpts are load's flags.
type loadOpts struct {
	base, curve, account, dataDir string
	conns                         int
	dur, calib                    time.Duration
	asJSON                        bool
	host                          string // from base: host:port
	mode                          string // sign (the daemon's signing) or spend (the countersigned spend, load_spend.go)
	spend                         spendOpts
}

func loadCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseLoadFlags(args, getenv, stdout)
	if err != nil {
		return err
	}
	if o.mode == "spend" {
		return runSpendLoad(ctx, o, stdout, stderr)
	}
	c, from := daemonClient(getenv, o.base, o.dataDir)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	accountID, lock, err := loadAccount(ctx, c, from, o, key, stderr)
	if err != nil {
		return err
	}
	defer lock()

	msg := []byte("countersign load test")
	inProc := inProcessRate(o.curve, key, msg, o.calib) // the same work with a local key of the same curve
	clear(key)

	req, err := loadRequest(o.host, c.authToken, accountID, msg)
	if err != nil {
		return err
	}
	rep := loadReport{URL: o.base, Curve: o.curve, Connections: o.conns, InProcessRate: inProc}
	lat, elapsed := runLoad(ctx, o, req, msg, &rep)
	summarize(&rep, lat, elapsed)
	printLoadReport(stdout, &rep, o.asJSON)
	if rep.Signatures == 0 {
		return fmt.Errorf("no signature succeeded: %s", rep.FirstError)
	}
	return nil
}

// parseLoadFlags reads and checks load's flags.
func parseLoadFlags(args []string, getenv func(string) string, stdout io.Writer) (*loadOpts, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	o := &loadOpts{}
	fs.StringVar(&o.base, "url", or(getenv("COUNTERSIGN_URL"), "http://127.0.0.1:8555"), "the server (env COUNTERSIGN_URL)")
	fs.StringVar(&o.curve, "curve", "ed25519", "ed25519 or secp256k1")
	fs.IntVar(&o.conns, "connections", 32, "concurrent keep-alive connections")
	fs.DurationVar(&o.dur, "duration", 10*time.Second, "how long to send")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	fs.DurationVar(&o.calib, "in-process-time", 2*time.Second, "how long to measure the in-process signing rate")
	fs.StringVar(&o.account, "account", "", "sign with this unlocked account instead of a new throwaway wallet")
	fs.StringVar(&o.dataDir, "data-dir", defaultDataDir(getenv), "the server's data directory, for its wallet.token when WALLET_TOKEN is not set (env COUNTERSIGN_DATA_DIR)")
	fs.StringVar(&o.mode, "mode", "sign", "sign: the daemon's POST /v1/sign/message; spend: prepare → approval → execute (--url may list several replicas, comma-separated)")
	fs.IntVar(&o.spend.wallets, "wallets", 4, "spend: wallets (each with its user, policy and agent); connections take them in turn")
	fs.StringVar(&o.spend.fundRPC, "fund-rpc", "", "spend: fund the wallets from this node's first unlocked account (geth --dev); empty: the server's dev faucet (embedded chain)")
	fs.DurationVar(&o.spend.confirm, "confirm-timeout", 2*time.Minute, "spend: how long to wait after the run for the executed transactions to be confirmed")
	if err := parseFlags(fs, args, stdout, `Usage: countersign load [--mode sign|spend] [--curve C] [--connections N] [--duration D] [--account ID] [flags]

--mode sign (the default) drives POST /v1/sign/message on a running server and
reports the signing rate, latencies and errors next to the in-process
single-core rate.

--mode spend drives the countersigned spend on one or several replicas
(--url http://A,http://B,…: requests go to each in turn): it registers a
user with TOTP per wallet, funds the wallets (the embedded chain's faucet, or
--fund-rpc), gives each an auto-approve policy within a budget (a TOTP code
is accepted once per 30 s, so the human cannot be the load), then prepares
and executes from --connections workers and reports transactions per second
and p50/p99 per stage, then waits for the confirmations.`, nil); err != nil {
		return nil, err
	}
	if o.conns < 1 || o.conns > 4096 || o.dur <= 0 {
		return nil, errors.New("--connections must be 1…4096 and --duration positive")
	}
	switch o.mode {
	case "spend":
		urls, err := parseSpendURLs(o.base)
		if err != nil {
			return nil, err
		}
		if o.spend.wallets < 1 || o.spend.wallets > 1000 || o.spend.confirm <= 0 {
			return nil, errors.New("--wallets must be 1…1000 and --confirm-timeout positive")
		}
		if o.spend.fundRPC != "" {
			if u, err := neturl.Parse(o.spend.fundRPC); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ws" && u.Scheme != "wss") {
				return nil, errors.New("--fund-rpc must be an http(s) or ws(s) JSON-RPC URL")
			}
		}
		o.spend.urls = urls
		return o, nil
	case "sign":
	default:
		return nil, errors.New("--mode must be sign or spend")
	}
	if o.curve != "ed25519" && o.curve != "secp256k1" {
		return nil, errors.New("--curve must be ed25519 or secp256k1")
	}
	u, err := neturl.Parse(o.base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, errors.New("--url must be http://host:port (load talks plain HTTP/1.1, as on loopback)")
	}
	o.host = u.Host
	return o, nil
}

// loadAccount returns the account to sign with, and a func to run when the
// load ends: a throwaway single-key wallet made from key (never shown,
// named for the run, locked at the end), or an existing unlocked account
// (--account), whose curve then replaces o.curve.
func loadAccount(ctx context.Context, c *apiClient, from string, o *loadOpts, key []byte, stderr io.Writer) (string, func(), error) {
	var imp struct {
		WalletID  string `json:"wallet_id"`
		AccountID string `json:"account_id"`
	}
	if o.account != "" {
		var a struct {
			Curve string `json:"curve"`
		}
		if err := c.get(ctx, "/v1/address/"+neturl.PathEscape(o.account), &a); err != nil {
			return "", nil, daemonError(err, from)
		}
		o.curve = a.Curve
		return o.account, func() {}, nil
	}
	password := hex.EncodeToString(key[:16])
	name := "load test " + time.Now().UTC().Format(time.RFC3339)
	if err := c.post(ctx, "/v1/wallet/import-key", map[string]string{"name": name, "password": password, "curve": o.curve, "private_key_hex": hex.EncodeToString(key)}, &imp); err != nil {
		return "", nil, fmt.Errorf("create the load-test wallet: %w", daemonError(err, from))
	}
	if err := c.post(ctx, "/v1/wallet/unlock", map[string]string{"wallet_id": imp.WalletID, "password": password}, nil); err != nil {
		return "", nil, err
	}
	fmt.Fprintf(stderr, "signing with a new wallet %q (%s), locked when the run ends\n", name, imp.WalletID)
	return imp.AccountID, func() {
		_ = c.post(context.WithoutCancel(ctx), "/v1/wallet/lock", map[string]string{"wallet_id": imp.WalletID}, nil)
	}, nil
}

// loadRequest prebuilds the one HTTP/1.1 request every connection sends.
func loadRequest(host, authToken, accountID string, msg []byte) ([]byte, error) {
	body := fmt.Sprintf(`{"account_id":%q,"message_base64":%q}`, accountID, base64.StdEncoding.EncodeToString(msg))
	req := []byte("POST /v1/sign/message HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\n")
	if strings.ContainsAny(authToken, "\r\n") {
		return nil, errors.New("the wallet token holds a line break")
	}
	if authToken != "" {
		req = append(req, "X-Auth-Token: "+authToken+"\r\n"...)
	}
	return append(req, "Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body...), nil
}

// loadCounters are shared by the connections of one run.
type loadCounters struct {
	signed, failed, verified atomic.Int64
	firstErr                 sync.Once
	rep                      *loadReport
}

func (lc *loadCounters) fail(err error) {
	lc.failed.Add(1)
	lc.firstErr.Do(func() { lc.rep.FirstError = err.Error() })
}

// runLoad sends req from o.conns connections until o.dur has passed and
// returns each connection's latencies and the time taken; the counts go
// into rep.
func runLoad(ctx context.Context, o *loadOpts, req, msg []byte, rep *loadReport) ([][]time.Duration, time.Duration) {
	lc := &loadCounters{rep: rep}
	lat := make([][]time.Duration, o.conns)
	deadline := time.Now().Add(o.dur)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat[i] = loadConn(ctx, o, req, msg, deadline, lc)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	rep.Signatures, rep.Errors, rep.VerifiedAnswers = lc.signed.Load(), lc.failed.Load(), lc.verified.Load()
	return lat, elapsed
}

// loadConn is one keep-alive connection's loop; it returns its latencies.
// It stops at the first failure: a refusal (429: raise SIGN_RATE and
// SIGN_BURST; 423: the wallet was locked) will not go away.
func loadConn(ctx context.Context, o *loadOpts, req, msg []byte, deadline time.Time, lc *loadCounters) []time.Duration {
	conn, err := net.Dial("tcp", o.host)
	if err != nil {
		lc.fail(err)
		return nil
	}
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 4096)
	samples := make([]time.Duration, 0, 1<<14)
	var respBody []byte
	for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
		t0 := time.Now()
		if _, err := conn.Write(req); err != nil {
			lc.fail(err)
			return samples
		}
		status, b, err := readResponse(r, respBody[:0])
		respBody = b
		if err != nil {
			lc.fail(err)
			return samples
		}
		if status != 200 {
			lc.fail(fmt.Errorf("HTTP %d: %.200s", status, b))
			return samples
		}
		samples = append(samples, time.Since(t0))
		lc.signed.Add(1)
		if n%1000 == 0 { // check real signatures, not just 200s
			if err := verifyLoadSignature(o.curve, b, msg); err != nil {
				lc.fail(err)
				return samples
			}
			lc.verified.Add(1)
		}
	}
	return samples
}

// summarize fills in the rate and the latency percentiles.
func summarize(rep *loadReport, lat [][]time.Duration, elapsed time.Duration) {
	rep.Seconds = elapsed.Seconds()
	rep.Rate = float64(rep.Signatures) / elapsed.Seconds()
	if rep.InProcessRate > 0 {
		rep.RatioPercent = 100 * rep.Rate / rep.InProcessRate
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		rep.P50Micros = float64(all[len(all)/2].Microseconds())
		rep.P99Micros = float64(all[len(all)*99/100].Microseconds())
	}
}

func printLoadReport(stdout io.Writer, rep *loadReport, asJSON bool) {
	if asJSON {
		out, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return
	}
	fmt.Fprintf(stdout, "POST /v1/sign/message (%s) on %s: %d connections for %.1f s\n", rep.Curve, rep.URL, rep.Connections, rep.Seconds)
	fmt.Fprintf(stdout, "  signatures   %d (%d checked), errors %d\n", rep.Signatures, rep.VerifiedAnswers, rep.Errors)
	fmt.Fprintf(stdout, "  rate         %.0f/s over HTTP; %.0f/s in process on one core: %.1f %%\n", rep.Rate, rep.InProcessRate, rep.RatioPercent)
	fmt.Fprintf(stdout, "  latency      p50 %.0f µs, p99 %.0f µs\n", rep.P50Micros, rep.P99Micros)
	if rep.FirstError != "" {
		fmt.Fprintf(stdout, "  first error  %s\n", rep.FirstError)
	}
}

// inProcessRate signs msg in a loop on one locked OS thread for about d and
// returns signatures per second: the signature alone, as the daemon makes
// it (ed25519 over the bytes; secp256k1 over the EIP-191 hash).
func inProcessRate(curve string, key, msg []byte, d time.Duration) float64 {
	done := make(chan float64)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var sign func()
		if curve == "ed25519" {
			priv := ed25519.NewKeyFromSeed(key)
			sign = func() { ed25519.Sign(priv, msg) }
		} else {
			priv, err := crypto.ToECDSA(key)
			if err != nil {
				done <- 0
				return
			}
			hash := accounts.TextHash(msg)
			sign = func() { _, _ = crypto.Sign(hash, priv) }
		}
		n, start := 0, time.Now()
		for time.Since(start) < d {
			for range 100 {
				sign()
			}
			n += 100
		}
		done <- float64(n) / time.Since(start).Seconds()
	}()
	return <-done
}

// readResponse reads one HTTP/1.1 response with a Content-Length body into
// buf. It is all a load generator on a keep-alive connection needs.
func readResponse(r *bufio.Reader, buf []byte) (int, []byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, buf, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, buf, fmt.Errorf("not an HTTP/1.1 response: %q", line)
	}
	code := line[9:12]
	if code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' {
		return 0, buf, fmt.Errorf("bad status line %q", line)
	}
	status := int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	length := -1
	for {
		h, err := r.ReadSlice('\n')
		if err != nil {
			return 0, buf, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil || length < 0 || length > 1<<20 {
				return 0, buf, fmt.Errorf("bad Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return 0, buf, errors.New("response without Content-Length")
	}
	buf = slices.Grow(buf[:0], length)[:length]
	_, err = io.ReadFull(r, buf)
	return status, buf, err
}

// verifyLoadSignature checks an answer's signature against its public key.
func verifyLoadSignature(curve string, body, msg []byte) error {
	var a struct {
		Sig string `json:"signature_base64"`
		Pub string `json:"public_key_hex"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("answer is not JSON: %w", err)
	}
	sig, err1 := base64.StdEncoding.DecodeString(a.Sig)
	pub, err2 := hex.DecodeString(a.Pub)
	if err1 != nil || err2 != nil {
		return errors.New("answer has no signature and public key")
	}
	if curve == "ed25519" {
		if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, msg, sig) {
			return errors.New("a signature does not verify")
		}
		return nil
	}
	if len(sig) != 65 {
		return errors.New("a secp256k1 signature is not 65 bytes")
	}
	s := bytes.Clone(sig)
	s[64] -= 27
	got, err := crypto.Ecrecover(accounts.TextHash(msg), s)
	if err != nil {
		return err
	}
	want, err := crypto.DecompressPubkey(pub)
	if err != nil {
		if want, err = crypto.UnmarshalPubkey(pub); err != nil {
			return errors.New("bad public key in the answer")
		}
	}
	if !bytes.Equal(got, crypto.FromECDSAPub(want)) {
		return errors.New("a signature does not recover to the account's key")
	}
	return nil
}
