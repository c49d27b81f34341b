package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/keys/hd"
	hdsigner "github.com/countersign/countersign/signer/hd"
)

func reportCPU(b *testing.B, start time.Duration, requestsPerOp int) {
	per := float64(processCPU()-start) / float64(b.N) / 1e6
	b.ReportMetric(per, "cpu-ms/op")
	b.ReportMetric(per/float64(requestsPerOp), "cpu-ms/request")
}

func longSessions(c *Config) { c.TokenTTL = 100000 * time.Hour; c.PendingTTL = 100000 * time.Hour }

// BenchmarkPrepareApproveExecute is one countersigned spend over HTTP on the
// embedded chain: prepare (agent), authorize with a TOTP code (human),
// execute (agent: sign, store, broadcast), and the receipt confirmed.
func BenchmarkPrepareApproveExecute(b *testing.B) {
	e := newEnv(b, longSessions)
	u := e.newUser(true)
	wallet := e.createWallet(u)
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": wallet, "amount": ether(1000).String()}).must(b, 200)
	_, key := e.createAgent(u, wallet)
	agent := apiKey(key)
	to := randomAddress()
	b.ResetTimer()
	start := processCPU()
	for b.Loop() {
		id := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": to, "amount": "1"}).must(b, 202).str("transaction_id")
		e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(b, 200)
		e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).must(b, 201)
		e.waitStatus(agent, id, "confirmed")
	}
	b.StopTimer()
	reportCPU(b, start, 4)
}

// BenchmarkTransactionStatus is the authenticated read path: API key
// lookup, the row, and the JSON view.
func BenchmarkTransactionStatus(b *testing.B) {
	e := newEnv(b, longSessions)
	_, _, _, key := setupB(b, e)
	agent := apiKey(key)
	id := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(b, 202).str("transaction_id")
	path := "/api/transaction_status?transaction_id=" + id
	b.ResetTimer()
	start := processCPU()
	for b.Loop() {
		e.do("GET", path, agent, nil).must(b, 200)
	}
	b.StopTimer()
	reportCPU(b, start, 1)
}

// BenchmarkTransactionStatusParallel is the read path under concurrent
// clients (GOMAXPROCS of them).
func BenchmarkTransactionStatusParallel(b *testing.B) {
	e := newEnv(b, longSessions)
	_, _, _, key := setupB(b, e)
	agent := apiKey(key)
	id := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(b, 202).str("transaction_id")
	path := "/api/transaction_status?transaction_id=" + id
	b.ResetTimer()
	start := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.do("GET", path, agent, nil).must(b, 200)
		}
	})
	b.StopTimer()
	reportCPU(b, start, 1)
}

// BenchmarkPasswordHash is the deliberate cost of Argon2id at the default
// parameters, paid by register, login and the password re-checks.
func BenchmarkPasswordHash(b *testing.B) {
	for b.Loop() {
		if _, err := auth.HashPassword("correct horse battery staple", auth.DefaultArgon2); err != nil {
			b.Fatal(err)
		}
	}
}

func setupB(b *testing.B, e *env) (*user, string, string, string) {
	u := e.newUser(true)
	wallet := e.createWallet(u)
	agentID, key := e.createAgent(u, wallet)
	return u, wallet, agentID, key
}

// BenchmarkInbox1000Pending renders the approval inbox (first page of 50,
// newest first) for a user with 1,000 pending requests, as the browser
// gets it: cookie session, store query, agent names, amounts, template.
func BenchmarkInbox1000Pending(b *testing.B) {
	e := newEnv(b, longSessions)
	u, _, _, key := setupB(b, e)
	for i := range 1000 {
		e.clock.Advance(time.Millisecond)
		e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(),
			"amount": "1000000000000000", "memo": "request " + itoaB(i)}).must(b, 202)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	page := func(path string) string {
		r, err := c.Get(e.url + path)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Body.Close()
		body, _ := io.ReadAll(r.Body)
		return string(body)
	}
	login := page("/login")
	m := csrfRE.FindStringSubmatch(login)
	if _, err := c.PostForm(e.url+"/login", url.Values{"csrf": {m[1]}, "username": {u.name}, "password": {u.password}}); err != nil {
		b.Fatal(err)
	}
	if body := page("/inbox"); strings.Count(body, `class="txrow"`) != 50 || !strings.Contains(body, "request 999") {
		b.Fatalf("inbox did not render 50 rows, newest first")
	}
	b.ResetTimer()
	start := processCPU()
	for b.Loop() {
		page("/inbox")
	}
	b.StopTimer()
	reportCPU(b, start, 1)
}

