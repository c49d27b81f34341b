package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestLoadCommand(t *testing.T) {
	for _, curve := range []string{"ed25519", "secp256k1"} {
		t.Run(curve, func(t *testing.T) {
			e := newEnv(t, fastDaemon, func(c *Config) { c.SignRate, c.SignBurst = 1e9, 1e9 })
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"load", "--url", e.url, "--curve", curve, "--connections", "4", "--duration", "300ms", "--in-process-time", "100ms", "--json"},
				e.cliEnv, &out, &errb)
			if err != nil {
				t.Fatalf("load: %v\n%s", err, errb.String())
			}
			var rep loadReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("report %q: %v", out.String(), err)
			}
			if rep.Signatures == 0 || rep.Errors != 0 || rep.VerifiedAnswers < 4 || rep.Rate <= 0 || rep.InProcessRate <= 0 || rep.RatioPercent <= 0 || rep.P99Micros < rep.P50Micros {
				t.Fatalf("report: %+v", rep)
			}
			// every signature is in the audit log (plus the wallet's import and unlock)
			n := 0
			entries, _ := e.app.Store.AuditEntries(context.Background(), "daemon", 0, 1_000_000)
			for _, a := range entries {
				if a.Action == "daemon.sign.message" {
					n++
				}
			}
			if int64(n) != rep.Signatures {
				t.Fatalf("%d signatures audited, %d reported", n, rep.Signatures)
			}
		})
	}
}

// With a signing rate limit the load stops at 429s and says so. The burst
// is small so that even a slow build (-race on a busy machine) reaches it.
func TestLoadCommandRateLimited(t *testing.T) {
	e := newEnv(t, fastDaemon, func(c *Config) { c.SignRate, c.SignBurst = 1, 2 })
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"load", "--url", e.url, "--connections", "2", "--duration", "500ms", "--in-process-time", "50ms"},
		e.cliEnv, &out, &errb)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !strings.Contains(out.String(), "HTTP 429") || !strings.Contains(out.String(), "RATE_LIMIT") {
		t.Fatalf("report does not name the rate limit:\n%s", out.String())
	}
}

func TestReadResponse(t *testing.T) {
	for in, ok := range map[string]bool{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":             true,
		"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nX: y\r\n\r\n{}":     true,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n": false,
		"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}":             false,
		"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}":             false,
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}":            false,
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}":             false,
		"garbage": false,
	} {
		status, body, err := readResponse(bufio.NewReader(strings.NewReader(in)), nil)
		if (err == nil) != ok || ok && (status != 200 || string(body) != "{}") {
			t.Errorf("%q: %d %q %v", in, status, body, err)
		}
	}
}

// FuzzReadResponse: the load command parses whatever the server it is
// pointed at sends; it must fail cleanly, never panic or over-read.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200\n\n"))
	f.Add([]byte("HTTP/1.1 -12 OK\r\nContent-Length: 0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		status, body, err := readResponse(bufio.NewReader(bytes.NewReader(in)), nil)
		if err == nil && (status < 100 || status > 599 || len(body) > len(in)) {
			t.Fatalf("status %d, %d-byte body from %d bytes", status, len(body), len(in))
		}
	})
}

// --account signs with an existing unlocked account (its curve) and
// creates no wallet.
func TestLoadCommandWithAccount(t *testing.T) {
	e := newEnv(t, fastDaemon, func(c *Config) { c.SignRate, c.SignBurst = 1e9, 1e9 })
	k := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "mine", "password": "pw-123456", "curve": "secp256k1", "private_key_hex": strings.Repeat("0f", 32)}).must(t, 201)
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": k.str("wallet_id"), "password": "pw-123456"}).must(t, 200)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"load", "--url", e.url, "--account", k.str("account_id"), "--connections", "2", "--duration", "200ms", "--in-process-time", "50ms", "--json"},
		e.cliEnv, &out, &errb)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	var rep loadReport
	if json.Unmarshal(out.Bytes(), &rep) != nil || rep.Curve != "secp256k1" || rep.Signatures == 0 || rep.Errors != 0 || rep.VerifiedAnswers == 0 {
		t.Fatalf("report: %s", out.String())
	}
	if ws := e.do("GET", "/v1/wallets", anon, nil).must(t, 200).body["wallets"].([]any); len(ws) != 1 {
		t.Fatalf("%d wallets: load created one", len(ws))
	}
	// an unknown account is a clear error before any load
	if err := run(context.Background(), []string{"load", "--url", e.url, "--account", "nope", "--duration", "100ms"}, e.cliEnv, &out, &errb); err == nil || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Fatalf("unknown account: %v", err)
	}
}

