package core

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/policy"
)

// setPolicy stores doc as the policy of (level, subject) the way the PUT
// route does after its MFA check.
func (l *lifecycle) setPolicy(level countersign.PolicyLevel, subject, doc string) {
	l.t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		l.t.Fatal(err)
	}
	if _, err := l.svc.applyPolicy(l.ctx, level, subject, l.user.ID, p, "user:"+l.user.ID, true); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lifecycle) prepareAs(p *Principal, req *PrepareRequest) (*countersign.Transaction, error) {
	return l.svc.Prepare(l.ctx, p, req, "")
}

func (l *lifecycle) native(amount string) *PrepareRequest {
	return &PrepareRequest{Type: "native", ToAddress: randomAddr(), Amount: amount}
}

func (l *lifecycle) used(level countersign.PolicyLevel, subject, rule string) (spent, reserved string) {
	l.t.Helper()
	sp, rs, err := l.svc.store.BudgetUsed(l.ctx, countersign.BudgetKey{Level: level, Subject: subject, RuleID: rule, Asset: "native"}, l.clock.Now().Add(-24*time.Hour))
	if err != nil {
		l.t.Fatal(err)
	}
	return sp.String(), rs.String()
}

func (l *lifecycle) newAgent() *Principal {
	l.t.Helper()
	a := &countersign.Agent{ID: uuid.NewString(), OwnerID: l.user.ID, Name: "agent", WalletID: l.wallet.ID, KeyHash: []byte(uuid.NewString()), KeyPrefix: "cs_", CreatedAt: l.clock.Now()}
	if err := l.svc.store.CreateAgent(l.ctx, a); err != nil {
		l.t.Fatal(err)
	}
	return &Principal{User: l.user, Agent: a}
}

func TestPolicy_NoPolicyIsTodaysHuman(t *testing.T) {
	l := newLifecycle(t)
	tx := l.prepare()
	if tx.Status != countersign.StatusPending || tx.Decision != "human" || tx.RuleID != "" || tx.ApprovalsNeeded != 0 || !tx.AuthorizeAt.IsZero() {
		t.Fatalf("without a policy: %+v", tx)
	}
	l.wantTrail(tx.ID, []string{"transaction.prepare"}, []string{"transaction.pending"})
	if d := l.detailsOf(tx.ID, "transaction.prepare"); strings.Contains(d, "decision") {
		t.Fatalf("no-policy audit details changed: %s", d)
	}
}

