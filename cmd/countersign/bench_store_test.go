package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign/store/postgres/pgtest"
)

// The store's share of the countersigned spend, on SQLite and on a real
// PostgreSQL (pgtest: fsync=on, synchronous_commit=on), in process on the
// embedded chain. Run with a fixed count, since every op needs a
// transaction prepared and authorized beforehand:
//
//	go test ./cmd/countersign/ -run '^$' -bench 'ExecuteClaim|PrepareApproveExecuteStore' -benchtime 400x

// benchStores are the stores a benchmark runs on.
var benchStores = []struct {
	name string
	opt  func(b *testing.B) envOption
}{
	{"sqlite", func(*testing.B) envOption { return func(*Config) {} }},
	{"postgres", func(b *testing.B) envOption {
		var cfg *Config
		return onPostgres(pgtest.Start(b), &cfg)
	}},
}

// claimWallets are the wallets (each with its agent) a claim benchmark
// spreads its executes over: one wallet's executes queue for its nonce.
const claimWallets = 4

// BenchmarkExecuteClaim is execute_transaction over HTTP of a transaction
// authorized beforehand (by an auto-approve policy within a budget): the
// claim of the row, the balance check against the wallet's spends in
// flight, the nonce from the store, the signature, the commit (fsynced)
// and the broadcast to the embedded chain, from 8 concurrent agents'
// clients over 4 wallets. "again" is the retry of an executed transaction:
// the row read that answers the stored hash without signing.
func BenchmarkExecuteClaim(b *testing.B) {
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			e, keys := claimSetup(b, st.opt(b))
			txs := claimPrepare(b, e, keys, b.N)
			lat := claimRun(b, e, txs)
			claimReport(b, lat)
		})
		b.Run(st.name+"/again", func(b *testing.B) {
			e, keys := claimSetup(b, st.opt(b))
			txs := claimPrepare(b, e, keys, min(b.N, 50))
			for _, x := range txs {
				e.do("POST", "/api/execute_transaction", apiKey(x.key), map[string]string{"transaction_id": x.id}).must(b, 201)
			}
			again := make([]claimTx, b.N)
			for i := range again {
				again[i] = txs[i%len(txs)]
			}
			lat := claimRun(b, e, again)
			claimReport(b, lat)
		})
	}
}

// claimSetup starts a server on the store and makes claimWallets funded
// wallets of one user, each with an agent and an auto-approve policy.
func claimSetup(b *testing.B, opt envOption) (*env, []string) {
	e := newEnv(b, longSessions, opt)
	u := e.newUser(true)
	keys := make([]string, claimWallets)
	for i := range keys {
		w := e.do("POST", "/api/create_wallet", bearer(u.token), map[string]string{"password": u.password}).must(b, 201)
		e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": w.str("address"), "amount": ether(1000).String()}).must(b, 200)
		e.do("PUT", "/api/wallets/"+w.str("wallet_id")+"/policy", bearer(u.token), map[string]any{"mfa_code": e.code(u), "rules": []any{map[string]any{
			"id": "bench", "when": map[string]any{"kind": []string{"native"}}, "then": "auto",
			"budget": map[string]string{"max": "1000000000000000000000000", "window": "24h", "scope": "wallet"}}}}).must(b, 200)
		_, keys[i] = e.createAgent(u, w.str("address"))
	}
	return e, keys
}

// claimTx is a transaction to execute and its agent's key.
type claimTx struct{ id, key string }

// claimPrepare prepares n transactions, authorized by the policy, over the
// agents keys in turn.
func claimPrepare(b *testing.B, e *env, keys []string, n int) []claimTx {
	txs := make([]claimTx, n)
	to := randomAddress()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				st, body, raw, err := replicaCall(e.http, e.url, "POST", "/api/prepare_transaction", apiKey(keys[i%len(keys)]), map[string]string{"type": "native", "to_address": to, "amount": "1"})
				if err != nil || st != 202 || body["status"] != "authorized" {
					b.Errorf("prepare: %d %s %v", st, raw, err)
					return
				}
				txs[i] = claimTx{body["transaction_id"].(string), keys[i%len(keys)]}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return txs
}