func itoaB(i int) string { return strconv.Itoa(i) }

// BenchmarkDevSignMessage is /dev/sign-message end to end: service
// credential, HKDF derivation, secp256k1 signature, JSON.
func BenchmarkDevSignMessage(b *testing.B) {
	e := newEnv(b, withSigner)
	omni := strings.Repeat("ab", 32)
	body := map[string]string{"omni_account": omni, "message_hex": "0x68656c6c6f"}
	b.ResetTimer()
	start := processCPU()
	for b.Loop() {
		e.do("POST", "/dev/sign-message", bearer(testSignerToken), body).must(b, 200)
	}
	b.StopTimer()
	reportCPU(b, start, 1)
}

// BenchmarkDevDeriveAddress is /dev/derive-address end to end for one
// omni_account (cached after the first call) and for a new one each time.
func BenchmarkDevDeriveAddress(b *testing.B) {
	e := newEnv(b, withSigner)
	b.Run("cached", func(b *testing.B) {
		body := map[string]string{"omni_account": strings.Repeat("cd", 32)}
		for b.Loop() {
			e.do("POST", "/dev/derive-address", bearer(testSignerToken), body).must(b, 200)
		}
	})
	b.Run("uncached", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			omni := fmt.Sprintf("%064x", i)
			e.do("POST", "/dev/derive-address", bearer(testSignerToken), map[string]string{"omni_account": omni}).must(b, 200)
		}
	})
}

// BenchmarkDaemonSignMessage compares the daemon's HTTP signing path (auth,
// rate limiter, decoding, key derivation from the unlocked seed, the audit
// row and the outbox event, JSON) with bare in-process signing of the same
// message. The target: HTTP keeps at least half the in-process rate.
func BenchmarkDaemonSignMessage(b *testing.B) {
	e := newEnv(b, fastDaemon, func(c *Config) { c.SignRate, c.SignBurst = 1e9, 1e9 })
	benchWalletToken = e.app.walletToken
	id := e.do("POST", "/v1/wallet/import-mnemonic", anon, map[string]string{"name": "b", "password": "pw",
		"mnemonic": "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"}).must(b, 201).str("wallet_id")
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": id, "password": "pw"}).must(b, 200)
	msg := []byte("job 42 receipt")
	for _, curve := range []string{"ed25519", "secp256k1"} {
		acct := e.do("POST", "/v1/account/derive", anon, map[string]string{"wallet_id": id, "curve": curve}).must(b, 201).str("account_id")
		seed, _ := hd.Seed("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", "")
		b.Run(curve+"/in-process", func(b *testing.B) {
			path, _ := hd.ParsePath(hdsigner.DefaultPaths[curve])
			if curve == "ed25519" {
				m, _ := hd.NewEd25519Master(seed)
				k, _ := m.Derive(path)
				priv := k.PrivateKey()
				for b.Loop() {
					ed25519.Sign(priv, msg)
				}
				return
			}
			m, _ := hd.NewMaster(seed)
			k, _ := m.Derive(path)
			priv, _ := crypto.ToECDSA(k.PrivateKey())
			hash := accounts.TextHash(msg)
			for b.Loop() {
				if _, err := crypto.Sign(hash, priv); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(curve+"/http", func(b *testing.B) {
			body := map[string]string{"account_id": acct, "message_base64": base64.StdEncoding.EncodeToString(msg)}
			for b.Loop() {
				e.do("POST", "/v1/sign/message", anon, body).must(b, 200)
			}
		})
		// JSON-RPC batches of 50 sign_message calls from 8 clients at once:
		// one op is one signature, so ns/op compares with the others.
		b.Run(curve+"/rpc-batch-parallel", func(b *testing.B) {
			const per = 50
			var batch bytes.Buffer
			batch.WriteByte('[')
			for i := range per {
				if i > 0 {
					batch.WriteByte(',')
				}
				fmt.Fprintf(&batch, `{"jsonrpc":"2.0","id":%d,"method":"sign_message","params":[%q,%q]}`, i, acct, base64.StdEncoding.EncodeToString(msg))
			}
			batch.WriteByte(']')
			body := batch.Bytes()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
			url := e.url + "/rpc"
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 32<<10)
				for {
					// one batch per 50 ops
					n := 0
					for n < per && pb.Next() {
						n++
					}
					if n == 0 {
						return
					}
					var ok bool
					if buf, ok = postSigned(b, client, url, body, buf, per); !ok {
						return
					}
					if n < per {
						return
					}
				}
			})
		})
		// Many clients at once, as a busy daemon sees them: keep-alive
		// connections, a lean client (the body prebuilt, the answer read
		// and checked for a signature), 32 requests in flight.
		b.Run(curve+"/http-parallel", func(b *testing.B) {
			body := []byte(fmt.Sprintf(`{"account_id":%q,"message_base64":%q}`, acct, base64.StdEncoding.EncodeToString(msg)))
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
			url := e.url + "/v1/sign/message"
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 512)
				for pb.Next() {
					var ok bool
					if buf, ok = postSigned(b, client, url, body, buf, 1); !ok {
						return
					}
				}
			})
		})
	}
}

