package main

import (
	"context"
	"encoding/base32"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/auth"
)

// Attacks on passwords and MFA: each test performs the attack and checks
// that it fails (docs/SECURITY.md lists them).

// from returns a copy of e whose requests come from the loopback address
// ip (127.0.0.0/8 is all loopback on Linux), so per-address limits can be
// told apart.
func (e *env) from(ip string) *env {
	c := *e
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c.http = &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	return &c
}

func webLogin(t *testing.T, e *env, u *user) *formClient {
	t.Helper()
	f := newFormClient(t, e)
	f.get("/login")
	if st, body := f.post("/login", url.Values{"csrf": {f.csrf()}, "username": {u.name}, "password": {u.password}}); st != 200 || !strings.Contains(body, "Requests waiting") {
		t.Fatalf("web login: %d", st)
	}
	return f
}

func decodeSecret(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSecurity_MFATakeoverWithPendingEnrolment: a web enrolment begun while
// MFA was off can no longer be confirmed (nor shown) once the owner turns
// MFA on through the API, so the password alone cannot replace the secret.
func TestSecurity_MFATakeoverWithPendingEnrolment(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(false)
	attacker := webLogin(t, e, u) // knows the password only
	attacker.get("/mfa")
	attacker.post("/mfa/begin", url.Values{"csrf": {attacker.csrf()}})
	m := secretRE.FindStringSubmatch(attacker.res)
	if m == nil {
		t.Fatalf("no pending secret shown: %s", attacker.res)
	}
	planted := decodeSecret(t, m[1])

	// the owner turns MFA on through the API: new secret, recovery codes
	r := e.do("POST", "/api/setup_mfa", bearer(u.token), nil).must(t, 201)
	u.secret = decodeSecret(t, r.str("secret"))
	if rc, _ := r.body["recovery_codes"].([]any); len(rc) != 10 {
		t.Fatalf("setup_mfa gave %d recovery codes: %s", len(rc), r.raw)
	}

	// the pending secret is gone: not shown, not confirmable
	if body := attacker.get("/mfa"); strings.Contains(body, m[1]) || secretRE.MatchString(body) {
		t.Fatal("the pending secret is still shown after MFA was enabled")
	}
	e.clock.Advance(30 * time.Second)
	_, body := attacker.post("/mfa/confirm", url.Values{"csrf": {attacker.csrf()}, "mfa_code": {auth.TOTPCode(planted, e.clock.Now())}})
	if recoveryRE.MatchString(body) {
		t.Fatal("the planted secret was confirmed: MFA taken over with the password alone")
	}
	// starting a new enrolment needs a current code now
	attacker.get("/mfa")
	attacker.post("/mfa/begin", url.Values{"csrf": {attacker.csrf()}})
	if secretRE.MatchString(attacker.res) {
		t.Fatal("an enrolment was started without a current code while MFA is on")
	}
	attacker.get("/mfa")
	attacker.post("/mfa/begin", url.Values{"csrf": {attacker.csrf()}, "mfa_code": {auth.TOTPCode(planted, e.clock.Now())}})
	if secretRE.MatchString(attacker.res) {
		t.Fatal("an enrolment was started with a code of the planted secret")
	}
	// the owner's secret still rules: the planted one approves nothing
	wallet := e.createWallet(u)
	e.do("POST", "/api/agents", bearer(u.token), map[string]string{"name": "x", "wallet_address": wallet, "mfa_code": auth.TOTPCode(planted, e.clock.Now().Add(30*time.Second))}).refused(t, 403, "MFA_INVALID")
	e.createAgent(u, wallet)
}

// TestSecurity_MFAReplaceNeedsCurrentCodeInTheSameRequest: while MFA is
// on, confirming a replacement needs a current code with it, and the new
// secret is shown only in the answer that began it.
func TestSecurity_MFAReplaceNeedsCurrentCodeInTheSameRequest(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(true)
	f := webLogin(t, e, u)
	f.get("/mfa")
	f.post("/mfa/begin", url.Values{"csrf": {f.csrf()}, "mfa_code": {e.code(u)}})
	m := secretRE.FindStringSubmatch(f.res)
	if m == nil || !strings.Contains(f.res, `name="current_code"`) {
		t.Fatalf("replacement page: %s", f.res)
	}
	next := decodeSecret(t, m[1])
	if body := f.get("/mfa"); strings.Contains(body, m[1]) {
		t.Fatal("GET /mfa shows a pending secret while MFA is on")
	}
	e.clock.Advance(30 * time.Second)
	_, body := f.post("/mfa/confirm", url.Values{"csrf": {f.csrf()}, "mfa_code": {auth.TOTPCode(next, e.clock.Now())}})
	if recoveryRE.MatchString(body) {
		t.Fatal("a replacement was confirmed without a current code")
	}
	f.get("/mfa")
	_, body = f.post("/mfa/confirm", url.Values{"csrf": {f.csrf()}, "mfa_code": {auth.TOTPCode(next, e.clock.Now())}, "current_code": {e.code(u)}})
	if len(recoveryRE.FindAllString(body, -1)) != 10 {
		t.Fatalf("replacement with both codes failed: %s", body)
	}
	old := u.secret
	u.secret = next
	wallet := e.createWallet(u)
	e.do("POST", "/api/agents", bearer(u.token), map[string]string{"name": "x", "wallet_address": wallet, "mfa_code": auth.TOTPCode(old, e.clock.Now().Add(30*time.Second))}).refused(t, 403, "MFA_INVALID")
	e.createAgent(u, wallet)
}

// TestSecurity_MFAPendingEnrolmentExpires: an enrolment left open cannot be
// confirmed after MFAPendingTTL.
func TestSecurity_MFAPendingEnrolmentExpires(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(false)
	f := webLogin(t, e, u)
	f.get("/mfa")
	f.post("/mfa/begin", url.Values{"csrf": {f.csrf()}})
	m := secretRE.FindStringSubmatch(f.res)
	if m == nil {
		t.Fatal("no pending secret")
	}
	e.clock.Advance(11 * time.Minute)
	if body := f.get("/mfa"); strings.Contains(body, m[1]) {
		t.Fatal("an expired enrolment is still shown")
	}
	_, body := f.post("/mfa/confirm", url.Values{"csrf": {f.csrf()}, "mfa_code": {auth.TOTPCode(decodeSecret(t, m[1]), e.clock.Now())}})
	if recoveryRE.MatchString(body) || !strings.Contains(body, "expired") {
		t.Fatalf("an expired enrolment was confirmed: %s", body)
	}
}

// TestSecurity_MFARecoveryCodesOverAPI: recovery codes come from the API
// too, once; a recovery code turns MFA off and also proves the user when
// replacing the secret; a new set voids the old one.
func TestSecurity_MFARecoveryCodesOverAPI(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(true)
	e.do("POST", "/api/mfa/recovery_codes", bearer(u.token), map[string]string{"mfa_code": "123456"}).refused(t, 403, "MFA_INVALID")
	r := e.do("POST", "/api/mfa/recovery_codes", bearer(u.token), map[string]string{"mfa_code": e.code(u)}).must(t, 201)
	codes, _ := r.body["recovery_codes"].([]any)
	if len(codes) != 10 {
		t.Fatalf("recovery codes: %s", r.raw)
	}
	r = e.do("POST", "/api/mfa/recover", bearer(u.token), map[string]string{"mfa_code": e.code(u)}).must(t, 200)
	fresh, _ := r.body["recovery_codes"].([]any)
	if len(fresh) != 10 || r.body["mfa_enabled"] != true {
		t.Fatalf("recover with mfa_code: %s", r.raw)
	}
	e.do("POST", "/api/mfa/recover", bearer(u.token), map[string]string{"recovery_code": codes[0].(string)}).refused(t, 403, "MFA_INVALID")
	e.do("POST", "/api/mfa/recover", bearer(u.token), map[string]string{}).refused(t, 400, "BAD_REQUEST")
	// a recovery code replaces the secret in one request
	r = e.do("POST", "/api/setup_mfa", bearer(u.token), map[string]string{"mfa_code": fresh[0].(string)}).must(t, 201)
	u.secret = decodeSecret(t, r.str("secret"))
	e.do("POST", "/api/setup_mfa", bearer(u.token), map[string]string{"mfa_code": fresh[0].(string)}).refused(t, 403, "MFA_INVALID")
	fresh, _ = r.body["recovery_codes"].([]any)
	// and turns MFA off
	r = e.do("POST", "/api/mfa/recover", bearer(u.token), map[string]string{"recovery_code": strings.ToLower(fresh[1].(string))}).must(t, 200)
	if r.body["mfa_enabled"] != false {
		t.Fatalf("recover: %s", r.raw)
	}
	e.do("POST", "/api/agents", bearer(u.token), map[string]string{"name": "x", "wallet_address": e.createWallet(u), "mfa_code": "123456"}).refused(t, 403, "MFA_REQUIRED")
}

// TestSecurity_MFAParallelSubmitOfOneCodeDoesNotLockOut: ten parallel
// submits of one good code: one is accepted, the replays are refused but
// do not count as failures, so the owner is not locked out.
func TestSecurity_MFAParallelSubmitOfOneCodeDoesNotLockOut(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	var ids []string
	for range 10 {
		ids = append(ids, e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id"))
	}
	code := e.code(u)
	var ok, replay atomic.Int32
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": code})
			switch {
			case r.status == 200:
				ok.Add(1)
			case r.code() == "MFA_INVALID":
				replay.Add(1)
			default:
				t.Errorf("unexpected answer: %s", r.raw)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || replay.Load() != 9 {
		t.Fatalf("accepted %d, refused %d: want 1 and 9", ok.Load(), replay.Load())
	}
	// not locked: the next code works at once (on a request still pending)
	fresh := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": fresh, "mfa_code": e.code(u)}).must(t, 200)
}

// TestSecurity_ParallelPasswordGuessesMeetTheLimit: 40 parallel wrong
// passwords: only the first five are checked, the rest get 429.
func TestSecurity_ParallelPasswordGuessesMeetTheLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Argon2 = auth.Argon2Params{Time: 1, Memory: 16 * 1024, Threads: 1} })
	u := e.newUser(false)
	var wrong, limited atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": "wrong password 123"})
			switch {
			case r.status == 401:
				wrong.Add(1)
			case r.status == 429 && r.code() == "RATE_LIMIT" && r.header.Get("Retry-After") != "":
				limited.Add(1)
			case r.status == 503 && r.header.Get("Retry-After") != "":
			default:
				t.Errorf("unexpected answer: %d %s", r.status, r.raw)
			}
		}()
	}
	wg.Wait()
	if wrong.Load() != 5 {
		t.Fatalf("%d guesses were checked, %d limited: want exactly 5 checked", wrong.Load(), limited.Load())
	}
	// the limit is per (user, address): the owner elsewhere still logs in
	e.from("127.0.0.2").do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).must(t, 200)
	e.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).refused(t, 429, "RATE_LIMIT")
}

