package core

import (
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
)

// The countersigned transaction lifecycle in-package, on the simulated
// chain (money_harness_test.go): every path a request can take, with the
// audit entries and events each step must leave, so a change to a service
// is caught here and not only end to end.

// lifecycle is a moneyEnv whose user has MFA on, so it can decide.
type lifecycle struct {
	*moneyEnv
	human  *Principal
	secret []byte
}

func newLifecycle(t *testing.T) *lifecycle {
	t.Helper()
	e := newMoneyEnv(t, MoneyConfig{})
	secret, err := auth.NewTOTPSecret()
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.svc.store.UserByID(e.ctx, e.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.MFASealed, err = e.svc.sealer.Seal("mfa:"+u.ID, secret); err != nil {
		t.Fatal(err)
	}
	u.MFAEnabled = true
	if err := e.svc.store.UpdateUserMFA(e.ctx, u); err != nil {
		t.Fatal(err)
	}
	return &lifecycle{moneyEnv: e, human: &Principal{User: u}, secret: secret}
}

// code is a fresh TOTP code: each is accepted once, so the clock moves on
// a step first.
func (l *lifecycle) code() string {
	l.clock.Advance(auth.TOTPPeriod * time.Second)
	return auth.TOTPCode(l.secret, l.clock.Now())
}

func (l *lifecycle) prepare() *countersign.Transaction {
	l.t.Helper()
	t, err := l.svc.Prepare(l.ctx, l.agent, &PrepareRequest{Type: "native", ToAddress: randomAddr(), Amount: "1000"}, "")
	if err != nil {
		l.t.Fatal(err)
	}
	return t
}

func (l *lifecycle) decide(id string, d Decision, reason string) ([]*countersign.Transaction, error) {
	return l.svc.Authorize(l.ctx, l.human, []string{id}, l.code(), d, reason)
}

// trail is the subject's audit actions and event types, oldest first.
func (l *lifecycle) trail(id string) (actions, events []string) {
	l.t.Helper()
	entries, err := l.svc.store.AuditEntries(l.ctx, l.user.ID, 0, 1000)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Subject == id {
			actions = append(actions, e.Action)
		}
	}
	evs, err := l.svc.store.EventsAfter(l.ctx, l.user.ID, 0, 1000)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, e := range evs {
		if e.Subject == id {
			events = append(events, e.Type)
		}
	}
	if _, err := VerifyAudit(l.ctx, l.svc.store); err != nil {
		l.t.Fatal(err)
	}
	return actions, events
}

func (l *lifecycle) wantTrail(id string, actions, events []string) {
	l.t.Helper()
	a, e := l.trail(id)
	if !slices.Equal(a, actions) || !slices.Equal(e, events) {
		l.t.Fatalf("audit %v, events %v; want audit %v, events %v", a, e, actions, events)
	}
}

// detailsOf is the audit details of the subject's entry with action.
func (l *lifecycle) detailsOf(id, action string) string {
	l.t.Helper()
	entries, _ := l.svc.store.AuditEntries(l.ctx, l.user.ID, 0, 1000)
	for _, e := range entries {
		if e.Subject == id && e.Action == action {
			return e.Details
		}
	}
	l.t.Fatalf("no %s entry for %s", action, id)
	return ""
}