// readAll reads r into buf, reusing its memory.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// BenchmarkHTTPFloor is the cheapest request the server answers
// (GET /healthz) with the same lean parallel client as the signing
// benchmark: what HTTP alone costs on this machine.
func BenchmarkHTTPFloor(b *testing.B) {
	e := newEnv(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	url := e.url + "/healthz"
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 512)
		for pb.Next() {
			res, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			buf, _ = readAll(res.Body, buf[:0])
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// postSigned POSTs body and checks the answer holds want signatures; it
// reports a failure and returns false otherwise.
func postSigned(b *testing.B, client *http.Client, url string, body, buf []byte, want int) ([]byte, bool) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Auth-Token", benchWalletToken)
	res, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return buf, false
	}
	buf, err = readAll(res.Body, buf[:0])
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || bytes.Count(buf, []byte(`"signature_base64"`)) != want {
		b.Errorf("status %d: %.300s %v", res.StatusCode, buf, err)
		return buf, false
	}
	return buf, true
}

// BenchmarkExecute is the execute request of a countersigned spend alone
// (sign with the wallet's key, store, broadcast), its CPU counted only
// while it runs; prepare, the TOTP approval and the confirmation happen
// outside that count. It is where the key file is opened, so it shows what
// the KDF of the file costs.
func BenchmarkExecute(b *testing.B) {
	e := newEnv(b, longSessions)
	u := e.newUser(true)
	wallet := e.createWallet(u)
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": wallet, "amount": ether(1000).String()}).must(b, 200)
	_, key := e.createAgent(u, wallet)
	agent := apiKey(key)
	to := randomAddress()
	var cpu, wall time.Duration
	for b.Loop() {
		b.StopTimer()
		id := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": to, "amount": "1"}).must(b, 202).str("transaction_id")
		e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(b, 200)
		b.StartTimer()
		c0, t0 := processCPU(), time.Now()
		e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).must(b, 201)
		cpu, wall = cpu+processCPU()-c0, wall+time.Since(t0)
		b.StopTimer()
		e.waitStatus(agent, id, "confirmed")
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/execute")
	b.ReportMetric(float64(wall.Microseconds())/1000/float64(b.N), "ms/execute")
}
