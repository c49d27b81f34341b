package core

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/policy"
)

// The kill switch. A freeze stops every agent of one wallet (set by its
// owner or any approver) or of all the owner's wallets (set by the owner):
// new requests are refused with FROZEN, pending ones wait (they can still
// be decided, and expire as usual), authorized ones are not executed until
// it is lifted. Setting one needs no MFA, so it is instant; lifting one
// needs a TOTP code — and, on a quorum wallet, the codes of as many
// distinct approvers as the wallet's largest quorum.

// FreezeResult is the state of a freeze after a freeze or unfreeze call.
type FreezeResult struct {
	Freeze    *countersign.Freeze
	Lifted    bool
	Approvals int // distinct approvers who agreed to lift it
	Needed    int // how many must
	// StillFrozen: lifting an owner-wide freeze leaves these quorum
	// wallets frozen on their own, for their quorum to lift
	StillFrozen []string
}

// Freeze sets the kill switch on walletID ("" : every wallet of the
// caller). Freezing what is already frozen answers the existing freeze.
func (s *Service) Freeze(ctx context.Context, p *Principal, walletID string) (*countersign.Freeze, error) {
	owner, subject := p.User.ID, p.User.ID
	if walletID != "" {
		w, _, err := s.walletOf(ctx, p, walletID)
		if err != nil {
			return nil, err
		}
		owner, subject = w.OwnerID, w.ID
	}
	if f, err := s.freezeOf(ctx, owner, walletID); err != nil || f != nil {
		return f, err
	}
	f := &countersign.Freeze{ID: uuid.NewString(), OwnerID: owner, WalletID: walletID, By: p.Actor(), At: s.clock.Now().UTC()}
	err := s.Record(ctx, countersign.Change{Owner: owner, Actor: p.Actor(), Action: "freeze.on", Subject: subject,
		Details: map[string]string{"freeze_id": f.ID, "wallet_id": walletID},
		Events:  []countersign.ChangeEvent{{Type: "wallet.frozen", Subject: subject, Payload: freezeView(f)}}},
		func(ctx context.Context) error { return s.store.AddFreeze(ctx, f) })
	if countersign.ErrorCode(err) == countersign.Conflict { // a concurrent twin
		return s.freezeOf(ctx, owner, walletID)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

func freezeView(f *countersign.Freeze) map[string]any {
	return map[string]any{"freeze_id": f.ID, "wallet_id": f.WalletID, "by": f.By, "at": f.At}
}

// freezeOf returns the freeze of exactly (owner, walletID), or nil.
func (s *Service) freezeOf(ctx context.Context, owner, walletID string) (*countersign.Freeze, error) {
	list, err := s.store.Freezes(ctx, owner)
	if err != nil {
		return nil, err
	}
	if i := slices.IndexFunc(list, func(f *countersign.Freeze) bool { return f.WalletID == walletID }); i >= 0 {
		return list[i], nil
	}
	return nil, nil
}

// Unfreeze records the caller's TOTP-proven consent to lift the freeze of
// walletID ("" : the caller's owner-wide freeze) and lifts it once enough
// distinct approvers agreed: the wallet's largest quorum (1 without one).
// An owner-wide freeze is the owner's alone to lift (only the owner can
// set one; a wallet's own freeze stays until lifted on its own).
func (s *Service) Unfreeze(ctx context.Context, p *Principal, walletID, code string) (*FreezeResult, error) {
	owner, subject, need := p.User.ID, p.User.ID, 1
	if walletID != "" {
		w, _, err := s.walletOf(ctx, p, walletID)
		if err != nil {
			return nil, err
		}
		owner, subject = w.OwnerID, w.ID
		if need, err = s.walletQuorum(ctx, w); err != nil {
			return nil, err
		}
	}
	// An owner-wide freeze is the owner's to lift, but it covers quorum
	// wallets too: lifting it leaves each wallet with a quorum frozen on
	// its own, to be lifted by its quorum (so one person's code never
	// unfreezes a wallet that needs several).
	var keepFrozen []*countersign.Wallet
	if walletID == "" {
		ws, err := s.store.WalletsByOwner(ctx, owner)
		if err != nil {
			return nil, err
		}
		for _, w := range ws {
			n, err := s.walletQuorum(ctx, w)
			if err != nil {
				return nil, err
			}
			if n > 1 {
				keepFrozen = append(keepFrozen, w)
			}
		}
	}
	f, err := s.freezeOf(ctx, owner, walletID)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, countersign.Errorf(countersign.NotFound, "not frozen")
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	res := &FreezeResult{Freeze: f, Needed: need}
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		now := s.clock.Now().UTC()
		if err := s.store.AddFreezeLift(ctx, &countersign.FreezeLift{FreezeID: f.ID, UserID: p.User.ID, At: now}); err != nil {
			if countersign.ErrorCode(err) == countersign.Conflict {
				return countersign.Errorf(countersign.Conflict, "you have already agreed to lift this freeze: another approver must")
			}
			return err
		}
		lifts, err := s.store.FreezeLifts(ctx, f.ID)
		if err != nil {
			return err
		}
		res.Approvals = len(lifts)
		details := map[string]any{"freeze_id": f.ID, "wallet_id": walletID, "approvals": res.Approvals, "approvals_needed": need}
		if res.Approvals < need {
			cs.add(countersign.Change{Owner: owner, Actor: p.Actor(), Action: "freeze.lift_approve", Subject: subject, Details: details})
			return nil
		}
		if err := s.store.DeleteFreeze(ctx, f.ID); err != nil {
			return err
		}
		for _, w := range keepFrozen {
			if wf, err := s.freezeOf(ctx, owner, w.ID); err != nil {
				return err
			} else if wf != nil {
				continue
			}
			wf := &countersign.Freeze{ID: uuid.NewString(), OwnerID: owner, WalletID: w.ID, By: p.Actor(), At: now}
			if err := s.store.AddFreeze(ctx, wf); err != nil {
				return err
			}
			res.StillFrozen = append(res.StillFrozen, w.ID)
			cs.add(countersign.Change{Owner: owner, Actor: p.Actor(), Action: "freeze.on", Subject: w.ID,
				Details: map[string]string{"freeze_id": wf.ID, "wallet_id": w.ID, "reason": "owner-wide freeze lifted; this wallet's quorum lifts its own"},
				Events:  []countersign.ChangeEvent{{Type: "wallet.frozen", Subject: w.ID, Payload: freezeView(wf)}}})
		}
		res.Lifted = true
		cs.add(countersign.Change{Owner: owner, Actor: p.Actor(), Action: "freeze.off", Subject: subject, Details: details,
			Events: []countersign.ChangeEvent{{Type: "wallet.unfrozen", Subject: subject, Payload: freezeView(f)}}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// walletQuorum is the largest quorum any policy of w asks for (the
// wallet's and its agents'), at least 1. A stored policy that no longer
// parses counts as a quorum of every approver: fail closed.
func (s *Service) walletQuorum(ctx context.Context, w *countersign.Wallet) (int, error) {
	need := 1
	docs := []*countersign.PolicyRecord{}
	if r, err := s.store.Policy(ctx, countersign.PolicyWallet, w.ID); err == nil {
		docs = append(docs, r)
	} else if countersign.ErrorCode(err) != countersign.NotFound {
		return 0, err
	}
	agents, err := s.store.AgentsByOwner(ctx, w.OwnerID)
	if err != nil {
		return 0, err
	}
	for _, a := range agents {
		// a revoked agent's policy still counts: revoking an agent must not
		// drop the wallet's quorum (and with it the gate on loosening)
		if a.WalletID != w.ID {
			continue
		}
		if r, err := s.store.Policy(ctx, countersign.PolicyAgent, a.ID); err == nil {
			docs = append(docs, r)
		} else if countersign.ErrorCode(err) != countersign.NotFound {
			return 0, err
		}
	}
	for _, r := range docs {
		pol, err := policy.Parse([]byte(r.Document))
		if err != nil {
			approvers, aerr := s.store.Approvers(ctx, w.ID)
			if aerr != nil {
				return 0, aerr
			}
			need = max(need, len(approvers)+1)
			continue
		}
		need = max(need, pol.MaxQuorum())
	}
	return need, nil
}

// frozen returns a Frozen error if a freeze covers walletID of owner.
func (s *Service) frozen(ctx context.Context, owner, walletID string) error {
	list, err := s.store.Freezes(ctx, owner)
	if err != nil {
		return err
	}
	for _, f := range list {
		if f.WalletID == "" || f.WalletID == walletID {
			return countersign.Errorf(countersign.Frozen, "the wallet is frozen (kill switch, since %s): lift it with POST /api/unfreeze", f.At.Format("2006-01-02T15:04:05Z"))
		}
	}
	return nil
}

// Freezes lists the freezes that cover the caller's own wallets and the
// wallets they approve.
func (s *Service) Freezes(ctx context.Context, p *Principal) ([]*countersign.Freeze, error) {
	own, err := s.store.Freezes(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	ids, err := s.approverInbox(ctx, p)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		w, err := s.store.WalletByID(ctx, id)
		if err != nil {
			return nil, err
		}
		theirs, err := s.store.Freezes(ctx, w.OwnerID)
		if err != nil {
			return nil, err
		}
		for _, f := range theirs {
			dup := slices.ContainsFunc(own, func(o *countersign.Freeze) bool { return o.ID == f.ID })
			if (f.WalletID == id || f.WalletID == "") && !dup {
				own = append(own, f)
			}
		}
	}
	return own, nil
}
