package core

import (
	"context"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/policy"
)

// Low-balance alerts: a threshold per wallet and asset, checked by a
// worker on every replica; the database's compare-and-set on the alert's
// last state lets exactly one check see each crossing, which then fires
// wallet.low_balance (or wallet.balance_restored) through the one
// state-change path: audited, on the outbox, to the webhooks.

// BalanceCheckEvery is how often the thresholds are checked.
const BalanceCheckEvery = time.Minute

// BalanceAlertView is the public shape of an alert.
type BalanceAlertView struct {
	WalletID    string     `json:"wallet_id"`
	Asset       string     `json:"asset"`
	Below       string     `json:"below"`
	Low         bool       `json:"low"`
	LastBalance *string    `json:"last_balance"`
	CheckedAt   *time.Time `json:"checked_at"`
}

func alertView(a *countersign.BalanceAlert) BalanceAlertView {
	v := BalanceAlertView{WalletID: a.WalletID, Asset: a.Asset, Below: a.Below, Low: a.Low}
	if a.LastBalance != "" {
		b, at := a.LastBalance, a.CheckedAt
		v.LastBalance, v.CheckedAt = &b, &at
	}
	return v
}

// alertAsset normalises an alert's asset: native, or a token address.
func alertAsset(asset string) (string, error) {
	if asset == "" || asset == policy.AssetNative {
		return policy.AssetNative, nil
	}
	if !common.IsHexAddress(asset) || !strings.HasPrefix(asset, "0x") {
		return "", countersign.Errorf(countersign.BadRequest, "asset must be native or a token contract address")
	}
	return strings.ToLower(asset), nil
}

// SetBalanceAlert sets the threshold of one asset of p's wallet walletID:
// below (base units, a decimal integer); "0" removes it. p is the owner.
func (s *Service) SetBalanceAlert(ctx context.Context, p *Principal, walletID, asset, below string) ([]BalanceAlertView, error) {
	w, owner, err := s.walletOf(ctx, p, walletID)
	if err != nil {
		return nil, err
	}
	if !owner {
		return nil, countersign.Errorf(countersign.Forbidden, "only the wallet's owner sets its balance alerts")
	}
	if asset, err = alertAsset(asset); err != nil {
		return nil, err
	}
	n, ok := new(big.Int).SetString(below, 10)
	if !ok || n.Sign() < 0 || n.BitLen() > 256 || len(below) > 78 || (len(below) > 1 && below[0] == '0') {
		return nil, countersign.Errorf(countersign.BadRequest, "below must be a non-negative integer of base units (wei, or the token's smallest unit)")
	}
	action, apply := "wallet.low_balance.set", func(ctx context.Context) error {
		return s.store.PutBalanceAlert(ctx, &countersign.BalanceAlert{WalletID: w.ID, OwnerID: w.OwnerID, Asset: asset, Below: n.String()})
	}
	if n.Sign() == 0 {
		action, apply = "wallet.low_balance.remove", func(ctx context.Context) error { return s.store.DeleteBalanceAlert(ctx, w.ID, asset) }
	}
	if err := s.Record(ctx, countersign.Change{Owner: w.OwnerID, Actor: p.Actor(), Action: action, Subject: w.ID,
		Details: map[string]string{"asset": asset, "below": n.String()}}, apply); err != nil {
		return nil, err
	}
	s.balanceCheck.Store(0) // check the new threshold at the next pass
	s.nudge()
	return s.BalanceAlerts(ctx, p, walletID)
}

// BalanceAlerts lists the thresholds of a wallet p owns or approves.
func (s *Service) BalanceAlerts(ctx context.Context, p *Principal, walletID string) ([]BalanceAlertView, error) {
	w, _, err := s.walletOf(ctx, p, walletID)
	if err != nil {
		return nil, err
	}
	list, err := s.store.BalanceAlerts(ctx, w.ID)
	if err != nil {
		return nil, err
	}
	out := make([]BalanceAlertView, len(list))
	for i, a := range list {
		out[i] = alertView(a)
	}
	return out, nil
}

// WatchedBalances is every alert with what its last check read (metrics).
func (s *Service) WatchedBalances(ctx context.Context) ([]*countersign.BalanceAlert, error) {
	return s.store.BalanceAlerts(ctx, "")
}

// CheckBalances checks every threshold, at most once per
// BalanceCheckEvery; a crossing fires its event once whichever replica
// sees it. A balance that cannot be read is logged and checked next time.
func (s *Service) CheckBalances(ctx context.Context) error {
	now := s.clock.Now().UTC()
	last := s.balanceCheck.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < BalanceCheckEvery {
		return nil
	}
	if !s.balanceCheck.CompareAndSwap(last, now.UnixNano()) {
		return nil
	}
	alerts, err := s.store.BalanceAlerts(ctx, "")
	if err != nil {
		return err
	}
	for _, a := range alerts {
		if ctx.Err() != nil {
			return nil
		}
		if err := s.checkBalance(ctx, a, now); err != nil {
			s.log.Warn("balance alert: cannot check", "wallet_id", a.WalletID, "asset", a.Asset, "err", err)
		}
	}
	return nil
}

func (s *Service) checkBalance(ctx context.Context, a *countersign.BalanceAlert, now time.Time) error {
	w, err := s.store.WalletByID(ctx, a.WalletID)
	if err != nil {
		return err
	}
	var bal *big.Int
	if a.Asset == policy.AssetNative {
		bal, err = s.chain.BalanceAt(ctx, w.Address)
	} else {
		var out []any
		out, err = s.erc20Call(ctx, common.HexToAddress(a.Asset), "balanceOf", common.HexToAddress(w.Address))
		if err == nil {
			bal, _ = out[0].(*big.Int)
		}
	}
	if err != nil {
		return err
	}
	if bal == nil {
		return countersign.Errorf(countersign.ChainError, "token %s returned no balance", a.Asset)
	}
	below, _ := new(big.Int).SetString(a.Below, 10)
	low := bal.Cmp(below) < 0
	return s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		changed, err := s.store.SetBalanceAlertState(ctx, a.WalletID, a.Asset, a.Low, low, bal.String(), now)
		if err != nil || !changed {
			return err
		}
		typ := "wallet.low_balance"
		if !low {
			typ = "wallet.balance_restored"
		}
		payload := map[string]any{"wallet_id": w.ID, "address": w.Address, "asset": a.Asset, "balance": bal.String(), "below": a.Below}
		cs.add(countersign.Change{Owner: w.OwnerID, Actor: "system", Action: typ, Subject: w.ID, Details: payload,
			Events: []countersign.ChangeEvent{{Type: typ, Subject: w.ID, Payload: payload}}})
		return nil
	})
}
