package storetest

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// The coordination state replicas share (countersign.CoordinationStore):
// attempt windows, token buckets, leases and webhook delivery claims. The
// concurrency cases are what several replicas would do at once: a bug that
// reads then writes without a lock lets more than the limit through.

func runLimits(t *testing.T, open func(t *testing.T) countersign.Store) {
	for name, fn := range map[string]func(*testing.T, countersign.Store){
		"limits/attempt windows": testAttemptWindows,
		"limits/token bucket":    testTokenBucket,
		"limits/leases":          testLeases,
		"limits/delivery claims": testDeliveryClaims,
		"limits/TestSecurity_ConcurrentAttemptsMeetOneLimit": testConcurrentAttempts,
		"limits/TestSecurity_ConcurrentTokensMeetOneBucket":  testConcurrentTokens,
		"limits/TestSecurity_ConcurrentLeaseOneHolder":       testConcurrentLease,
		"limits/TestSecurity_ConcurrentClaimsDeliverOnce":    testConcurrentClaims,
	} {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
}

func testAttemptWindows(t *testing.T, s countersign.Store) {
	now := time.Unix(1700000000, 0)
	const window = 15 * time.Minute
	keys := func(pair string) []countersign.LimitKey {
		return []countersign.LimitKey{{Key: "pair:" + pair, Max: 2}, {Key: "user:alice", Max: 3}}
	}
	count := func(pair string, at time.Time) time.Duration {
		t.Helper()
		w, err := s.CountAttempt(ctx, keys(pair), window, at)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	for i := range 2 {
		if w := count("a", now); w != 0 {
			t.Fatalf("attempt %d refused (%v)", i+1, w)
		}
	}
	w := count("a", now.Add(time.Minute))
	if w != window-time.Minute {
		t.Fatalf("a third attempt of the pair: wait %v, want the rest of the window (%v)", w, window-time.Minute)
	}
	// The refusal counted nothing: the user still has one attempt left.
	if w := count("b", now); w != 0 {
		t.Fatalf("the user's third attempt refused (%v): a refused attempt was counted", w)
	}
	if w := count("c", now); w <= 0 {
		t.Fatal("the user's fourth attempt was let through")
	}
	// A refund gives an attempt back to every key named.
	if err := s.RefundAttempt(ctx, []string{"pair:b", "user:alice"}); err != nil {
		t.Fatal(err)
	}
	if w := count("c", now); w != 0 {
		t.Fatalf("after a refund: %v", w)
	}
	// Refunds never go below zero.
	for range 5 {
		if err := s.RefundAttempt(ctx, []string{"pair:z"}); err != nil {
			t.Fatal(err)
		}
	}
	// A reset forgets a key; the others stand.
	if err := s.ResetAttempts(ctx, []string{"pair:a"}); err != nil {
		t.Fatal(err)
	}
	if w, _ := s.CountAttempt(ctx, []countersign.LimitKey{{Key: "pair:a", Max: 2}}, window, now); w != 0 {
		t.Fatalf("a reset key is still limited: %v", w)
	}
	if w := count("a", now); w <= 0 {
		t.Fatal("a reset of the pair freed the user's key too")
	}
	// The window ends: everything starts again from zero.
	later := now.Add(window)
	for i := range 2 {
		if w := count("a", later); w != 0 {
			t.Fatalf("attempt %d of the next window refused (%v)", i+1, w)
		}
	}
	if w := count("a", later); w != window {
		t.Fatalf("the new window is not counted from its first attempt: wait %v", w)
	}
	// A spray of fresh keys: ended windows are pruned as new ones come,
	// and a pruned key counts from zero.
	for i := range 50 {
		if w, err := s.CountAttempt(ctx, []countersign.LimitKey{{Key: fmt.Sprintf("spray:%d", i), Max: 1}}, time.Second, now); err != nil || w != 0 {
			t.Fatalf("spray %d: %v %v", i, w, err)
		}
	}
	if w, _ := s.CountAttempt(ctx, []countersign.LimitKey{{Key: "spray:0", Max: 1}}, time.Second, now.Add(2*time.Second)); w != 0 {
		t.Fatalf("an ended window still limits: %v", w)
	}
}

func testTokenBucket(t *testing.T, s countersign.Store) {
	now := time.Unix(1700000000, 0)
	for i := range 3 {
		if w, err := s.TakeToken(ctx, "sign", 2, 3, now); err != nil || w != 0 {
			t.Fatalf("token %d of a full bucket: %v %v", i+1, w, err)
		}
	}
	w, err := s.TakeToken(ctx, "sign", 2, 3, now)
	if err != nil || w <= 0 || w > 500*time.Millisecond {
		t.Fatalf("an empty bucket (2/s): wait %v %v, want (0, 500ms]", w, err)
	}
	// refills at rate: half a second brings one token
	if w, _ := s.TakeToken(ctx, "sign", 2, 3, now.Add(500*time.Millisecond)); w != 0 {
		t.Fatalf("after half a second at 2/s: %v", w)
	}
	if w, _ := s.TakeToken(ctx, "sign", 2, 3, now.Add(500*time.Millisecond)); w <= 0 {
		t.Fatal("a refused take was counted as a token, or the refill overshot")
	}
	// never beyond burst, however long it rested
	for i := range 4 {
		w, _ := s.TakeToken(ctx, "sign", 2, 3, now.Add(time.Hour))
		if (i < 3) != (w == 0) {
			t.Fatalf("after an hour's rest, take %d: %v (burst 3)", i+1, w)
		}
	}
	// buckets are per key
	if w, _ := s.TakeToken(ctx, "other", 2, 3, now); w != 0 {
		t.Fatalf("another key's bucket: %v", w)
	}
	if _, err := s.TakeToken(ctx, "bad", 0, 3, now); code(err) != countersign.BadRequest {
		t.Fatalf("rate 0: %v", err)
	}
}

func testLeases(t *testing.T, s countersign.Store) {
	now := time.Unix(1700000000, 0)
	by, until, err := s.AcquireLease(ctx, "daemon", "A", 30*time.Second, now)
	if err != nil || by != "A" || !until.Equal(now.Add(30*time.Second)) {
		t.Fatalf("a free lease: %q %v %v", by, until, err)
	}
	if by, until, _ := s.AcquireLease(ctx, "daemon", "B", 30*time.Second, now.Add(time.Second)); by != "A" || !until.Equal(now.Add(30*time.Second)) {
		t.Fatalf("a held lease went to B: %q %v", by, until)
	}
	if by, until, _ := s.AcquireLease(ctx, "daemon", "A", 30*time.Second, now.Add(10*time.Second)); by != "A" || !until.Equal(now.Add(40*time.Second)) {
		t.Fatalf("renewal: %q %v", by, until)
	}
	if by, _, _ := s.AcquireLease(ctx, "other", "B", time.Second, now); by != "B" {
		t.Fatalf("leases are per name: %q", by)
	}
	if err := s.ReleaseLease(ctx, "daemon", "B"); err != nil {
		t.Fatal(err)
	}
	if by, _, _ := s.AcquireLease(ctx, "daemon", "B", 30*time.Second, now.Add(20*time.Second)); by != "A" {
		t.Fatalf("B released A's lease: %q", by)
	}
	// expiry hands it over
	if by, _, _ := s.AcquireLease(ctx, "daemon", "B", 30*time.Second, now.Add(40*time.Second)); by != "B" {
		t.Fatalf("an expired lease was not handed over: %q", by)
	}
	if err := s.ReleaseLease(ctx, "daemon", "B"); err != nil {
		t.Fatal(err)
	}
	if by, _, _ := s.AcquireLease(ctx, "daemon", "A", 30*time.Second, now.Add(41*time.Second)); by != "A" {
		t.Fatalf("a released lease: %q", by)
	}
	if _, _, err := s.AcquireLease(ctx, "daemon", "", time.Second, now); code(err) != countersign.BadRequest {
		t.Fatalf("no holder: %v", err)
	}
}

// addDeliveries makes webhook h1 (owner u1) with n pending deliveries due
// at base+i ms.
func addDeliveries(t *testing.T, s countersign.Store, base time.Time, n int) {
	t.Helper()
	s.CreateUser(ctx, user("u1"))
	if err := s.CreateWebhook(ctx, &countersign.Webhook{ID: "h1", OwnerID: "u1", URL: "https://x.example", Events: []string{"*"}, SecretSealed: []byte{1}, CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		at := base.Add(time.Duration(i) * time.Millisecond)
		if err := s.AddDelivery(ctx, &countersign.Delivery{ID: fmt.Sprintf("d%02d", i), WebhookID: "h1", EventID: int64(i + 1), EventType: "t", Payload: "{}", Status: countersign.DeliveryPending, NextAttemptAt: at, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
}

func deliveryIDs(ds []*countersign.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func testDeliveryClaims(t *testing.T, s countersign.Store) {
	base := time.Unix(1700000000, 0).UTC()
	addDeliveries(t, s, base, 3)
	now := base.Add(time.Second)
	lease := now.Add(time.Minute)
	a, err := s.ClaimDeliveries(ctx, "A", now, lease, 2)
	if err != nil || fmt.Sprint(deliveryIDs(a)) != "[d00 d01]" {
		t.Fatalf("A's claim, oldest first: %v %v", deliveryIDs(a), err)
	}
	if a[0].Payload != "{}" || a[0].WebhookID != "h1" || a[0].Status != countersign.DeliveryPending {
		t.Fatalf("a claimed delivery's fields: %+v", a[0])
	}
	b, _ := s.ClaimDeliveries(ctx, "B", now, lease, 10)
	if fmt.Sprint(deliveryIDs(b)) != "[d02]" {
		t.Fatalf("B's claim took A's deliveries, or missed the free one: %v", deliveryIDs(b))
	}
	if c, _ := s.ClaimDeliveries(ctx, "C", now.Add(30*time.Second), lease, 10); len(c) != 0 {
		t.Fatalf("claims in progress were claimed again: %v", deliveryIDs(c))
	}
	// B delivers d02: it is done and never claimed again.
	b[0].Status, b[0].Attempts, b[0].DeliveredAt, b[0].LastStatus = countersign.DeliveryDelivered, 1, now, 200
	if err := s.FinishDelivery(ctx, b[0], "B"); err != nil {
		t.Fatal(err)
	}
	// A fails d00: retried at its next attempt, not before, and not held
	// back by the old claim.
	a[0].Attempts, a[0].LastStatus, a[0].LastError, a[0].NextAttemptAt = 1, 500, "http_status", now.Add(2*time.Second)
	if err := s.FinishDelivery(ctx, a[0], "A"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.ClaimDeliveries(ctx, "C", now.Add(time.Second), now.Add(2*time.Minute), 10); len(c) != 0 {
		t.Fatalf("a delivery was claimed before its next attempt: %v", deliveryIDs(c))
	}
	c, _ := s.ClaimDeliveries(ctx, "C", now.Add(2*time.Second), now.Add(2*time.Minute), 10)
	if fmt.Sprint(deliveryIDs(c)) != "[d00]" || c[0].Attempts != 1 || c[0].LastError != "http_status" {
		t.Fatalf("the retry: %v", deliveryIDs(c))
	}
	// A died holding d01: its claim frees itself when the lease passes,
	// and A's late write is refused.
	d, _ := s.ClaimDeliveries(ctx, "D", lease, lease.Add(time.Minute), 10)
	if fmt.Sprint(deliveryIDs(d)) != "[d01]" {
		t.Fatalf("after A's lease: %v", deliveryIDs(d))
	}
	a[1].Status, a[1].Attempts = countersign.DeliveryDelivered, 1
	if err := s.FinishDelivery(ctx, a[1], "A"); code(err) != countersign.Conflict {
		t.Fatalf("a finish after the claim passed to D: %v", err)
	}
	if err := s.FinishDelivery(ctx, d[0], "D"); err != nil {
		t.Fatal(err)
	}
	log, _ := s.Deliveries(ctx, "h1", 10)
	for _, x := range log {
		if x.ID == "d01" && (x.Status != countersign.DeliveryPending || x.Attempts != 0) {
			t.Fatalf("A's refused finish was written: %+v", x)
		}
		if x.ID == "d02" && (x.Status != countersign.DeliveryDelivered || x.LastStatus != 200) {
			t.Fatalf("B's finish: %+v", x)
		}
	}
	if _, err := s.ClaimDeliveries(ctx, "", now, lease, 1); code(err) != countersign.BadRequest {
		t.Fatalf("a claim without a holder: %v", err)
	}
}

// testConcurrentAttempts: workers attempts on one key of max 5 at once
// (several replicas' logins for one account): exactly 5 get through.
func testConcurrentAttempts(t *testing.T, s countersign.Store) {
	now := time.Unix(1700000000, 0)
	var mu sync.Mutex
	allowed := 0
	var firstErr error
	many(func(i int) {
		keys := []countersign.LimitKey{{Key: "user:alice", Max: 5}, {Key: fmt.Sprintf("pair:alice:%d", i), Max: 5}}
		w, err := s.CountAttempt(ctx, keys, 15*time.Minute, now)
		mu.Lock()
		defer mu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if err == nil && w == 0 {
			allowed++
		}
	})
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if allowed != 5 {
		t.Fatalf("%d of %d concurrent attempts on a limit of 5 got through", allowed, workers)
	}
}

// testConcurrentTokens: workers takes from one bucket of burst 5 that does
// not refill during the test: exactly 5 tokens.
func testConcurrentTokens(t *testing.T, s countersign.Store) {
	now := time.Unix(1700000000, 0)
	var mu sync.Mutex
	taken := 0
	var firstErr error
	many(func(int) {
		w, err := s.TakeToken(ctx, "daemon.sign", 1e-6, 5, now)
		mu.Lock()
		defer mu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if err == nil && w == 0 {
			taken++
		}
	})
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if taken != 5 {
		t.Fatalf("%d tokens taken from a bucket of 5", taken)
	}
}

// testConcurrentLease: workers replicas start at once: one holds the lease
// and every one of them is told the same holder.
func testConcurrentLease(t *testing.T, s countersign.Store) {
	now := time.Unix(1700000000, 0)
	got := make([]string, workers)
	errs := make([]error, workers)
	many(func(i int) {
		got[i], _, errs[i] = s.AcquireLease(ctx, "daemon", fmt.Sprintf("replica-%d", i), 30*time.Second, now)
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		if got[i] != got[0] {
			t.Fatalf("two holders at once: %q and %q", got[0], got[i])
		}
	}
}

// testConcurrentClaims: workers workers claim from 60 due deliveries at
// once, three at a time, until none is left: each delivery is claimed
// exactly once.
func testConcurrentClaims(t *testing.T, s countersign.Store) {
	base := time.Unix(1700000000, 0).UTC()
	addDeliveries(t, s, base, 60)
	now := base.Add(time.Minute)
	var mu sync.Mutex
	seen := map[string]string{}
	var dup []string
	var firstErr error
	many(func(i int) {
		holder := fmt.Sprintf("w%d", i)
		for {
			got, err := s.ClaimDeliveries(ctx, holder, now, now.Add(time.Minute), 3)
			mu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			for _, d := range got {
				if prev, ok := seen[d.ID]; ok {
					dup = append(dup, d.ID+" by "+prev+" and "+holder)
				}
				seen[d.ID] = holder
			}
			mu.Unlock()
			if err != nil || len(got) == 0 {
				return
			}
		}
	})
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	sort.Strings(dup)
	if len(dup) > 0 || len(seen) != 60 {
		t.Fatalf("%d of 60 deliveries claimed; claimed twice: %v", len(seen), dup)
	}
}
