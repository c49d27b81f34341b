package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkPrepare is prepare_transaction over HTTP on the embedded chain
// with no policy (every request waits for a human, as before policies),
// and BenchmarkPreparePolicyBudget the same with an agent policy whose
// budget every request reserves against, in the same store transaction
// as its row. Both report ops/s and the p99 latency of one prepare.
func BenchmarkPrepare(b *testing.B) { benchPrepare(b, "") }

func BenchmarkPreparePolicyBudget(b *testing.B) {
	benchPrepare(b, `{"rules":[{"id":"capped","when":{"kind":["native"]},"then":"human",
	  "budget":{"max":"1000000000000000000000000","window":"24h"},"overflow":"deny"}]}`)
}

func benchPrepare(b *testing.B, policy string) {
	e := newEnv(b, longSessions)
	u := e.newUser(true)
	r := e.do("POST", "/api/create_wallet", bearer(u.token), map[string]string{"password": u.password}).must(b, 201)
	agentID, key := e.createAgent(u, r.str("address"))
	if policy != "" {
		body := strings.Replace(policy, "{", fmt.Sprintf(`{"mfa_code":%q,`, e.code(u)), 1)
		e.do("PUT", "/api/agents/"+agentID+"/policy", bearer(u.token), body).must(b, 200)
	}
	agent := apiKey(key)
	to := randomAddress()
	lat := make([]time.Duration, 0, 1024)
	b.ResetTimer()
	start, wall := processCPU(), time.Now()
	for b.Loop() {
		t0 := time.Now()
		res := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": to, "amount": "1"}).must(b, 202)
		lat = append(lat, time.Since(t0))
		if policy != "" && res.str("rule_id") != "capped" {
			b.Fatalf("the policy did not decide: %s", res.raw)
		}
	}
	b.StopTimer()
	elapsed := time.Since(wall)
	reportCPU(b, start, 1)
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