// claimRun executes txs from 8 clients under the benchmark's timer and
// returns each execute's latency.
func claimRun(b *testing.B, e *env, txs []claimTx) []time.Duration {
	lat := make([]time.Duration, len(txs))
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := processCPU()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(txs); i = int(next.Add(1) - 1) {
				t0 := time.Now()
				st, body, raw, err := replicaCall(client, e.url, "POST", "/api/execute_transaction", apiKey(txs[i].key), map[string]string{"transaction_id": txs[i].id})
				lat[i] = time.Since(t0)
				if err != nil || st != 201 || body["tx_hash"] == "" {
					b.Errorf("execute: %d %s %v", st, raw, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	reportCPU(b, start, 1)
	return lat
}

// claimReport adds executes per second and the p50 and p99 latency.
func claimReport(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "executes/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkPrepareApproveExecuteStore is BenchmarkPrepareApproveExecute
// (one spend at a time: prepare, authorize with a TOTP code of the
// injected clock, execute, confirmed) on each store.
func BenchmarkPrepareApproveExecuteStore(b *testing.B) {
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			e := newEnv(b, longSessions, st.opt(b))
			u := e.newUser(true)
			wallet := e.createWallet(u)
			e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": wallet, "amount": ether(1000).String()}).must(b, 200)
			_, key := e.createAgent(u, wallet)
			agent := apiKey(key)
			to := randomAddress()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			start := processCPU()
			for b.Loop() {
				t0 := time.Now()
				id := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": to, "amount": "1"}).must(b, 202).str("transaction_id")
				e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(b, 200)
				e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).must(b, 201)
				e.waitStatus(agent, id, "confirmed")
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			reportCPU(b, start, 4)
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkPrepareConcurrent is prepare_transaction over HTTP from 16
// concurrent agents (4 wallets of 4 users), on SQLite and on PostgreSQL:
// the store's side of the "500 prepared transactions per second" —
// every prepare simulates on the embedded chain, binds fees, runs the
// (empty) policy and commits the row with its audit entry and event
// (fsynced). postgres-3replicas is the same on three servers in this
// process sharing one database, the agents' requests spread over them
// (what adding replicas does to the store: three pools and three group
// commits contending for one change lock; they share this process's CPU).
// It reports prepared transactions per second and the p99 of one prepare.
func BenchmarkPrepareConcurrent(b *testing.B) {
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			prepareConcurrent(b, []*env{newEnv(b, longSessions, st.opt(b))})
		})
	}
	b.Run("postgres-3replicas", func(b *testing.B) {
		dsn := pgtest.Start(b)
		var first *Config
		replicas := []*env{newEnv(b, longSessions, onPostgres(dsn, &first))}
		for range 2 {
			var cfg *Config
			// every replica reads the first one's master key file, as docs/OPERATIONS.md says
			replicas = append(replicas, newEnv(b, longSessions, onPostgres(dsn, &cfg), func(c *Config) { c.MasterKeyFile = first.MasterKeyFile }))
		}
		prepareConcurrent(b, replicas)
	})
	// As replicas are deployed: every one on the same node. Above, each
	// replica runs an embedded chain of its own (and its workers poll it),
	// which a deployment does not; here one dev node outside the servers,
	// over HTTP JSON-RPC, serves one server and three replicas alike.
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("postgres-%d-one-node", n), func(b *testing.B) {
			node, url := devNodeTB(b)
			dsn := pgtest.Start(b)
			var first *Config
			onNode := func(c *Config) { c.ChainURL = url }
			replicas := []*env{newEnv(b, longSessions, onPostgres(dsn, &first), onNode)}
			for range n - 1 {
				var cfg *Config
				replicas = append(replicas, newEnv(b, longSessions, onPostgres(dsn, &cfg), onNode, func(c *Config) { c.MasterKeyFile = first.MasterKeyFile }))
			}
			prepareConcurrent(b, replicas, func(wallet string) {
				if _, err := node.Fund(context.Background(), common.HexToAddress(wallet), ether(1)); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// prepareConcurrent measures b.N prepares from 16 agents of 4 users made
// on replicas[0]; agent k sends to replicas[k % len(replicas)]. fund, when
// given, funds each user's wallet.
func prepareConcurrent(b *testing.B, replicas []*env, fund ...func(wallet string)) {
	e := replicas[0]
	var keys []string
	for range 4 {
		u := e.newUser(true)
		w := e.do("POST", "/api/create_wallet", bearer(u.token), map[string]string{"password": u.password}).must(b, 201).str("address")
		for _, f := range fund { // an outside node funds no new wallet
			f(w)
		}
		for range 4 {
			_, k := e.createAgent(u, w)
			keys = append(keys, k)
		}
	}
	to := randomAddress()
	var next atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	wall := time.Now()
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func(r *env, agent cred) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				st, _, raw, err := replicaCall(r.http, r.url, "POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": to, "amount": "1"})
				d := time.Since(t0)
				if err != nil || st != http.StatusAccepted {
					b.Errorf("prepare: %d %s %v", st, raw, err)
					return
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}(replicas[i%len(replicas)], apiKey(k))
	}
	wg.Wait()
	elapsed := time.Since(wall)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "prepared/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}
