package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/golang-jwt/jwt/v5"

	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/contracts"
	cshttp "github.com/countersign/countersign/http"
)

// setup gives a user with MFA, a funded wallet and an agent.
func setup(t *testing.T, e *env) (u *user, wallet, agentID, key string) {
	u = e.newUser(true)
	wallet = e.createWallet(u)
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": wallet, "amount": ether(100).String()}).must(t, 200)
	agentID, key = e.createAgent(u, wallet)
	return
}

func TestConcurrentExecuteBroadcastsOnce(t *testing.T) {
	e := newEnv(t)
	u, wallet, _, key := setup(t, e)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)

	const n = 20
	hashes := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id})
			if r.status != 201 {
				t.Errorf("execute %d: %d %s", i, r.status, r.raw)
			}
			hashes[i] = r.str("tx_hash")
		}()
	}
	close(start)
	wg.Wait()
	for _, h := range hashes {
		if h != hashes[0] || h == "" {
			t.Fatalf("different hashes from concurrent executes: %v", hashes)
		}
	}
	e.waitStatus(apiKey(key), id, "confirmed")
	nonce, err := e.app.Dev.Client().NonceAt(context.Background(), common.HexToAddress(wallet), nil)
	if err != nil {
		t.Fatal(err)
	}
	if nonce != 1 {
		t.Fatalf("the wallet sent %d transactions, want exactly 1", nonce)
	}
	al := e.do("GET", "/api/audit?limit=1000", bearer(u.token), nil).must(t, 200)
	executes := 0
	for _, x := range al.body["entries"].([]any) {
		if x.(map[string]any)["action"] == "transaction.execute" {
			executes++
		}
	}
	if executes != 1 {
		t.Fatalf("%d execute audit entries, want 1", executes)
	}
}

