package main

import (
	"bytes"
	"context"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

// startSignerProcess runs `countersign signer` (the separate derived-key
// signer) on a free port and returns its URL and a stop that ends it and
// returns how it ended (nil: cleanly); the test's end stops it too.
func startSignerProcess(t *testing.T) (string, func() error) {
	t.Helper()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var serr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"signer", "--addr", addr}, func(k string) string {
			return map[string]string{"DEV_KEY_SERVICE_MASTER_SECRET": testMaster, "SIGNER_TOKEN": testSignerToken}[k]
		}, &bytes.Buffer{}, &serr)
	}()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	t.Cleanup(func() { stop() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("signer did not start: %s", serr.String())
		}
	}
}

// TestDerivedWallet_BacksACountersignedWallet: a user holding an identity
// (a SIWE login's omni session) makes a wallet whose key is the
// identity's derived key — with the signer in process and as a separate
// `countersign signer` (SIGNER_URL) — and its spends take the normal path:
// an agent prepares, the owner approves with TOTP, execute signs through
// the derived-key signer, and the chain accepts it from the derived
// address (the one /dev/derive-address gives). One wallet per identity; a
// bad session or code creates nothing; without a derived-key signer the
// route is refused.
func TestDerivedWallet_BacksACountersignedWallet(t *testing.T) {
	svc := cred{bearer: testSignerToken}
	for name, opt := range map[string]envOption{
		"in process": withSigner,
		"remote": func(c *Config) {
			c.SignerURL, _ = startSignerProcess(t)
			c.SignerToken = testSignerToken
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, opt)
			u := e.newUser(true)
			key, _ := crypto.GenerateKey()
			login := e.siweLogin(t, key).must(t, 200)
			omni, session := login.str("omni_account"), login.str("session_jwt")
			derived := e.do("POST", "/dev/derive-address", svc, map[string]string{"omni_account": omni}).must(t, 200).str("address")
			e.do("POST", "/api/wallets/derived", bearer(u.token), map[string]string{"omni_session": "not a session", "mfa_code": e.code(u)}).refused(t, 401, "UNAUTHORIZED")
			e.do("POST", "/api/wallets/derived", bearer(u.token), map[string]string{"omni_session": session, "mfa_code": "000000"}).refused(t, 403, "MFA_INVALID")
			w := e.do("POST", "/api/wallets/derived", bearer(u.token), map[string]string{"omni_session": session, "mfa_code": e.code(u), "name": "identity"}).must(t, 201)
			addr := w.str("address")
			if !strings.EqualFold(addr, derived) {
				t.Fatalf("the derived wallet is %s, the identity's derived address %s", addr, derived)
			}
			if row := walletRow(t, e, u, addr); row == nil || row["signer"] != "derived" {
				t.Fatalf("the wallet row: %v", row)
			}
			e.do("POST", "/api/wallets/derived", bearer(u.token), map[string]string{"omni_session": session, "mfa_code": e.code(u)}).refused(t, 409, "CONFLICT")
			_, agent := e.createAgent(u, addr)
			e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": addr, "amount": "1000000000000000000"}).must(t, 200)
			to := randomAddress()
			id := e.do("POST", "/api/prepare_transaction", apiKey(agent), map[string]string{"type": "native", "to_address": to, "amount": "4242"}).must(t, 202).str("transaction_id")
			e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
			e.do("POST", "/api/execute_transaction", apiKey(agent), map[string]string{"transaction_id": id}).must(t, 201)
			e.waitStatus(apiKey(agent), id, "confirmed")
			if got := e.balance(apiKey(agent), to, ""); got.Cmp(big.NewInt(4242)) != 0 {
				t.Fatalf("the recipient has %s wei, want 4242", got)
			}
		})
	}
	// no derived-key signer: refused, nothing created
	e := newEnv(t)
	u := e.newUser(true)
	e.do("POST", "/api/wallets/derived", bearer(u.token), map[string]string{"omni_session": "x", "mfa_code": e.code(u)}).refused(t, 503, "SIGNER_DISABLED")
}