// TestSecurity_LoginLockoutIsPerAddressWithAGlobalCeiling: five wrong
// passwords from one address do not lock the owner out elsewhere, but a
// spray from many addresses meets the per-user ceiling.
func TestSecurity_LoginLockoutIsPerAddressWithAGlobalCeiling(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(false)
	for i := range 50 {
		from := e.from("127.0.1." + itoa(i/5+1)) // five guesses from each of ten addresses
		from.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": "wrong password 123"}).refused(t, 401, "UNAUTHORIZED")
	}
	e.from("127.0.2.1").do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).refused(t, 429, "RATE_LIMIT")
	e.clock.Advance(16 * time.Minute)
	e.from("127.0.2.1").do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).must(t, 200)
}

// TestSecurity_PasswordRecheckIsNoOracle: the password re-checks of
// sensitive actions share the login limiter: after five wrong guesses even
// the right password is refused, on every route that re-checks it.
func TestSecurity_PasswordRecheckIsNoOracle(t *testing.T) {
	e := newEnv(t)
	routes := []struct {
		path string
		body func(u *user, wallet, pw string) map[string]string
	}{
		{"/api/create_wallet", func(u *user, w, pw string) map[string]string { return map[string]string{"password": pw} }},
		{"/api/load_wallet", func(u *user, w, pw string) map[string]string {
			return map[string]string{"address": w, "password": pw, "mfa_code": e.code(u)}
		}},
		{"/api/transfer", func(u *user, w, pw string) map[string]string {
			return map[string]string{"address": w, "password": pw, "mfa_code": e.code(u), "to_address": randomAddress(), "amount": "1"}
		}},
		{"/api/contract_call", func(u *user, w, pw string) map[string]string {
			return map[string]string{"address": w, "password": pw, "mfa_code": e.code(u), "contract_address": randomAddress(), "contract_abi": "[]", "function_name": "f"}
		}},
		{"/api/transfer_erc20", func(u *user, w, pw string) map[string]string {
			return map[string]string{"address": w, "password": pw, "mfa_code": e.code(u), "to_address": randomAddress(), "amount": "1", "token_address": randomAddress()}
		}},
	}
	for _, rt := range routes {
		t.Run(strings.TrimPrefix(rt.path, "/api/"), func(t *testing.T) {
			e.clock.Advance(16 * time.Minute) // a fresh window for this address
			u := e.newUser(true)
			wallet := e.createWallet(u)
			for range 5 {
				e.do("POST", rt.path, bearer(u.token), rt.body(u, wallet, "wrong password 123")).refused(t, 403, "BAD_PASSWORD")
			}
			e.do("POST", rt.path, bearer(u.token), rt.body(u, wallet, "wrong password 123")).refused(t, 429, "RATE_LIMIT")
			e.do("POST", rt.path, bearer(u.token), rt.body(u, wallet, u.password)).refused(t, 429, "RATE_LIMIT")
		})
	}
	t.Run("web wallet form", func(t *testing.T) {
		e.clock.Advance(16 * time.Minute)
		u := e.newUser(false)
		f := webLogin(t, e, u)
		for range 5 {
			f.get("/wallets")
			f.post("/wallets", url.Values{"csrf": {f.csrf()}, "password": {"wrong password 123"}, "name": {"x"}})
		}
		f.get("/wallets")
		_, body := f.post("/wallets", url.Values{"csrf": {f.csrf()}, "password": {u.password}, "name": {"real"}})
		if strings.Contains(body, "Wallet real created") || !strings.Contains(body, "too many wrong passwords") {
			t.Fatalf("the right password after five wrong ones: %s", body)
		}
	})
}

