package main

import (
	"sync"
	"testing"
)

// TestSecurity_EmailCodeLimitHoldsUnderConcurrency: twenty login-code
// requests for one address at once send at most the hourly allowance (5),
// each further one 429. On the old code the count of sent codes and the
// new code were two statements, so concurrent starts all read a count
// under the limit and every one was sent: each new code is five more
// guesses at the address's login.
func TestSecurity_EmailCodeLimitHoldsUnderConcurrency(t *testing.T) {
	sink := newSMTPSink(t)
	e := newEnv(t, func(c *Config) { c.SMTPAddr, c.SMTPFrom = sink.ln.Addr().String(), "login@countersign.test" })
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("POST", "/v1/auth/email/start", anon, map[string]string{"email": "race@example.com"})
			mu.Lock()
			codes[r.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[202] > 5 || codes[202]+codes[429] != 20 {
		t.Fatalf("answers %v: want at most 5 × 202 and the rest 429", codes)
	}
	sink.mu.Lock()
	sent := len(sink.msgs)
	sink.mu.Unlock()
	if sent > 5 {
		t.Fatalf("%d codes mailed to one address at once, want at most 5", sent)
	}
}
