package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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

// With the default signing rate limit the load stops at 429s and says so.
func TestLoadCommandRateLimited(t *testing.T) {
	e := newEnv(t, fastDaemon, func(c *Config) { c.SignRate, c.SignBurst = 10, 20 })
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