// TestSecurity_LoginMemoryIsBounded: forty parallel logins for a user that
// does not exist, with the production Argon2 cost (64 MiB each): password
// hashing runs in a bounded pool (the rest wait or get 503 with
// Retry-After), the heap never holds forty hashes' memory, and it is given
// back to the OS afterwards.
func TestSecurity_LoginMemoryIsBounded(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Argon2 = auth.DefaultArgon2
		c.HashConcurrency, c.HashQueue = 2, 4
	})
	var peak atomic.Uint64
	ctx, stop := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for ctx.Err() == nil {
			runtime.ReadMemStats(&ms)
			if v := ms.HeapInuse; v > peak.Load() {
				peak.Store(v)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var busy, wrong atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// distinct addresses, so the login limiter does not answer first
			r := e.from("127.0.3."+itoa(i+1)).do("POST", "/api/login", anon, map[string]string{"username": "nobody" + itoa(i), "password": "wrong password 123"})
			switch {
			case r.status == 503 && r.code() == "UNAVAILABLE" && r.header.Get("Retry-After") != "":
				busy.Add(1)
			case r.status == 401:
				wrong.Add(1)
			default:
				t.Errorf("unexpected answer: %d %s", r.status, r.raw)
			}
		}()
	}
	wg.Wait()
	stop()
	<-sampled
	if busy.Load() == 0 || wrong.Load() == 0 {
		t.Fatalf("%d refused as busy, %d checked: want some of each", busy.Load(), wrong.Load())
	}
	const mib = 1 << 20
	if p := peak.Load(); p > 400*mib {
		t.Fatalf("heap in use peaked at %d MiB during the burst: hashing is not bounded", p/mib)
	}
	// memory comes back once hashing has been idle
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		held := ms.HeapSys - ms.HeapReleased
		if held < 160*mib {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d MiB of heap still held by the process 10 s after the burst", held/mib)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSecurity_AgentCannotApproveItsOwnRequest: an agent that prepared a
// request cannot approve it, with or without a code (a code it somehow
// learnt included), as a key or as a bearer token, alone or in a batch.
func TestSecurity_AgentCannotApproveItsOwnRequest(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	for name, c := range map[string]cred{"X-API-KEY": apiKey(key), "bearer": bearer(key)} {
		for _, body := range []map[string]any{
			{"transaction_id": id, "mfa_code": e.code(u)},
			{"transaction_ids": []string{id}, "mfa_code": e.code(u)},
			{"transaction_id": id, "mfa_code": e.code(u), "decision": "approve"},
		} {
			if r := e.do("POST", "/api/authorize_transaction", c, body); r.status != 403 || r.code() != "FORBIDDEN" {
				t.Fatalf("%s: an agent's approval got %d %s", name, r.status, r.raw)
			}
		}
	}
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).refused(t, 409, "NOT_AUTHORIZED")
	if st := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200).str("status"); st != "pending" {
		t.Fatalf("the request is %s after the agent's attempts, want pending", st)
	}
}