func TestMoney_PolicyAutoWithinBudgetThenHuman(t *testing.T) {
	l := newLifecycle(t)
	l.fund(l.wallet.Address, eth(1))
	l.setPolicy(countersign.PolicyAgent, l.agent.Agent.ID, `{"rules":[{"id":"small","when":{"kind":["native"],"max_amount":"1000"},"then":"auto","budget":{"max":"2500","window":"24h"}}]}`)
	subject := "agent:" + l.agent.Agent.ID
	var auto []*countersign.Transaction
	for range 2 {
		tx, err := l.prepareAs(l.agent, l.native("1000"))
		if err != nil {
			t.Fatal(err)
		}
		if tx.Status != countersign.StatusAuthorized || tx.Decision != "auto" || tx.RuleID != "small" || tx.DecidedBy != "policy:small" {
			t.Fatalf("within budget: %+v", tx)
		}
		auto = append(auto, tx)
	}
	l.wantTrail(auto[0].ID, []string{"transaction.prepare", "transaction.authorize"}, []string{"transaction.pending", "transaction.authorized"})
	// Stored once, already authorized, its events still show it as
	// prepared and then as authorized, with each step's deadline.
	evs, err := l.svc.store.EventsAfter(l.ctx, l.user.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	for _, e := range evs {
		var v TxView
		if e.Subject != auto[0].ID || json.Unmarshal([]byte(e.Payload), &v) != nil {
			continue
		}
		shown = append(shown, v.Status+" until "+v.ExpiresAt.UTC().Format(time.RFC3339))
	}
	row := auto[0]
	want := []string{"pending until " + row.CreatedAt.Add(l.svc.cfg.PendingTTL).UTC().Format(time.RFC3339),
		"authorized until " + row.DecidedAt.Add(l.svc.cfg.AuthorizedTTL).UTC().Format(time.RFC3339)}
	if !slices.Equal(shown, want) || !row.ExpiresAt.Equal(row.DecidedAt.Add(l.svc.cfg.AuthorizedTTL)) {
		t.Fatalf("events show %v, want %v; the row expires %s", shown, want, row.ExpiresAt)
	}
	if _, rs := l.used(countersign.PolicyAgent, subject, "small"); rs != "2000" {
		t.Fatalf("reserved %s, want 2000", rs)
	}
	// 1000 more would pass the 2500 cap: the overflow (human) decides
	over, err := l.prepareAs(l.agent, l.native("1000"))
	if err != nil {
		t.Fatal(err)
	}
	if over.Status != countersign.StatusPending || over.Decision != "human" || over.RuleID != "small" || len(over.PolicyWarnings) == 0 ||
		!strings.Contains(over.PolicyWarnings[0], "exceed the budget") {
		t.Fatalf("over budget: %+v", over)
	}
	// 500 still fits exactly (equal fits)
	fits, err := l.prepareAs(l.agent, l.native("500"))
	if err != nil || fits.Status != countersign.StatusAuthorized {
		t.Fatalf("exact fit: %+v %v", fits, err)
	}
	// executing spends the reservation
	if _, err := l.execute(auto[0].ID); err != nil {
		t.Fatal(err)
	}
	if sp, rs := l.used(countersign.PolicyAgent, subject, "small"); sp != "1000" || rs != "1500" {
		t.Fatalf("after execute: spent %s reserved %s", sp, rs)
	}
	// the rolling window: a day later the spend no longer counts
	l.clock.Advance(24*time.Hour + time.Second)
	if sp, _ := l.used(countersign.PolicyAgent, subject, "small"); sp != "0" {
		t.Fatalf("a day later: spent %s", sp)
	}
	// and an auto-approved prepare writes its row once
	writes := &countWrites{Store: l.svc.store}
	l.svc.store = writes
	if tx, err := l.prepareAs(l.agent, l.native("1")); err != nil || tx.Status != countersign.StatusAuthorized {
		t.Fatalf("%+v %v", tx, err)
	}
	l.svc.store = writes.Store
	if writes.created != 1 || writes.updated != 0 {
		t.Fatalf("an auto-approved prepare created %d rows and updated %d, want 1 and 0", writes.created, writes.updated)
	}
}

func TestSecurity_PolicyDenyNamesTheRuleAndStoresNothing(t *testing.T) {
	l := newLifecycle(t)
	l.setPolicy(countersign.PolicyWallet, l.wallet.ID, `{"rules":[{"id":"no-burn","when":{"to":["0x0000000000000000000000000000000000000000"]},"then":"deny"}]}`)
	_, err := l.prepareAs(l.agent, &PrepareRequest{Type: "native", ToAddress: "0x0000000000000000000000000000000000000000", Amount: "1"})
	var ce *countersign.Error
	if countersign.ErrorCode(err) != countersign.PolicyDenied || !errorsAs(err, &ce) || ce.RuleID != "no-burn" || !strings.Contains(ce.Detail, "no-burn") {
		t.Fatalf("deny: %v", err)
	}
	list, _ := l.svc.Transactions(l.ctx, l.agent, countersign.TxFilter{})
	if len(list) != 0 {
		t.Fatalf("a denied request was stored: %d rows", len(list))
	}
	entries, _ := l.svc.store.AuditEntries(l.ctx, l.user.ID, 0, 100)
	found := false
	for _, e := range entries {
		found = found || (e.Action == "transaction.deny" && strings.Contains(e.Details, "no-burn"))
	}
	if !found {
		t.Fatal("no audit entry for the denial")
	}
	// another recipient is not denied
	if tx, err := l.prepareAs(l.agent, l.native("1")); err != nil || tx.Status != countersign.StatusPending || tx.RuleID != "default" {
		t.Fatalf("not denied: %+v %v", tx, err)
	}
}

func TestPolicy_DelayAuthorizesAfterItsWindowAndARejectWins(t *testing.T) {
	l := newLifecycle(t)
	l.setPolicy(countersign.PolicyAgent, l.agent.Agent.ID, `{"rules":[{"id":"cool","when":{"kind":["native"]},"then":"delay","delay":"15m"}]}`)
	a, _ := l.prepareAs(l.agent, l.native("1"))
	b, _ := l.prepareAs(l.agent, l.native("2"))
	if a.Status != countersign.StatusPending || a.Decision != "delay" || !a.AuthorizeAt.Equal(l.clock.Now().Add(15*time.Minute)) {
		t.Fatalf("delay: %+v", a)
	}
	if _, events := l.trail(a.ID); !contains(events, "delay.started") {
		t.Fatalf("no delay.started event: %v", events)
	}
	if _, err := l.decide(b.ID, Reject, "no"); err != nil {
		t.Fatal(err)
	}
	l.clock.Advance(14 * time.Minute)
	if err := l.svc.AuthorizeDelayed(l.ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.row(a.ID); got.Status != countersign.StatusPending {
		t.Fatalf("authorized before its delay: %s", got.Status)
	}
	l.clock.Advance(2 * time.Minute)
	if err := l.svc.AuthorizeDelayed(l.ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.row(a.ID); got.Status != countersign.StatusAuthorized || got.DecidedBy != "policy:cool" || !equalDigest(got.ApprovedDigest, got.Digest) {
		t.Fatalf("after the delay: %+v", got)
	}
	if got := l.row(b.ID); got.Status != countersign.StatusRejected {
		t.Fatalf("the reject inside the delay did not win: %s", got.Status)
	}
}

func TestPolicy_StricterDocumentWins(t *testing.T) {
	l := newLifecycle(t)
	l.setPolicy(countersign.PolicyAgent, l.agent.Agent.ID, `{"rules":[{"id":"free","when":{"kind":["native"]},"then":"auto","budget":{"max":"100000","window":"1h"}}]}`)
	for _, c := range []struct{ wallet, decision, rule string }{
		{`{"rules":[{"id":"slow","when":{},"then":"delay","delay":"1h"}]}`, "delay", "slow"},
		{`{"rules":[{"id":"two","when":{},"then":"quorum","quorum":2}]}`, "quorum", "two"},
		{`{"rules":[],"default":"human"}`, "human", "default"},
		{`{"rules":[{"id":"stop","when":{},"then":"deny"}]}`, "deny", "stop"},
	} {
		l.setPolicy(countersign.PolicyWallet, l.wallet.ID, c.wallet)
		sim, err := l.svc.Simulate(l.ctx, l.agent, "", l.native("10"))
		if err != nil || sim.Decision != c.decision || sim.RuleID != c.rule {
			t.Fatalf("wallet %s: %+v %v", c.wallet, sim, err)
		}
		tx, err := l.prepareAs(l.agent, l.native("10"))
		if c.decision == "deny" {
			if countersign.ErrorCode(err) != countersign.PolicyDenied {
				t.Fatalf("deny: %v", err)
			}
			continue
		}
		if err != nil || tx.Decision != c.decision || tx.RuleID != c.rule {
			t.Fatalf("wallet %s: %+v %v", c.wallet, tx, err)
		}
		if c.decision == "quorum" && tx.ApprovalsNeeded != 2 {
			t.Fatalf("quorum: approvals_needed %d", tx.ApprovalsNeeded)
		}
	}
}

// TestMoney_PolicyConcurrentPreparesNeverPassTheCap: 200 prepares from
// four agents at once against one wallet budget reserve exactly what fits,
// and cancelling restores the budget exactly.
func TestMoney_PolicyConcurrentPreparesNeverPassTheCap(t *testing.T) {
	l := newLifecycle(t)
	// human approval, capped per wallet: what does not fit is refused
	l.setPolicy(countersign.PolicyWallet, l.wallet.ID, `{"rules":[{"id":"cap","when":{"kind":["native"]},"then":"human","budget":{"max":"37000","window":"24h","scope":"wallet"},"overflow":"deny"}]}`)
	agents := []*Principal{l.agent, l.newAgent(), l.newAgent(), l.newAgent()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var kept []*countersign.Transaction
	denied := 0
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := agents[i%len(agents)]
			tx, err := l.prepareAs(p, l.native("1000"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				kept = append(kept, tx)
			case countersign.ErrorCode(err) == countersign.PolicyDenied:
				denied++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(kept) != 37 || denied != 163 {
		t.Fatalf("%d kept, %d denied; want 37 and 163", len(kept), denied)
	}
	subject := "wallet:" + l.wallet.ID
	if _, rs := l.used(countersign.PolicyWallet, subject, "cap"); rs != "37000" {
		t.Fatalf("reserved %s", rs)
	}
	byID := map[string]*Principal{}
	for _, p := range agents {
		byID[p.Agent.ID] = p
	}
	for _, tx := range kept {
		if _, err := l.svc.Cancel(l.ctx, byID[tx.AgentID], tx.ID); err != nil {
			t.Fatal(err)
		}
	}
	if sp, rs := l.used(countersign.PolicyWallet, subject, "cap"); sp != "0" || rs != "0" {
		t.Fatalf("after cancelling: spent %s reserved %s", sp, rs)
	}
}

func TestMoney_PolicyReleasesOnRejectAndExpiry(t *testing.T) {
	l := newLifecycle(t)
	l.setPolicy(countersign.PolicyAgent, l.agent.Agent.ID, `{"rules":[{"id":"cap","when":{"kind":["native"]},"then":"human","budget":{"max":"5000","window":"24h"},"overflow":"deny"}]}`)
	a, _ := l.prepareAs(l.agent, l.native("2000"))
	l.clock.Advance(time.Hour)
	b, _ := l.prepareAs(l.agent, l.native("3000"))
	subject := "agent:" + l.agent.Agent.ID
	if _, rs := l.used(countersign.PolicyAgent, subject, "cap"); rs != "5000" {
		t.Fatalf("reserved %s", rs)
	}
	if _, err := l.prepareAs(l.agent, l.native("1")); countersign.ErrorCode(err) != countersign.PolicyDenied {
		t.Fatalf("full budget: %v", err)
	}
	if _, err := l.decide(a.ID, Reject, ""); err != nil {
		t.Fatal(err)
	}
	if _, rs := l.used(countersign.PolicyAgent, subject, "cap"); rs != "3000" {
		t.Fatalf("after reject: reserved %s", rs)
	}
	l.clock.Advance(24 * time.Hour)
	if err := l.svc.ExpirePending(l.ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.row(b.ID); got.Status != countersign.StatusExpired {
		t.Fatalf("b: %s", got.Status)
	}
	if sp, rs := l.used(countersign.PolicyAgent, subject, "cap"); sp != "0" || rs != "0" {
		t.Fatalf("after expiry: spent %s reserved %s", sp, rs)
	}
}

func TestPolicy_DryRunEqualsTheRealOutcome(t *testing.T) {
	l := newLifecycle(t)
	l.setPolicy(countersign.PolicyAgent, l.agent.Agent.ID, `{"rules":[
	 {"id":"no-burn","when":{"to":["0x0000000000000000000000000000000000000000"]},"then":"deny"},
	 {"id":"tiny","when":{"kind":["native"],"max_amount":"100"},"then":"auto","budget":{"max":"250","window":"24h"}},
	 {"id":"big","when":{"kind":["native"],"min_amount":"1000000"},"then":"quorum","quorum":2},
	 {"id":"sign","when":{"kind":["personal_sign"]},"then":"auto"}
	]}`)
	reqs := []*PrepareRequest{
		{Type: "native", ToAddress: "0x0000000000000000000000000000000000000000", Amount: "1"},
		l.native("100"), l.native("100"), l.native("100"), // the third overflows
		l.native("5000"), l.native("2000000"),
		{Type: "personal_sign", Message: json.RawMessage(`"hello"`)},
	}
	want := []string{"deny/no-burn", "auto/tiny", "auto/tiny", "human/tiny", "human/default", "quorum/big", "auto/sign"}
	for i, req := range reqs {
		sim, err := l.svc.Simulate(l.ctx, l.agent, "", req)
		if err != nil {
			t.Fatal(err)
		}
		got := sim.Decision + "/" + sim.RuleID
		tx, err := l.prepareAs(l.agent, req)
		real := ""
		switch {
		case countersign.ErrorCode(err) == countersign.PolicyDenied:
			real = "deny/" + errRule(err)
		case err != nil:
			t.Fatal(err)
		default:
			real = tx.Decision + "/" + tx.RuleID
		}
		if got != real || got != want[i] {
			t.Fatalf("request %d: dry run %s, real %s, want %s", i, got, real, want[i])
		}
	}
	// the owner's dry run for the agent answers the same
	if sim, err := l.svc.Simulate(l.ctx, l.human, l.agent.Agent.ID, l.native("100")); err != nil || sim.Decision != "human" || sim.Budget == nil || sim.Budget.Remaining != "50" {
		t.Fatalf("owner dry run: %+v %v", sim, err)
	}
	// and another owner's agent id is not found
	other := &Principal{User: &countersign.User{ID: "someone-else"}}
	if _, err := l.svc.Simulate(l.ctx, other, l.agent.Agent.ID, l.native("1")); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("other owner: %v", err)
	}
}

func TestPolicy_TypedDataPermitIsValuedLikeATransfer(t *testing.T) {
	l := newLifecycle(t)
	token := "0x1111111111111111111111111111111111111111"
	l.setPolicy(countersign.PolicyAgent, l.agent.Agent.ID, fmt.Sprintf(`{"rules":[
	 {"id":"small-permits","when":{"kind":["typed_data"],"asset":%q,"max_amount":"1000"},"then":"auto","budget":{"max":"5000","window":"24h"}}]}`, token))
	permit := func(value string) *PrepareRequest {
		msg := fmt.Sprintf(`{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
		 "Permit":[{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]},
		 "primaryType":"Permit","domain":{"name":"T","chainId":"%d","verifyingContract":%q},
		 "message":{"owner":%q,"spender":"0x2222222222222222222222222222222222222222","value":"%s","nonce":"0","deadline":"99999999999"}}`,
			l.svc.chainID.Int64(), token, l.wallet.Address, value)
		return &PrepareRequest{Type: "typed_data", Message: json.RawMessage(msg)}
	}
	tx, err := l.prepareAs(l.agent, permit("900"))
	if err != nil || tx.Decision != "auto" || tx.RuleID != "small-permits" {
		t.Fatalf("small permit: %+v %v", tx, err)
	}
	tx, err = l.prepareAs(l.agent, permit("115792089237316195423570985008687907853269984665640564039457584007913129639935"))
	if err != nil || tx.Decision != "human" {
		t.Fatalf("unlimited permit: %+v %v", tx, err)
	}
}

func TestSecurity_PolicyBadDocumentChangesNothing(t *testing.T) {
	l := newLifecycle(t)
	good := `{"rules":[{"id":"a","when":{},"then":"human"}]}`
	if _, err := l.svc.SetPolicy(l.ctx, l.human, countersign.PolicyAgent, l.agent.Agent.ID, []byte(good), l.code()); err != nil {
		t.Fatal(err)
	}
	before, _ := l.svc.Policy(l.ctx, l.human, countersign.PolicyAgent, l.agent.Agent.ID)
	for doc, field := range map[string]string{
		`{"rules":[{"id":"a","when":{},"then":"auto","budget":{"max":"1","window":"0h"}}]}`: "rules[0].budget.window",
		`{"rules":[{"id":"a","when":{"colour":"red"},"then":"human"}]}`:                     "rules[0].when.colour",
		`{"rules":[{"id":"a","when":{"min_amount":"-1"},"then":"human"}]}`:                  "rules[0].when.min_amount",
		`{"rules":[{"id":"a","when":{"max_amount":"1.5"},"then":"human"}]}`:                 "rules[0].when.max_amount",
		`{"rules":[],"extra":1}`: "extra",
		`{"rules":[{"id":"a","then":"auto","budget":{"max":"1","window":"400d"},"when":{}}]}`: "rules[0].budget.window",
	} {
		code := l.code()
		_, err := l.svc.SetPolicy(l.ctx, l.human, countersign.PolicyAgent, l.agent.Agent.ID, []byte(doc), code)
		if countersign.ErrorCode(err) != countersign.BadRequest || !strings.HasPrefix(countersign.ErrorDetail(err), field) {
			t.Fatalf("%s: %v (want a 400 naming %s)", doc, err, field)
		}
		// the code was not spent on a refused document
		if err := l.svc.VerifyMFA(l.ctx, l.user.ID, code); err != nil {
			t.Fatalf("a refused document burnt the code: %v", err)
		}
	}
	after, _ := l.svc.Policy(l.ctx, l.human, countersign.PolicyAgent, l.agent.Agent.ID)
	if after.Hash != before.Hash {
		t.Fatal("a refused document changed the policy")
	}
	// another owner cannot reach it (that agents cannot change a policy
	// is the routes' rule, UserMFA: TestAuthorizationMatrix)
	other := &Principal{User: &countersign.User{ID: "someone-else"}}
	if _, err := l.svc.Policy(l.ctx, other, countersign.PolicyWallet, l.wallet.ID); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("other owner read: %v", err)
	}
	// the change is audited with both hashes
	if d := l.detailsOf(l.agent.Agent.ID, "policy.change"); !strings.Contains(d, before.Hash) {
		t.Fatalf("audit details: %s", d)
	}
}

func TestSecurity_PolicyCorruptStoredDocumentFailsClosedToHuman(t *testing.T) {
	l := newLifecycle(t)
	p, _ := policy.Parse([]byte(`{"rules":[{"id":"free","when":{},"then":"auto"}]}`))
	// a document whose hash does not match (edited in the database)
	if err := l.svc.store.PutPolicy(l.ctx, &countersign.PolicyRecord{Level: countersign.PolicyAgent, SubjectID: l.agent.Agent.ID, OwnerID: l.user.ID,
		Document: string(p.Marshal()), Hash: strings.Repeat("0", 64), UpdatedAt: l.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	tx, err := l.prepareAs(l.agent, &PrepareRequest{Type: "personal_sign", Message: json.RawMessage(`"hi"`)})
	if err != nil || tx.Status != countersign.StatusPending || tx.Decision != "human" || len(tx.PolicyWarnings) == 0 {
		t.Fatalf("corrupt policy: %+v %v", tx, err)
	}
}

func TestPolicy_BudgetLowEvent(t *testing.T) {
	l := newLifecycle(t)
	l.setPolicy(countersign.PolicyAgent, l.agent.Agent.ID, `{"rules":[{"id":"b","when":{"kind":["native"]},"then":"human","budget":{"max":"1000","window":"24h"}}]}`)
	a, _ := l.prepareAs(l.agent, l.native("850"))
	b, _ := l.prepareAs(l.agent, l.native("100")) // remaining 150 → 50: below 10%
	c, _ := l.prepareAs(l.agent, l.native("10"))  // already below: no second event
	evs, _ := l.svc.store.EventsAfter(l.ctx, l.user.ID, 0, 1000)
	low := 0
	for _, e := range evs {
		if e.Type == "budget.low" {
			low++
			if !strings.Contains(e.Payload, b.ID) {
				t.Fatalf("budget.low for the wrong request: %s", e.Payload)
			}
		}
	}
	if low != 1 || a == nil || c == nil {
		t.Fatalf("%d budget.low events", low)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func errorsAs(err error, target **countersign.Error) bool {
	e, ok := err.(*countersign.Error)
	if ok {
		*target = e
	}
	return ok
}

func errRule(err error) string {
	var ce *countersign.Error
	if errorsAs(err, &ce) {
		return ce.RuleID
	}
	return ""
}

// countWrites counts the transaction rows written.
type countWrites struct {
	countersign.Store
	created, updated int
}

func (s *countWrites) CreateTransaction(ctx context.Context, t *countersign.Transaction) error {
	s.created++
	return s.Store.CreateTransaction(ctx, t)
}

func (s *countWrites) UpdateTransaction(ctx context.Context, t *countersign.Transaction) error {
	s.updated++
	return s.Store.UpdateTransaction(ctx, t)
}
