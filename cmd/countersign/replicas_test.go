package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/store/postgres/pgtest"
)

// Several `countersign serve` processes on one PostgreSQL and one geth dev
// node, as production runs them behind a load balancer. They are the test
// binary re-executed as the crash tests' child (TestMain in crash_test.go,
// COUNTERSIGN_CRASH_HELPER=1) with no crash point, so each is the real
// serve wiring in its own process: nothing is shared but the database,
// the chain and the copied master key file.

// startReplica runs one server process on its own data directory dir with
// the extra environment (KEY=VALUE) on top of startServer's; its log goes
// to dir's sibling replica-NAME.log.
func startReplica(t *testing.T, dir, chainURL, name string, extra ...string) *serverProcess {
	t.Helper()
	return startProcess(t, dir, chainURL, "", "replica-"+name, append([]string{"LOG_LEVEL=info"}, extra...)...)
}

// startReplicas runs n replicas on the PostgreSQL database dsn and the
// node chainURL. The first generates the master key file; the others get
// a copy of it, as docs/OPERATIONS.md tells operators to do (KEYSTORE is
// store, PostgreSQL's default: every replica signs with every wallet).
func startReplicas(t *testing.T, n int, dsn, chainURL string) []*serverProcess {
	t.Helper()
	root := t.TempDir()
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = filepath.Join(root, fmt.Sprintf("r%d", i), "data")
		if err := os.MkdirAll(filepath.Dir(dirs[i]), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	out := []*serverProcess{startReplica(t, dirs[0], chainURL, "0", "DATABASE_URL="+dsn)}
	key, err := os.ReadFile(filepath.Join(dirs[0], "master.key"))
	if err != nil {
		t.Fatalf("the first replica's master key file: %v", err)
	}
	for i := 1; i < n; i++ {
		if err := os.MkdirAll(dirs[i], 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirs[i], "master.key"), key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	rest := make([]*serverProcess, n-1)
	for i := range rest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rest[i] = startReplica(t, dirs[i+1], chainURL, fmt.Sprint(i+1), "DATABASE_URL="+dsn)
		}()
	}
	wg.Wait()
	for _, p := range rest {
		if p == nil {
			t.FailNow() // startReplica reported why
		}
	}
	return append(out, rest...)
}