// TestSecurity_ParallelRecoveryCodeDoesNotLockOut: twenty parallel copies
// of one recovery code replacing the secret: one wins, the rest are
// replays (refused, not counted), so the owner is not locked out of the
// secret they have just set.
func TestSecurity_ParallelRecoveryCodeDoesNotLockOut(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(true)
	r := e.do("POST", "/api/mfa/recovery_codes", bearer(u.token), map[string]string{"mfa_code": e.code(u)}).must(t, 201)
	code := r.body["recovery_codes"].([]any)[0].(string)
	var won, replay atomic.Int32
	var secret atomic.Value
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("POST", "/api/setup_mfa", bearer(u.token), map[string]string{"mfa_code": code})
			switch {
			case r.status == 201:
				won.Add(1)
				secret.Store(r.str("secret"))
			case r.status == 403 && r.code() == "MFA_INVALID":
				replay.Add(1)
			default:
				t.Errorf("unexpected answer: %d %s", r.status, r.raw)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 || replay.Load() != 19 {
		t.Fatalf("%d replaced the secret, %d refused as replays: want 1 and 19", won.Load(), replay.Load())
	}
	u.secret = decodeSecret(t, secret.Load().(string))
	// not locked: the new secret works at once
	e.createAgent(u, e.createWallet(u))
	// and a wrong (never issued) recovery code still counts
	for range 4 {
		e.do("POST", "/api/mfa/recover", bearer(u.token), map[string]string{"recovery_code": "AAAA-BBBB-CCCC-DDDD"}).refused(t, 403, "MFA_INVALID")
	}
	e.do("POST", "/api/mfa/recover", bearer(u.token), map[string]string{"recovery_code": "AAAA-BBBB-CCCC-DDDE"}).refused(t, 429, "MFA_LOCKED")
}