// TestAuthorizationMatrix calls every non-anonymous route as each kind of
// caller that must not act on the owner's resources.
func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t, withSigner)
	owner, wallet, agentID, key := setup(t, e)
	pending := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	authorized := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "2"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(owner.token), map[string]string{"transaction_id": authorized, "mfa_code": e.code(owner)}).must(t, 200)

	other := e.newUser(true)
	otherWallet := e.createWallet(other)
	_, otherKey := e.createAgent(other, otherWallet)
	noMFA := e.newUser(false)
	e.createWallet(noMFA)
	_, revokedKey := e.createAgent(owner, wallet)
	revokedID := ""
	for _, a := range e.do("GET", "/api/agents", bearer(owner.token), nil).must(t, 200).body["agents"].([]any) {
		if m := a.(map[string]any); m["agent_id"] != agentID {
			revokedID = m["agent_id"].(string)
		}
	}
	e.do("DELETE", "/api/agents/"+revokedID, bearer(owner.token), map[string]string{"mfa_code": e.code(owner)}).must(t, 200)
	e.do("GET", "/api/transaction_status?transaction_id="+pending, apiKey(revokedKey), nil).refused(t, 401, "UNAUTHORIZED")

	spend := map[string]any{"password": testPassword, "mfa_code": "123456", "to_address": randomAddress(), "amount": "1", "address": wallet}
	apWalletID, apOwnerUID := approverMatrixIDs(t, e, owner, wallet) // approvers_test.go
	const apFakeID = "00000000-0000-4000-8000-000000000000"
	const apFakeAddr = "0x000000000000000000000000000000000000dEaD"
	routeOf := strings.NewReplacer(agentID, "{id}", apWalletID+"/approvers/"+apOwnerUID, "{id}/approvers/{user_id}", apWalletID, "{id}", apFakeID, "{id}", apFakeAddr, "{address}")
	callers := map[string]cred{"anonymous": anon, "other user": bearer(other.token), "user without MFA": bearer(noMFA.token),
		"agent of another user": apiKey(otherKey), "revoked agent": apiKey(revokedKey)}
	const ok = "ok"
	type row struct {
		method, path string
		body         any
		want         map[string]string // caller → "STATUS CODE" or ok (allowed, acting on its own data only)
	}
	forAll := func(other, noMFA, agent string) map[string]string {
		return map[string]string{"anonymous": "401 UNAUTHORIZED", "other user": other, "user without MFA": noMFA,
			"agent of another user": agent, "revoked agent": "401 UNAUTHORIZED"}
	}
	rows := []row{
		{"POST", "/api/setup_mfa", map[string]string{}, forAll("403 MFA_REQUIRED", "skip", "403 FORBIDDEN")},
		{"POST", "/api/mfa/recovery_codes", map[string]string{"mfa_code": "123456"}, forAll("403 MFA_INVALID", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"POST", "/api/mfa/recover", map[string]string{"recovery_code": "AAAA-BBBB-CCCC-DDDD"}, forAll("403 MFA_INVALID", "409 CONFLICT", "403 FORBIDDEN")},
		{"POST", "/api/create_wallet", map[string]string{"password": testPassword}, forAll(ok, ok, "403 FORBIDDEN")},
		{"POST", "/api/load_wallet", map[string]string{"address": wallet, "password": testPassword, "mfa_code": "123456"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "400 BAD_REQUEST")},
		{"POST", "/api/load_wallet", map[string]string{"address": wallet}, forAll("400 BAD_REQUEST", "403 MFA_REQUIRED", "404 NOT_FOUND")},
		{"GET", "/api/wallets", nil, forAll(ok, ok, "403 FORBIDDEN")},
		{"GET", "/api/charge_receipts", nil, forAll(ok, ok, ok)},
		{"POST", "/api/topups", map[string]string{"provider": "openrouter", "amount_usd": "5"}, forAll("403 FORBIDDEN", "403 FORBIDDEN", "400 BAD_REQUEST")}, // topup_test.go: no provider on this server
		{"GET", "/api/topups", nil, forAll(ok, ok, ok)},
		{"POST", "/api/wallets/derived", map[string]string{"omni_session": "x", "mfa_code": "123456"}, forAll("401 UNAUTHORIZED", "403 MFA_REQUIRED", "403 FORBIDDEN")},  // not an omni session: refused before the code is checked
		{"POST", "/api/x402/fetch", map[string]string{"url": "http://127.0.0.1:1/paid", "max_amount": "1"}, forAll("403 FORBIDDEN", "403 FORBIDDEN", "400 BAD_REQUEST")}, // an internal URL: refused before any fetch
		{"GET", "/api/address_book", nil, forAll(ok, ok, "403 FORBIDDEN")},
		{"POST", "/api/address_book", map[string]string{"address": wallet, "label": "x", "extra": "x"}, forAll("400 BAD_REQUEST", "403 MFA_REQUIRED", "403 FORBIDDEN")}, // an unknown field: refused after the rule, before anything is written
		{"DELETE", "/api/address_book/" + apFakeAddr, nil, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"GET", "/api/topups/" + apFakeID, nil, forAll("404 NOT_FOUND", "404 NOT_FOUND", "404 NOT_FOUND")},
		{"POST", "/api/import_wallet", map[string]string{"password": testPassword, "mfa_code": "123456", "keystore": "{}", "keystore_passphrase": "x"}, forAll("403 MFA_INVALID", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"POST", "/api/export_wallet", map[string]string{"address": wallet, "password": testPassword, "mfa_code": "123456", "export_passphrase": "long enough passphrase"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"GET", "/api/balance?address=" + wallet, nil, forAll(ok, ok, ok)},
		{"POST", "/api/agents", map[string]string{"name": "x", "wallet_address": wallet, "mfa_code": "123456"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"GET", "/api/agents", nil, forAll(ok, ok, "403 FORBIDDEN")},
		{"DELETE", "/api/agents/" + agentID, map[string]string{"mfa_code": "123456"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"POST", "/api/prepare_transaction", map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}, forAll("403 FORBIDDEN", "403 FORBIDDEN", ok)},
		{"POST", "/api/authorize_transaction", map[string]string{"transaction_id": pending, "mfa_code": "123456"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"GET", "/api/transaction_status?transaction_id=" + pending, nil, forAll("404 NOT_FOUND", "404 NOT_FOUND", "404 NOT_FOUND")},
		{"POST", "/api/execute_transaction", map[string]string{"transaction_id": authorized}, forAll("403 FORBIDDEN", "403 FORBIDDEN", "404 NOT_FOUND")},
		{"POST", "/api/cancel_transaction", map[string]string{"transaction_id": pending}, forAll("403 FORBIDDEN", "403 FORBIDDEN", "404 NOT_FOUND")},
		{"GET", "/api/transactions", nil, forAll(ok, ok, ok)},
		{"GET", "/api/events", nil, forAll("skip", "skip", "403 FORBIDDEN")},
		{"POST", "/api/transactions/" + apFakeID + "/cancel_onchain", map[string]string{"mfa_code": "123456"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"GET", "/api/ws", nil, forAll("403 FORBIDDEN", "403 FORBIDDEN", "400 BAD_REQUEST")}, // a plain GET: no upgrade (live_test.go opens the socket)
		{"POST", "/api/transfer", spend, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"POST", "/api/transfer_erc20", map[string]any{"password": testPassword, "mfa_code": "123456", "to_address": randomAddress(), "amount": "1", "address": wallet, "token_address": wallet}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"POST", "/api/contract_call", map[string]any{"password": testPassword, "mfa_code": "123456", "address": wallet, "contract_address": wallet, "contract_abi": "[]", "function_name": "f"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"GET", "/api/audit", nil, forAll(ok, ok, "403 FORBIDDEN")},
		{"GET", "/api/audit/checkpoint", nil, forAll(ok, ok, "403 FORBIDDEN")},
		{"POST", "/api/dev/faucet", map[string]string{"address": randomAddress(), "amount": "1"}, forAll(ok, ok, ok)},
		{"POST", "/mcp", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, forAll("403 FORBIDDEN", "403 FORBIDDEN", "skip")},
		{"POST", "/eth", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "eth_accounts"}, forAll("403 FORBIDDEN", "403 FORBIDDEN", ok)},
		{"POST", "/dev/derive-address", map[string]string{"omni_account": strings.Repeat("a", 64)}, forAll("401 UNAUTHORIZED", "401 UNAUTHORIZED", "401 UNAUTHORIZED")},
		{"POST", "/dev/sign-message", map[string]string{"omni_account": strings.Repeat("a", 64), "message_hex": "0x00"}, forAll("401 UNAUTHORIZED", "401 UNAUTHORIZED", "401 UNAUTHORIZED")},
		{"POST", "/dev/sign-typed-data", map[string]string{"omni_account": strings.Repeat("a", 64)}, forAll("401 UNAUTHORIZED", "401 UNAUTHORIZED", "401 UNAUTHORIZED")},
		{"POST", "/dev/sign-digest", map[string]string{"omni_account": strings.Repeat("a", 64), "digest": "0x" + strings.Repeat("00", 32)}, forAll("401 UNAUTHORIZED", "401 UNAUTHORIZED", "401 UNAUTHORIZED")},
		{"POST", "/v1/wallet/link", map[string]string{"identity_type": "email", "identity_value": "x@example.com", "code": "123456"}, forAll("401 UNAUTHORIZED", "401 UNAUTHORIZED", "401 UNAUTHORIZED")},
		{"POST", "/v1/mint-oidc-jwt", nil, forAll("401 UNAUTHORIZED", "401 UNAUTHORIZED", "401 UNAUTHORIZED")},
		// approvers, quorum, the kill switch, the users' webhooks (approvers_test.go)
		{"POST", "/api/wallets/" + apWalletID + "/approvers", map[string]string{"username": noMFA.name, "mfa_code": "123456"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"GET", "/api/wallets/" + apWalletID + "/approvers", nil, forAll("404 NOT_FOUND", "404 NOT_FOUND", "403 FORBIDDEN")},
		{"PUT", "/api/wallets/" + apWalletID + "/low_balance", map[string]string{"below": "1"}, forAll("404 NOT_FOUND", "404 NOT_FOUND", "403 FORBIDDEN")},
		{"GET", "/api/wallets/" + apWalletID + "/low_balance", nil, forAll("404 NOT_FOUND", "404 NOT_FOUND", "403 FORBIDDEN")},
		{"DELETE", "/api/wallets/" + apWalletID + "/approvers/" + apOwnerUID, map[string]string{"mfa_code": "123456"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"GET", "/api/approvals/invitations", nil, forAll(ok, ok, "403 FORBIDDEN")},
		{"DELETE", "/api/approvals/invitations/" + apFakeID, nil, forAll("404 NOT_FOUND", "404 NOT_FOUND", "403 FORBIDDEN")},
		{"POST", "/api/approvals/invitations/" + apFakeID + "/accept", map[string]string{"mfa_code": "123456"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"POST", "/api/withdraw_approval", map[string]string{"transaction_id": authorized, "mfa_code": "123456"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"GET", "/api/policy_changes", nil, forAll(ok, ok, "403 FORBIDDEN")},
		{"POST", "/api/policy_changes/" + apFakeID + "/approve", map[string]string{"mfa_code": "123456"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"POST", "/api/policy_changes/" + apFakeID + "/reject", map[string]string{"mfa_code": "123456"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"POST", "/api/freeze", map[string]string{"wallet_id": apWalletID}, forAll("404 NOT_FOUND", "404 NOT_FOUND", "403 FORBIDDEN")},
		{"POST", "/api/unfreeze", map[string]string{"wallet_id": apWalletID, "mfa_code": "123456"}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"GET", "/api/freezes", nil, forAll(ok, ok, "403 FORBIDDEN")},
		{"POST", "/api/webhooks", map[string]any{"url": "http://127.0.0.1/hook", "events": []string{"transaction.*"}}, forAll("400 BAD_REQUEST", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"GET", "/api/webhooks", nil, forAll(ok, ok, "403 FORBIDDEN")},
		{"DELETE", "/api/webhooks/" + apFakeID, nil, forAll("404 NOT_FOUND", "404 NOT_FOUND", "403 FORBIDDEN")},
		{"GET", "/api/webhooks/" + apFakeID + "/deliveries", nil, forAll("404 NOT_FOUND", "404 NOT_FOUND", "403 FORBIDDEN")},
		// policies (policy_test.go)
		{"GET", "/api/agents/" + agentID + "/policy", nil, forAll("404 NOT_FOUND", "404 NOT_FOUND", "403 FORBIDDEN")},
		{"PUT", "/api/agents/" + agentID + "/policy", map[string]any{"mfa_code": "123456", "rules": []any{}}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"GET", "/api/wallets/" + apWalletID + "/policy", nil, forAll("404 NOT_FOUND", "404 NOT_FOUND", "403 FORBIDDEN")},
		{"PUT", "/api/wallets/" + apWalletID + "/policy", map[string]any{"mfa_code": "123456", "rules": []any{}}, forAll("404 NOT_FOUND", "403 MFA_REQUIRED", "403 FORBIDDEN")},
		{"POST", "/api/agents/" + agentID + "/policy/simulate", map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}, forAll("404 NOT_FOUND", "404 NOT_FOUND", "403 FORBIDDEN")},
		{"GET", "/api/policy", nil, forAll("403 FORBIDDEN", "403 FORBIDDEN", ok)},
		{"GET", "/api/budget", nil, forAll("403 FORBIDDEN", "403 FORBIDDEN", ok)},
		{"POST", "/api/policy/simulate", map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}, forAll("403 FORBIDDEN", "403 FORBIDDEN", ok)},
		{"POST", "/api/logout", nil, forAll(ok, ok, "403 FORBIDDEN")}, // last: it ends sessions
	}
	// forged and foreign credentials: refused on every route (the signer
	// token is right on the signer's own /dev/* routes only)
	forged := forgedCredentials(t, e, owner)
	for name, c := range forged {
		callers[name] = c
	}
	// the web UI's routes, before the rows below log the other users out
	covered := uiAuthorizationMatrix(t, e, key, agentID, owner, noMFA)
	for _, r := range rows {
		covered[r.method+" "+strings.Split(routeOf.Replace(r.path), "?")[0]] = true
		for name, c := range callers {
			want := r.want[name]
			if _, ok := forged[name]; ok {
				want = "refused"
				if name == "signer token" && strings.HasPrefix(r.path, "/dev/") {
					want = "skip" // the signer's own routes: TestDerivedSigner* use it
				}
				if name == "omni session" && (r.path == "/v1/wallet/link" || r.path == "/v1/mint-oidc-jwt") {
					want = "skip" // the omni session's own routes: TestOmni* use it
				}
			}
			if want == "skip" {
				continue
			}
			t.Run(r.method+" "+strings.Split(r.path, "?")[0]+"/"+name, func(t *testing.T) {
				res := e.do(r.method, r.path, c, r.body)
				if want == ok {
					if res.status >= 400 {
						t.Fatalf("refused: %s", res.raw)
					}
					for _, secret := range []string{pending, authorized, agentID, owner.name} {
						if strings.Contains(res.raw, secret) {
							t.Fatalf("response leaks the owner's %q: %s", secret, res.raw)
						}
					}
					return
				}
				got := res.status
				if want == "refused" {
					if got != 401 && got != 403 {
						t.Fatalf("a forged or foreign credential got %d: %s", got, res.raw)
					}
					return
				}
				if gotS := http.StatusText(got); gotS == "" || want != itoa(got)+" "+res.code() {
					t.Fatalf("got %d %s, want %s: %s", got, res.code(), want, res.raw)
				}
			})
		}
	}
	// the wallet daemon's routes, each with the daemon principals
	for k := range daemonAuthorizationMatrix(t, e, key, owner.token) {
		covered[k] = true
	}
	// every protected route is in the matrix
	for _, rt := range cshttp.Routes() {
		if rt.Access != cshttp.Anonymous && !covered[rt.Method+" "+rt.Path] {
			t.Errorf("route %s %s is missing from the authorization matrix", rt.Method, rt.Path)
		}
	}
	// nothing happened to the owner's requests
	for _, id := range []string{pending, authorized} {
		st := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200).str("status")
		if (id == pending && st != "pending") || (id == authorized && st != "authorized") {
			t.Fatalf("transaction %s changed to %s", id, st)
		}
	}
}

// forgedCredentials are the credentials an attacker can make or borrow:
// session tokens that are expired, signed by another key, unsigned (alg
// none) or HMAC-signed with the public JWKS key, an omni (identity)
// session, and the signer's service token right and wrong.
func forgedCredentials(t *testing.T, e *env, owner *user) map[string]cred {
	t.Helper()
	k := sessionKey(t, e)
	uid := ""
	for _, a := range e.do("GET", "/api/audit", bearer(owner.token), nil).must(t, 200).body["entries"].([]any) {
		if m := a.(map[string]any); m["action"] == "user.register" {
			uid, _ = m["subject"].(string)
		}
	}
	if uid == "" {
		t.Fatal("no user id for the owner in the audit log")
	}
	now := e.clock.Now()
	claims := func(exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{"iss": auth.Issuer, "aud": auth.Issuer, "sub": uid, "name": owner.name, "jti": "forged-" + itoa(int(exp.Unix()%1000)), "iat": now.Add(-2 * time.Hour).Unix(), "exp": exp.Unix()}
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		tt := jwt.NewWithClaims(m, c)
		tt.Header["kid"] = k.KID
		s, err := tt.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	other, _ := auth.NewTokenKey()
	pub, _ := k.Private.PublicKey.Bytes()
	key, _ := crypto.GenerateKey()
	omni := e.siweLogin(t, key).must(t, 200).str("session_jwt")
	return map[string]cred{
		"expired JWT":             bearer(sign(jwt.SigningMethodES256, k.Private, claims(now.Add(-time.Hour)))),
		"JWT of another key":      bearer(sign(jwt.SigningMethodES256, other.Private, claims(now.Add(time.Hour)))),
		"JWT alg none":            bearer(sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(now.Add(time.Hour)))),
		"JWT HS256 with JWKS key": bearer(sign(jwt.SigningMethodHS256, pub, claims(now.Add(time.Hour)))),
		"omni session":            bearer(omni),
		"signer token":            bearer(testSignerToken),
		"wrong signer token":      bearer(testSignerToken + "x"),
	}
}

func itoa(n int) string {
	return strings.TrimSpace(strings.Replace(http.StatusText(n), http.StatusText(n), "", 1)) + func() string {
		b := []byte{}
		for n > 0 {
			b = append([]byte{byte('0' + n%10)}, b...)
			n /= 10
		}
		return string(b)
	}()
}

func TestMFAReplayAndLockout(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	// the code just used to create the agent is refused: a replay
	used := auth.TOTPCode(u.secret, e.clock.Now())
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": used}).refused(t, 403, "MFA_INVALID")
	// a code from two steps ago is out of the window
	e.clock.Advance(90 * time.Second)
	old := auth.TOTPCode(u.secret, e.clock.Now().Add(-61*time.Second))
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": old}).refused(t, 403, "MFA_INVALID")
	// the replay did not count (a double submit must not lock the owner
	// out); three more wrong codes make four in a row; the fifth locks
	for range 3 {
		e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": "999999x"[:6]}).refused(t, 403, "MFA_INVALID")
	}
	r := e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": "000001"})
	if r.status != 429 || r.code() != "MFA_LOCKED" || !strings.Contains(r.str("error"), "") || r.header.Get("Retry-After") == "" {
		t.Fatalf("want MFA_LOCKED with Retry-After, got %s", r.raw)
	}
	if !strings.Contains(r.raw, "locked until") {
		t.Fatalf("the lockout error does not say until when: %s", r.raw)
	}
	// even the right code is refused while locked
	e.clock.Advance(30 * time.Second)
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": auth.TOTPCode(u.secret, e.clock.Now())}).refused(t, 429, "MFA_LOCKED")
	// after 15 minutes it works again (log in anew: the session aged too)
	e.clock.Advance(15 * time.Minute)
	u.token = e.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).must(t, 200).str("access_token")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
}

func TestReplaceMFANeedsCurrentCode(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(true)
	e.do("POST", "/api/setup_mfa", bearer(u.token), nil).refused(t, 403, "MFA_REQUIRED")
	e.do("POST", "/api/setup_mfa", bearer(u.token), map[string]string{"mfa_code": "000000"}).refused(t, 403, "MFA_INVALID")
	r := e.do("POST", "/api/setup_mfa", bearer(u.token), map[string]string{"mfa_code": e.code(u)}).must(t, 201)
	if !strings.HasPrefix(r.str("mfa_uri"), "otpauth://totp/countersign:"+u.name+"?secret="+r.str("secret")+"&issuer=countersign") || r.str("qr_png_base64") == "" {
		t.Fatalf("enrolment: %s", r.raw)
	}
}

func TestLogoutRevokesToken(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(false)
	e.do("GET", "/api/wallets", bearer(u.token), nil).must(t, 200)
	e.do("POST", "/api/logout", bearer(u.token), nil).must(t, 200)
	e.do("GET", "/api/wallets", bearer(u.token), nil).refused(t, 401, "UNAUTHORIZED")
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(false)
	for range 5 {
		e.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": "wrong password 123"}).refused(t, 401, "UNAUTHORIZED")
	}
	r := e.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).refused(t, 429, "RATE_LIMIT")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	e.clock.Advance(16 * time.Minute)
	e.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).must(t, 200)
	// per client address: 20 failures across usernames
	for i := range 20 {
		e.do("POST", "/api/login", anon, map[string]string{"username": "nobody" + itoa(i), "password": "wrong password 123"}).refused(t, 401, "UNAUTHORIZED")
	}
	e.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).refused(t, 429, "RATE_LIMIT")
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	_, _, _, key := setup(t, e)
	to := randomAddress()
	body := map[string]string{"type": "native", "to_address": to, "amount": "5"}
	a := e.do("POST", "/api/prepare_transaction", apiKey(key), body, "Idempotency-Key", "k1").must(t, 202)
	b := e.do("POST", "/api/prepare_transaction", apiKey(key), body, "Idempotency-Key", "k1").must(t, 202)
	if a.str("transaction_id") != b.str("transaction_id") {
		t.Fatalf("same key, two transactions: %s %s", a.raw, b.raw)
	}
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": to, "amount": "6"}, "Idempotency-Key", "k1").refused(t, 409, "CONFLICT")
	c := e.do("POST", "/api/prepare_transaction", apiKey(key), body, "Idempotency-Key", "k2").must(t, 202)
	if c.str("transaction_id") == a.str("transaction_id") {
		t.Fatal("a new key returned the old transaction")
	}
	// the same request written another way is the same request: the address in lower case,
	// the ABI and the arguments spaced and ordered differently
	lower := map[string]string{"type": "native", "to_address": strings.ToLower(to), "amount": "5"}
	if d := e.do("POST", "/api/prepare_transaction", apiKey(key), lower, "Idempotency-Key", "k1").must(t, 202); d.str("transaction_id") != a.str("transaction_id") {
		t.Fatalf("a lower-case address under the same key: %s", d.raw)
	}
	counter := e.app.Dev.Counter.Hex()
	call := func(abi, args string) map[string]any {
		return map[string]any{"type": "contract_call", "contract_address": counter, "function_name": "increment",
			"contract_abi": json.RawMessage(abi), "function_args": json.RawMessage(args)}
	}
	first := e.do("POST", "/api/prepare_transaction", apiKey(key), call(`[{"type":"function","name":"increment","inputs":[],"outputs":[]}]`, `[]`), "Idempotency-Key", "k3").must(t, 202)
	again := e.do("POST", "/api/prepare_transaction", apiKey(key), call(`[ {"outputs": [], "name": "increment", "inputs": [], "type": "function"} ]`, `[ ]`), "Idempotency-Key", "k3").must(t, 202)
	if again.str("transaction_id") != first.str("transaction_id") {
		t.Fatalf("the same ABI spaced and ordered differently under the same key: %s", again.raw)
	}
	e.do("POST", "/api/prepare_transaction", apiKey(key), call(`[{"type":"function","name":"increment","inputs":[],"outputs":[],"stateMutability":"payable"}]`, `[]`), "Idempotency-Key", "k3").refused(t, 409, "CONFLICT")
	// keys equal but for case are not sorted into one: the ABI parser matches keys without case
	// and keeps the last, so these two are set(uint8) and set(uint256)
	set := func(abi string) map[string]any {
		return map[string]any{"type": "contract_call", "contract_address": counter, "function_name": "set",
			"contract_abi": json.RawMessage(abi), "function_args": json.RawMessage(`["7"]`)}
	}
	e.do("POST", "/api/prepare_transaction", apiKey(key), set(`[{"type":"function","name":"set","inputs":[{"name":"v","type":"uint256","Type":"uint8"}],"outputs":[]}]`), "Idempotency-Key", "k4").must(t, 202)
	e.do("POST", "/api/prepare_transaction", apiKey(key), set(`[{"type":"function","name":"set","inputs":[{"name":"v","Type":"uint8","type":"uint256"}],"outputs":[]}]`), "Idempotency-Key", "k4").refused(t, 409, "CONFLICT")
}

func TestLongPollWakesOnDecision(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	got := make(chan resp, 1)
	begin := time.Now()
	go func() {
		got <- e.do("GET", "/api/transaction_status?transaction_id="+id+"&wait=30s", apiKey(key), nil)
	}()
	time.Sleep(200 * time.Millisecond)
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
	r := <-got
	if r.str("status") != "authorized" {
		t.Fatalf("long poll returned %s", r.raw)
	}
	if time.Since(begin) > 10*time.Second {
		t.Fatalf("the long poll did not wake on the decision")
	}
}

func TestEventsStreamPendingRequests(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	req, _ := http.NewRequest("GET", e.url+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+u.token)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1", "memo": "<b>hi</b>"}).must(t, 202).str("transaction_id")
	sc := bufio.NewScanner(res.Body)
	var event string
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event == "transaction.pending" {
			if !strings.Contains(v, id) {
				t.Fatalf("pending event for another transaction: %s", v)
			}
			return
		}
	}
	t.Fatalf("no transaction.pending event: %v", sc.Err())
}

func TestOpsEndpoints(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/healthz", anon, nil).must(t, 200)
	if r.header.Get("X-Request-Id") == "" {
		t.Fatal("no X-Request-Id")
	}
	r = e.do("GET", "/healthz", anon, nil, "X-Request-Id", "abc-123")
	if r.header.Get("X-Request-Id") != "abc-123" {
		t.Fatal("caller's request id not honoured")
	}
	r = e.do("GET", "/healthz", anon, nil, "X-Request-Id", "bad id with spaces")
	if strings.Contains(r.header.Get("X-Request-Id"), " ") {
		t.Fatal("an unsafe request id was echoed")
	}
	if e.do("GET", "/readyz", anon, nil).must(t, 200).body["chain_id"].(float64) != 1337 {
		t.Fatal("readyz chain id")
	}
	jw := e.do("GET", "/.well-known/jwks.json", anon, nil).must(t, 200)
	keys := jw.body["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["kid"] == "" || keys[0].(map[string]any)["alg"] != "ES256" {
		t.Fatalf("jwks: %s", jw.raw)
	}
	u, _, _, key := setup(t, e)
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202)
	_ = u
	m := e.do("GET", "/metrics", anon, nil).must(t, 200).raw
	for _, want := range []string{`countersign_transactions{status="pending"} 1`, `countersign_http_requests_total{code="202",route="POST /api/prepare_transaction"} 1`, "countersign_http_request_duration_seconds_bucket", "countersign_tracker_errors_total 0"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// every log line written while serving a request carries its id
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"request"`) && !strings.Contains(line, `"request_id":"`) {
			t.Fatalf("log line without request id: %s", line)
		}
	}
	if !strings.Contains(e.logs.String(), `"msg":"countersign is serving"`) || !strings.Contains(e.logs.String(), `"chain_id":"1337"`) {
		t.Fatal("start-up log line lacks URL or chain id")
	}
	e.do("GET", "/api/nope", anon, nil).refused(t, 404, "NOT_FOUND")
	e.do("GET", "/api/dev/info", anon, nil).must(t, 200)
}

func TestExecuteRefusalsKeepTheApproval(t *testing.T) {
	e := newEnv(t)
	u, wallet, _, key := setup(t, e) // the wallet holds 100 ETH
	agent := apiKey(key)
	// more than the wallet holds: refused before signing, nothing broadcast
	id := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": randomAddress(), "amount": ether(1000).String()}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
	r := e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id})
	if r.status != 422 || r.code() != "INSUFFICIENT_FUNDS" {
		t.Fatalf("got %s", r.raw)
	}
	if s := e.do("GET", "/api/transaction_status?transaction_id="+id, agent, nil).must(t, 200).str("status"); s != "authorized" {
		t.Fatalf("status %s after a refused execute", s)
	}
	// after funding, the same approval executes
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": wallet, "amount": ether(1000).String()}).must(t, 200)
	e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).must(t, 201)
	e.waitStatus(agent, id, "confirmed")

	// a call that would revert is refused with the revert reason
	info := e.do("GET", "/api/dev/info", anon, nil).must(t, 200)
	id = e.do("POST", "/api/prepare_transaction", agent, map[string]any{"type": "contract_call", "contract_address": info.str("counter_address"),
		"contract_abi": contracts.MustLoad("Counter").ABIJSON, "function_name": "alwaysReverts"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
	r = e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id})
	if r.status != 502 || r.code() != "CHAIN_ERROR" || !strings.Contains(r.raw, "always reverts") {
		t.Fatalf("got %s", r.raw)
	}
}

// sessionKey is the newest session-token signing key, unsealed from the
// store the way the service loads it (forging tokens needs the real key).
func sessionKey(t *testing.T, e *env) auth.TokenKey {
	t.Helper()
	stored, err := e.app.Store.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, sk := range stored {
		if sk.Alg != "ES256" {
			continue
		}
		scalar, err := e.app.Sealer.Open("signing-key:"+sk.KID, sk.Sealed)
		if err != nil {
			t.Fatal(err)
		}
		k, err := auth.ParseTokenKey(scalar)
		if err != nil {
			t.Fatal(err)
		}
		return k // newest first
	}
	t.Fatal("no session signing key in the store")
	return auth.TokenKey{}
}
