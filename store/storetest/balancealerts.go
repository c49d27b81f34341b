package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// testBalanceAlerts: thresholds are set, replaced (and then unchecked),
// listed and removed; of many concurrent checks that see one crossing,
// exactly one reports it.
func testBalanceAlerts(t *testing.T, s countersign.Store) {
	if err := s.CreateUser(ctx, user("ub")); err != nil {
		t.Fatal(err)
	}
	w := &countersign.Wallet{ID: "wb1", OwnerID: "ub", Address: "0xB0B", KeySealed: []byte{1}, CreatedAt: time.Unix(1700000000, 0).UTC()}
	if err := s.CreateWallet(ctx, w); err != nil {
		t.Fatal(err)
	}
	put := func(asset, below string) {
		if err := s.PutBalanceAlert(ctx, &countersign.BalanceAlert{WalletID: "wb1", OwnerID: "ub", Asset: asset, Below: below}); err != nil {
			t.Fatal(err)
		}
	}
	put("native", "100")
	put("0xtoken", "5")
	at := time.Unix(1700000100, 0).UTC()
	var wg sync.WaitGroup
	var won atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			changed, err := s.SetBalanceAlertState(ctx, "wb1", "native", false, true, "7", at)
			if err != nil {
				t.Error(err)
			}
			if changed {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d checks reported one crossing", won.Load())
	}
	if changed, err := s.SetBalanceAlertState(ctx, "wb1", "native", true, true, "6", at); err != nil || changed {
		t.Fatalf("no crossing reported as one: %v %v", changed, err)
	}
	list, err := s.BalanceAlerts(ctx, "wb1")
	if err != nil || len(list) != 2 || list[1].Asset != "native" || !list[1].Low || list[1].LastBalance != "6" || !list[1].CheckedAt.Equal(at) {
		t.Fatalf("alerts: %+v %v", list, err)
	}
	put("native", "200") // replaced: unchecked again
	if list, _ := s.BalanceAlerts(ctx, ""); len(list) != 2 || list[1].Low || list[1].LastBalance != "" || list[1].Below != "200" {
		t.Fatalf("after replacing: %+v", list[1])
	}
	if err := s.DeleteBalanceAlert(ctx, "wb1", "0xtoken"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.BalanceAlerts(ctx, "wb1"); len(list) != 1 {
		t.Fatalf("after delete: %d", len(list))
	}
}