// replicaCall is one request from a goroutine: it returns what happened
// instead of failing the test.
func replicaCall(client *http.Client, url, method, path string, c cred, body any) (int, map[string]any, string, error) {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return 0, nil, "", err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url+path, rd)
	if err != nil {
		return 0, nil, "", err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.apiKey != "" {
		req.Header.Set("X-API-KEY", c.apiKey)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out, string(raw), nil
}

// replicaAgent is one agent of the test: its key, its wallet, whose human
// approves, and what it prepared.
type replicaAgent struct {
	key, wallet string
	owner       int // index into the humans
	ids         []string
}

// TestMoney_ThreeReplicasExactlyOnce: three server processes on one
// PostgreSQL and one geth --dev node. Two humans with two wallets each
// (one agent per wallet) prepare 200 transactions through random
// replicas; each human authorizes its 100 with one batch and one TOTP code
// through a random replica; then every agent calls execute for each of
// its transactions three times at once on random replicas, and once more
// afterwards. What a bug in exactly-once execution would break:
//
//   - 200 distinct transaction hashes, and every execute of one
//     transaction answers the same hash;
//   - each sender's nonces on chain are exactly its starting nonce … +49,
//     and the node holds nothing more from it (no second signature, no
//     gap, no filler);
//   - every transaction is confirmed, with the hash execute answered;
//   - each payee received exactly what was approved for it, and each
//     sender lost exactly the values plus the fees its receipts show;
//   - the audit log holds exactly one transaction.execute (a signature) per
//     approval and no adoption, and the hash chain verifies.
func TestMoney_ThreeReplicasExactlyOnce(t *testing.T) {
	gethURL := startGeth(t)
	fx := gethFixture(t, gethURL)
	ec, err := ethclient.Dial(gethURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ec.Close)
	dsn := pgtest.Start(t)
	replicas := startReplicas(t, 3, dsn, gethURL)
	clients := make([]*env, len(replicas))
	for i, r := range replicas {
		clients[i] = r.client(t)
	}
	rnd := func() *env { return clients[mrand.IntN(len(clients))] }
	hc := &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

	const humans, walletsPerHuman, perAgent = 2, 2, 50
	users := make([]*user, humans)
	steps := make([]totpSteps, humans)
	var agents []*replicaAgent
	funding := ether(5)
	for h := range users {
		users[h] = rnd().newUser(true)
		for range walletsPerHuman {
			wallet := rnd().createWallet(users[h])
			fx.fund(t, wallet, funding)
			r := rnd().do("POST", "/api/agents", bearer(users[h].token), map[string]string{"name": "agent", "wallet_address": wallet, "mfa_code": steps[h].code(users[h].secret)}).must(t, 201)
			agents = append(agents, &replicaAgent{key: r.str("api_key"), wallet: wallet, owner: h})
		}
	}

	// 200 prepares, the agents side by side, each request to a random replica
	payees := make([]string, 8)
	for i := range payees {
		payees[i] = randomAddress()
	}
	want := map[string]*big.Int{} // payee → what it must receive
	values := map[string]*big.Int{}
	for _, p := range payees {
		want[p] = new(big.Int)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for a, ag := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perAgent {
				payee := payees[(a*perAgent+i)%len(payees)]
				amount := big.NewInt(int64(1_000_000_000 + a*1000 + i)) // each distinct, so a transfer paid twice or to the wrong payee shows
				st, body, raw, err := replicaCall(hc, clients[mrand.IntN(len(clients))].url, "POST", "/api/prepare_transaction", apiKey(ag.key),
					map[string]string{"type": "native", "to_address": payee, "amount": amount.String()})
				if err != nil || st != 202 {
					t.Errorf("prepare: %d %s %v", st, raw, err)
					return
				}
				id, _ := body["transaction_id"].(string)
				mu.Lock()
				ag.ids = append(ag.ids, id)
				want[payee].Add(want[payee], amount)
				values[id] = amount
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// each human: one batch of its 100, one code, a random replica
	for h, u := range users {
		var ids []string
		for _, ag := range agents {
			if ag.owner == h {
				ids = append(ids, ag.ids...)
			}
		}
		r := rnd().do("POST", "/api/authorize_transaction", bearer(u.token), map[string]any{"transaction_ids": ids, "mfa_code": steps[h].code(u.secret)}).must(t, 200)
		results, _ := r.body["results"].([]any)
		if len(results) != len(ids) {
			t.Fatalf("batch authorize answered %d results for %d ids: %s", len(results), len(ids), r.raw)
		}
		for _, x := range results {
			if s := x.(map[string]any)["status"]; s != "authorized" {
				t.Fatalf("batch authorize: %v", x)
			}
		}
	}

	start := map[string]uint64{} // sender → nonce before any execute
	for _, ag := range agents {
		n, pending, _ := chainState(t, ec, ag.wallet, ag.wallet)
		if n != pending {
			t.Fatalf("wallet %s has %d transactions in the pool before any execute", ag.wallet, pending-n)
		}
		start[ag.wallet] = n
	}

	// execute: per agent two lanes; per transaction three executes at once
	// on random replicas
	const lanes, tries = 2, 3
	hashes := map[string]string{} // transaction → the hash execute answered
	executes := 0
	record := func(id string, st int, body map[string]any, raw string, err error) {
		mu.Lock()
		defer mu.Unlock()
		executes++
		if err != nil || st != 201 {
			t.Errorf("execute %s: %d %s %v", id, st, raw, err)
			return
		}
		h, _ := body["tx_hash"].(string)
		if prev, ok := hashes[id]; h == "" || ok && prev != h {
			t.Errorf("execute %s answered hash %q, before %q: signed twice", id, h, prev)
			return
		}
		hashes[id] = h
	}
	began := time.Now()
	for _, ag := range agents {
		ids := slices.Clone(ag.ids)
		mrand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		work := make(chan string, len(ids))
		for _, id := range ids {
			work <- id
		}
		close(work)
		for range lanes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range work {
					var at sync.WaitGroup
					for range tries {
						at.Add(1)
						go func() {
							defer at.Done()
							st, body, raw, err := replicaCall(hc, clients[mrand.IntN(len(clients))].url, "POST", "/api/execute_transaction", apiKey(ag.key), map[string]string{"transaction_id": id})
							record(id, st, body, raw, err)
						}()
					}
					at.Wait()
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("%d executes of %d transactions on %d replicas in %s", executes, len(hashes), len(replicas), time.Since(began).Round(time.Millisecond))
	if t.Failed() {
		t.FailNow()
	}
	// once more, later, each on a random replica: the same hash
	for _, ag := range agents {
		for _, id := range ag.ids {
			st, body, raw, err := replicaCall(hc, rnd().url, "POST", "/api/execute_transaction", apiKey(ag.key), map[string]string{"transaction_id": id})
			record(id, st, body, raw, err)
		}
	}
	distinct := map[string]bool{}
	for _, h := range hashes {
		distinct[h] = true
	}
	if len(hashes) != humans*walletsPerHuman*perAgent || len(distinct) != len(hashes) {
		t.Fatalf("%d transactions executed with %d distinct hashes, want %d and %d", len(hashes), len(distinct), humans*walletsPerHuman*perAgent, humans*walletsPerHuman*perAgent)
	}

	// every one confirmed, with the hash execute answered
	for _, ag := range agents {
		for _, id := range ag.ids {
			if r := rnd().waitStatus(apiKey(ag.key), id, "confirmed"); r.str("tx_hash") != hashes[id] {
				t.Fatalf("%s confirmed with hash %s, execute answered %s", id, r.str("tx_hash"), hashes[id])
			}
		}
	}

	// the chain: gapless nonces from the start, nothing else sent, exact
	// balances
	ctx := context.Background()
	for _, ag := range agents {
		var nonces []uint64
		spent := new(big.Int)
		for _, id := range ag.ids {
			tx, pending, err := ec.TransactionByHash(ctx, common.HexToHash(hashes[id]))
			if err != nil || pending {
				t.Fatalf("%s (%s) on chain: pending %v, %v", id, hashes[id], pending, err)
			}
			from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
			if err != nil || from != common.HexToAddress(ag.wallet) || tx.Value().Cmp(values[id]) != 0 {
				t.Fatalf("%s: from %s value %s, want %s value %s (%v)", id, from.Hex(), tx.Value(), ag.wallet, values[id], err)
			}
			rc, err := ec.TransactionReceipt(ctx, tx.Hash())
			if err != nil || rc.Status != types.ReceiptStatusSuccessful {
				t.Fatalf("%s receipt: %+v %v", id, rc, err)
			}
			nonces = append(nonces, tx.Nonce())
			spent.Add(spent, tx.Value())
			spent.Add(spent, new(big.Int).Mul(new(big.Int).SetUint64(rc.GasUsed), rc.EffectiveGasPrice))
		}
		slices.Sort(nonces)
		for i, n := range nonces {
			if n != start[ag.wallet]+uint64(i) {
				t.Fatalf("wallet %s nonces %v: not gapless from %d", ag.wallet, nonces, start[ag.wallet])
			}
		}
		if n, pending, _ := chainState(t, ec, ag.wallet, ag.wallet); n != start[ag.wallet]+perAgent || pending != n {
			t.Fatalf("wallet %s: mined nonce %d, pending %d, want %d: a transaction was sent that no approval accounts for", ag.wallet, n, pending, start[ag.wallet]+perAgent)
		}
		bal, err := ec.BalanceAt(ctx, common.HexToAddress(ag.wallet), nil)
		if wantBal := new(big.Int).Sub(funding, spent); err != nil || bal.Cmp(wantBal) != 0 {
			t.Fatalf("wallet %s holds %s, want %s (funded %s, spent %s) %v", ag.wallet, bal, wantBal, funding, spent, err)
		}
	}
	for _, p := range payees {
		if got, err := ec.BalanceAt(ctx, common.HexToAddress(p), nil); err != nil || got.Cmp(want[p]) != 0 {
			t.Fatalf("payee %s received %s, want exactly %s (%v)", p, got, want[p], err)
		}
	}

	// one signature per approval in each human's audit log
	for h, u := range users {
		signed, adopted := map[string]int{}, 0
		c := rnd()
		for after := int64(0); ; {
			page := c.do("GET", fmt.Sprintf("/api/audit?after=%d&limit=1000", after), bearer(u.token), nil).must(t, 200).body["entries"].([]any)
			if len(page) == 0 {
				break
			}
			for _, x := range page {
				e := x.(map[string]any)
				after = int64(e["seq"].(float64))
				switch e["action"] {
				case "transaction.execute":
					signed[e["subject"].(string)]++
				case "transaction.adopt":
					adopted++
				}
			}
		}
		total := 0
		for _, ag := range agents {
			if ag.owner != h {
				continue
			}
			for _, id := range ag.ids {
				if signed[id] != 1 {
					t.Errorf("transaction %s has %d transaction.execute audit entries, want exactly 1", id, signed[id])
				}
				total++
			}
		}
		if len(signed) != total || adopted != 0 {
			t.Errorf("human %d: signatures for %d transactions (want %d), %d adoptions (want 0)", h, len(signed), total, adopted)
		}
	}
	st, err := openPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := core.VerifyAudit(ctx, st); err != nil {
		t.Fatalf("audit chain after the run: %d entries, %v", n, err)
	}
}

// TestMoney_BudgetAcrossReplicas: a wallet policy approves native
// payments automatically within a wallet-scope budget of 12 payments;
// three agents of that wallet, each on its own replica, prepare 10
// payments each all at once. Exactly 12 are authorized by the policy (a
// budget reservation racing across processes would let more through), the
// other 18 wait for a human as the policy's overflow says, and the budget
// shows all of it reserved. Executing the 12 on random replicas spends
// exactly the budget; the next prepare overflows to a human.
func TestMoney_BudgetAcrossReplicas(t *testing.T) {
	gethURL := startGeth(t)
	fx := gethFixture(t, gethURL)
	replicas := startReplicas(t, 3, pgtest.Start(t), gethURL)
	clients := make([]*env, len(replicas))
	for i, r := range replicas {
		clients[i] = r.client(t)
	}
	var steps totpSteps
	c := clients[0]
	u := c.newUser(true)
	w := c.do("POST", "/api/create_wallet", bearer(u.token), map[string]string{"password": u.password}).must(t, 201)
	walletID, wallet := w.str("wallet_id"), w.str("address")
	fx.fund(t, wallet, ether(1))
	const amount, fits, perAgent = 1_000_000, 12, 10
	budget := fmt.Sprint(amount * fits)
	c.do("PUT", "/api/wallets/"+walletID+"/policy", bearer(u.token), `{"mfa_code":"`+steps.code(u.secret)+`","rules":[{"id":"shared","when":{"kind":["native"]},"then":"auto",
	  "budget":{"max":"`+budget+`","window":"24h","scope":"wallet"},"overflow":"human"}],"default":"human"}`).must(t, 200)
	keys := make([]string, len(clients))
	for i := range keys {
		keys[i] = clients[i].do("POST", "/api/agents", bearer(u.token), map[string]string{"name": fmt.Sprint("agent", i), "wallet_address": wallet, "mfa_code": steps.code(u.secret)}).must(t, 201).str("api_key")
	}
	hc := &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	payee := randomAddress()
	var mu sync.Mutex
	var wg sync.WaitGroup
	auto, human := map[string]string{}, 0 // auto-approved transaction → its agent's key
	begin := make(chan struct{})
	for i := range clients {
		for range perAgent {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-begin
				st, body, raw, err := replicaCall(hc, clients[i].url, "POST", "/api/prepare_transaction", apiKey(keys[i]), map[string]string{"type": "native", "to_address": payee, "amount": fmt.Sprint(amount)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil || st != 202:
					t.Errorf("prepare on replica %d: %d %s %v", i, st, raw, err)
				case body["status"] == "authorized" && body["decision"] == "auto" && body["rule_id"] == "shared":
					auto[body["transaction_id"].(string)] = keys[i]
				case body["status"] == "pending" && body["decision"] == "human":
					human++
				default:
					t.Errorf("prepare on replica %d decided neither auto within the budget nor human: %s", i, raw)
				}
			}()
		}
	}
	close(begin)
	wg.Wait()
	if len(auto) != fits || human != len(clients)*perAgent-fits {
		t.Fatalf("%d auto-approved and %d for a human; want exactly %d within the budget of %s and %d overflowing", len(auto), human, fits, budget, len(clients)*perAgent-fits)
	}
	for i, cl := range clients {
		if b := cl.do("GET", "/api/budget", apiKey(keys[i]), nil).must(t, 200); !strings.Contains(b.raw, `"reserved":"`+budget+`"`) || !strings.Contains(b.raw, `"remaining":"0"`) {
			t.Fatalf("budget seen from replica %d after the race: %s", i, b.raw)
		}
	}

	// the 12 executed on random replicas: the payee gets exactly the budget
	for id, k := range auto {
		cl := clients[mrand.IntN(len(clients))]
		cl.do("POST", "/api/execute_transaction", apiKey(k), map[string]string{"transaction_id": id}).must(t, 201)
	}
	for id, k := range auto {
		clients[mrand.IntN(len(clients))].waitStatus(apiKey(k), id, "confirmed")
	}
	if got, err := fx.chain.BalanceAt(context.Background(), common.HexToAddress(payee), nil); err != nil || got.Cmp(big.NewInt(amount*fits)) != 0 {
		t.Fatalf("the payee received %s, want exactly the budget %s (%v)", got, budget, err)
	}
	if b := clients[1].do("GET", "/api/budget", apiKey(keys[1]), nil).must(t, 200); !strings.Contains(b.raw, `"remaining":"0"`) {
		t.Fatalf("budget after executing: %s", b.raw)
	}
	if r := clients[2].do("POST", "/api/prepare_transaction", apiKey(keys[2]), map[string]string{"type": "native", "to_address": payee, "amount": fmt.Sprint(amount)}).must(t, 202); r.str("status") != "pending" || r.str("decision") != "human" {
		t.Fatalf("a prepare past the spent budget: %s", r.raw)
	}
}

// TestLoadSpendOnReplicas runs `countersign load --mode spend` against
// three replicas on one PostgreSQL and one geth --dev node, funding from
// geth's unlocked account (--fund-rpc): the benchmark tool works on the
// setup BENCHMARKS.md measures, spreads its requests over the replicas,
// and every transaction it executed is confirmed with no error.
func TestLoadSpendOnReplicas(t *testing.T) {
	gethURL := startGeth(t)
	replicas := startReplicas(t, 3, pgtest.Start(t), gethURL)
	urls := make([]string, len(replicas))
	for i, r := range replicas {
		urls[i] = r.url
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"load", "--mode", "spend", "--url", strings.Join(urls, ","), "--fund-rpc", gethURL,
		"--connections", "6", "--wallets", "3", "--duration", "2s", "--json"}, func(string) string { return "" }, &out, &errb)
	if err != nil {
		t.Fatalf("load: %v\n%s\n%s", err, out.String(), errb.String())
	}
	var rep spendReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report %q: %v", out.String(), err)
	}
	if rep.Executed == 0 || rep.Errors != 0 || rep.Confirmed != rep.Executed || len(rep.PerURLExecute) != 3 {
		t.Fatalf("report: %s", out.String())
	}
	for i, n := range rep.PerURLExecute {
		if n == 0 {
			t.Fatalf("no execute went to replica %d: %s", i, out.String())
		}
	}
	t.Logf("%d transactions executed, %.1f/s, on 3 replicas", rep.Executed, rep.Rate)
}