func TestTransactionLifecycle(t *testing.T) {
	t.Run("ok/prepare-authorize-execute-confirmed", func(t *testing.T) {
		l := newLifecycle(t)
		l.fund(l.wallet.Address, eth(1))
		tx := l.prepare()
		if tx.Status != countersign.StatusPending {
			t.Fatalf("prepared: %s", tx.Status)
		}
		if got, want := l.detailsOf(tx.ID, "transaction.prepare"), `{"amount":"1000","digest":"`+hex.EncodeToString(tx.Digest)+`","to":"`+tx.To+`","token":"","type":"native"}`; got != want {
			t.Fatalf("prepare details %s, want %s", got, want)
		}
		if _, err := l.execute(tx.ID); countersign.ErrorCode(err) != countersign.NotAuthorized {
			t.Fatalf("executed before a human approved: %v", err)
		}
		out, err := l.decide(tx.ID, Approve, "")
		if err != nil || len(out) != 1 || out[0].Status != countersign.StatusAuthorized {
			t.Fatalf("authorize: %v %v", out, err)
		}
		done, err := l.execute(tx.ID)
		if err != nil || done.Status != countersign.StatusSubmitted || done.TxHash == "" {
			t.Fatalf("execute: %+v %v", done, err)
		}
		again, err := l.execute(tx.ID)
		if err != nil || again.TxHash != done.TxHash {
			t.Fatalf("a second execute: %+v %v (exactly once)", again, err)
		}
		l.track(tx.ID, countersign.StatusConfirmed)
		l.wantTrail(tx.ID,
			[]string{"transaction.prepare", "transaction.authorize", "transaction.execute", "transaction.confirmed"},
			[]string{"transaction.pending", "transaction.authorized", "transaction.submitted", "transaction.confirmed"})
	})
	t.Run("ok/rejected", func(t *testing.T) {
		l := newLifecycle(t)
		tx := l.prepare()
		out, err := l.decide(tx.ID, Reject, "not this one")
		if err != nil || out[0].Status != countersign.StatusRejected {
			t.Fatalf("reject: %v %v", out, err)
		}
		if got, want := l.detailsOf(tx.ID, "transaction.reject"), `{"digest":"`+hex.EncodeToString(tx.Digest)+`","reason":"not this one"}`; got != want {
			t.Fatalf("reject details %s, want %s", got, want)
		}
		if _, err := l.execute(tx.ID); countersign.ErrorCode(err) != countersign.NotAuthorized {
			t.Fatalf("a rejected transaction executed: %v", err)
		}
		if _, err := l.decide(tx.ID, Approve, ""); err == nil {
			t.Fatal("a rejected transaction was approved afterwards")
		}
		l.wantTrail(tx.ID, []string{"transaction.prepare", "transaction.reject"}, []string{"transaction.pending", "transaction.rejected"})
	})
	t.Run("ok/cancelled", func(t *testing.T) {
		l := newLifecycle(t)
		tx := l.prepare()
		c, err := l.svc.Cancel(l.ctx, l.agent, tx.ID)
		if err != nil || c.Status != countersign.StatusCancelled {
			t.Fatalf("cancel: %+v %v", c, err)
		}
		if got := l.detailsOf(tx.ID, "transaction.cancel"); got != `{}` {
			t.Fatalf("cancel details %s", got)
		}
		if _, err := l.svc.Cancel(l.ctx, l.agent, tx.ID); countersign.ErrorCode(err) != countersign.Conflict {
			t.Fatalf("cancelled twice: %v", err)
		}
		if _, err := l.decide(tx.ID, Approve, ""); err == nil {
			t.Fatal("a cancelled transaction was approved")
		}
		l.wantTrail(tx.ID, []string{"transaction.prepare", "transaction.cancel"}, []string{"transaction.pending", "transaction.cancelled"})
	})
	t.Run("ok/expired", func(t *testing.T) {
		l := newLifecycle(t)
		tx := l.prepare()
		l.clock.Advance(l.svc.cfg.PendingTTL + time.Second)
		if err := l.svc.ExpirePending(l.ctx); err != nil {
			t.Fatal(err)
		}
		if r := l.row(tx.ID); r.Status != countersign.StatusExpired {
			t.Fatalf("after the window: %s", r.Status)
		}
		if got, want := l.detailsOf(tx.ID, "transaction.expire"), `{"expires_at":"`+tx.ExpiresAt.Format(time.RFC3339)+`"}`; got != want {
			t.Fatalf("expire details %s, want %s", got, want)
		}
		if _, err := l.decide(tx.ID, Approve, ""); err == nil {
			t.Fatal("an expired transaction was approved")
		}
		if _, err := l.execute(tx.ID); countersign.ErrorCode(err) != countersign.NotAuthorized {
			t.Fatalf("an expired transaction executed: %v", err)
		}
		l.wantTrail(tx.ID, []string{"transaction.prepare", "transaction.expire"}, []string{"transaction.pending", "transaction.expired"})
	})
	t.Run("fail/wrong-code-changes-nothing", func(t *testing.T) {
		l := newLifecycle(t)
		tx := l.prepare()
		wrong := "000000"
		if _, ok := auth.VerifyTOTP(l.secret, wrong, l.clock.Now(), 0); ok {
			wrong = "111111" // the one-in-a-million chance that 000000 is right
		}
		if _, err := l.svc.Authorize(l.ctx, l.human, []string{tx.ID}, wrong, Approve, ""); err == nil {
			t.Fatal("approved with a wrong code")
		}
		if r := l.row(tx.ID); r.Status != countersign.StatusPending {
			t.Fatalf("after a wrong code: %s", r.Status)
		}
		l.wantTrail(tx.ID, []string{"transaction.prepare"}, []string{"transaction.pending"})
		// the failure itself is audited, on the user's chain
		entries, _ := l.svc.store.AuditEntries(l.ctx, l.user.ID, 0, 100)
		if last := entries[len(entries)-1]; last.Action != "mfa.failure" || last.Details != `{"failures":1}` {
			t.Fatalf("last entry %+v, want the mfa.failure", last)
		}
	})
}
