package main

import (
	"context"
	"fmt"
	"io"
	neturl "net/url"
	"sync"
	"time"

	"github.com/countersign/countersign/auth"
)

// The flow scenario: the countersigned spend as a human and an agent make
// it, one user (and wallet and agent) per connection. A TOTP code is
// accepted once per 30-second step and user, so after the first two or
// three flows of a user the next one waits for the clock; that wait is
// reported as its own stage and left out of the others, which are where
// the time of a spend goes: prepare, authorize, execute, confirm (the
// receipt tracker seeing the block on the embedded chain).

var flowStages = []string{"prepare", "authorize", "execute", "confirm", "spend", "totp-wait"}

func runFlowScenario(ctx context.Context, o *benchOpts, res *benchResult, stderr io.Writer) error {
	res.Request = "prepare → authorize (TOTP) → execute → confirmed"
	agents, err := benchAgents(ctx, o, "flow", stderr)
	if err != nil {
		return err
	}
	defer func() {
		for _, a := range agents {
			clear(a.secret)
		}
	}()
	if o.flowSettle > 0 {
		time.Sleep(o.flowSettle)
	}
	c := benchSpendClient(o)
	bc := &benchCounters{res: res}
	stages := make([]map[string][]time.Duration, o.conns)
	sampler := startSampler(o.pid)
	start := time.Now()
	deadline := start.Add(o.dur)
	stopProgress := progress(o, "flow", start, &bc.ok, &bc.failed, stderr)
	var wg sync.WaitGroup
	for i := range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stages[i] = flowWorker(ctx, c, agents[i], deadline, bc)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	res.Requests, res.Errors = bc.ok.Load(), bc.failed.Load()
	res.Server = sampler.stop(res.Requests)
	res.Stages = map[string]benchStage{}
	for _, k := range flowStages {
		var all []time.Duration
		for _, s := range stages {
			all = append(all, s[k]...)
		}
		res.Stages[k] = stageOf(all)
	}
	var spends []time.Duration
	for _, s := range stages {
		spends = append(spends, s["spend"]...)
	}
	fillLatency(res, spends, elapsed)
	res.Note = "one request is one whole spend (4 HTTP calls and a long poll); server CPU per request is per spend, and includes the embedded chain mining its block"
	return nil
}

// flowWorker makes spends as agent a (and its human) until the deadline.
func flowWorker(ctx context.Context, c *spendClient, a *spendAgent, deadline time.Time, bc *benchCounters) map[string][]time.Duration {
	st := map[string][]time.Duration{}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		t0 := time.Now()
		var p struct {
			ID     string `json:"transaction_id"`
			Status string `json:"status"`
		}
		if err := c.call(ctx, 0, "POST", "/api/prepare_transaction", "", a.key, map[string]string{"type": "native", "to_address": benchPayee, "amount": "1"}, &p, 202); err != nil {
			bc.fail(err)
			return st
		}
		if p.Status != "pending" {
			bc.fail(fmt.Errorf("prepare answered %s, not pending (the wallet has a policy?)", p.Status))
			return st
		}
		t1 := time.Now()
		code, ok := flowCode(ctx, &a.steps, a.secret, deadline)
		if !ok {
			// the run ends before the next code: leave the request to expire
			return st
		}
		t2 := time.Now()
		if err := c.call(ctx, 0, "POST", "/api/authorize_transaction", a.token, "", map[string]string{"transaction_id": p.ID, "mfa_code": code}, nil, 200); err != nil {
			bc.fail(err)
			return st
		}
		t3 := time.Now()
		if err := c.call(ctx, 0, "POST", "/api/execute_transaction", "", a.key, map[string]string{"transaction_id": p.ID}, nil, 201); err != nil {
			bc.fail(err)
			return st
		}
		t4 := time.Now()
		for {
			var s struct {
				Status string `json:"status"`
				Error  string `json:"error"`
			}
			if err := c.call(ctx, 0, "GET", "/api/transaction_status?transaction_id="+neturl.QueryEscape(p.ID)+"&wait=10s", "", a.key, nil, &s, 200); err != nil {
				bc.fail(err)
				return st
			}
			if s.Status == "confirmed" {
				break
			}
			if s.Status != "submitted" {
				bc.fail(fmt.Errorf("transaction %s ended %s: %s", p.ID, s.Status, s.Error))
				return st
			}
		}
		t5 := time.Now()
		st["prepare"] = append(st["prepare"], t1.Sub(t0))
		st["totp-wait"] = append(st["totp-wait"], t2.Sub(t1))
		st["authorize"] = append(st["authorize"], t3.Sub(t2))
		st["execute"] = append(st["execute"], t4.Sub(t3))
		st["confirm"] = append(st["confirm"], t5.Sub(t4))
		st["spend"] = append(st["spend"], t5.Sub(t0)-t2.Sub(t1))
		bc.ok.Add(1)
	}
	return st
}

// flowCode is the next unused TOTP code of the sequence, waiting for the
// clock when the ±1 step window is used up; false when that wait would
// pass the deadline.
func flowCode(ctx context.Context, z *totpSeq, secret []byte, deadline time.Time) (string, bool) {
	for {
		now := totpNow().Unix()
		cur := now / auth.TOTPPeriod
		step := max(z.last+1, cur-1)
		if step == cur-1 && now%auth.TOTPPeriod >= auth.TOTPPeriod-2 {
			step = cur
		}
		if step <= cur+1 {
			z.last = step
			return auth.TOTPCode(secret, time.Unix(step*auth.TOTPPeriod, 0)), true
		}
		wait := time.Unix((step-1)*auth.TOTPPeriod, 0).Sub(totpNow()) // until step enters the window
		if wait > time.Until(deadline) {
			return "", false
		}
		select {
		case <-ctx.Done():
			return "", false
		case <-time.After(wait + 50*time.Millisecond):
		}
	}
}