// --mode spend on one server (the embedded chain, its faucet), its URL
// given twice so requests alternate between the two entries. One
// connection per wallet: the embedded chain mines only when it is sent a
// transaction, so a wallet's transaction broadcast after a later nonce
// would wait for the next send or the tracker's rebroadcast (30 s on a
// clock this test does not move). Every
// executed transaction is signed once (one transaction.execute audit
// entry each), every one is confirmed after the run, and the report's
// figures add up.
func TestLoadSpendCommand(t *testing.T) {
	e := newEnv(t)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"load", "--mode", "spend", "--url", e.url + "," + e.url, "--connections", "3", "--wallets", "3", "--duration", "700ms", "--json"},
		e.cliEnv, &out, &errb)
	if err != nil {
		t.Fatalf("load: %v\n%s\n%s", err, out.String(), errb.String())
	}
	var rep spendReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report %q: %v", out.String(), err)
	}
	if rep.Executed == 0 || rep.Errors != 0 || rep.Confirmed != rep.Executed || rep.Prepared < rep.Executed || rep.Rate <= 0 ||
		len(rep.PerURLExecute) != 2 || rep.PerURLExecute[0] == 0 || rep.PerURLExecute[1] == 0 || rep.PerURLExecute[0]+rep.PerURLExecute[1] != rep.Executed ||
		rep.Stages["execute"].Count != rep.Executed || rep.Stages["execute"].P99Ms < rep.Stages["execute"].P50Ms || rep.Wallets != 3 {
		t.Fatalf("report: %s", out.String())
	}
	owners, err := e.app.Store.AuditOwners(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	signed := 0
	for _, o := range owners {
		entries, _ := e.app.Store.AuditEntries(context.Background(), o, 0, 1_000_000)
		for _, a := range entries {
			if a.Action == "transaction.execute" {
				signed++
			}
		}
	}
	if int64(signed) != rep.Executed {
		t.Fatalf("%d signatures audited, %d executes reported", signed, rep.Executed)
	}
}

func TestLoadSpendFlags(t *testing.T) {
	for name, args := range map[string][]string{
		"fail/mode":        {"--mode", "nope"},
		"fail/url":         {"--mode", "spend", "--url", "http://127.0.0.1:1,ftp://x"},
		"fail/url path":    {"--mode", "spend", "--url", "http://127.0.0.1:1/api"},
		"fail/wallets":     {"--mode", "spend", "--url", "http://127.0.0.1:1", "--wallets", "0"},
		"fail/fund-rpc":    {"--mode", "spend", "--url", "http://127.0.0.1:1", "--fund-rpc", "file:///etc/passwd"},
		"fail/connections": {"--mode", "spend", "--url", "http://127.0.0.1:1", "--connections", "0"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseLoadFlags(args, func(string) string { return "" }, io.Discard); err == nil {
				t.Fatalf("%v accepted", args)
			}
		})
	}
	o, err := parseLoadFlags([]string{"--mode", "spend", "--url", "http://127.0.0.1:1, http://127.0.0.1:2/"}, func(string) string { return "" }, io.Discard)
	if err != nil || len(o.spend.urls) != 2 || o.spend.urls[1] != "http://127.0.0.1:2" {
		t.Fatalf("%+v %v", o, err)
	}
}
