package core

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/policy"
)

// Quorum-gated loosening. A policy change that loosens
// anything (policy.Loosens) on a wallet whose policies ask for a quorum
// does not take effect when the owner saves it: it becomes a pending
// change, approved by its proposer's TOTP code, that applies once as many
// distinct approvers of the wallet as its largest quorum have approved it
// with their own codes — and only over the policy it was proposed against,
// so two changes cannot be stitched together. Any approver's reject, or
// PENDING_TTL passing, ends it. Otherwise an owner whose password and TOTP
// seed were stolen could switch a 2-of-3 wallet to "auto" alone.

// PendingPolicyChange is a pending change as the API shows it.
type PendingPolicyChange struct {
	ChangeID        string                  `json:"change_id"`
	WalletID        string                  `json:"wallet_id"`
	Level           countersign.PolicyLevel `json:"level"`
	SubjectID       string                  `json:"subject_id"`
	Hash            string                  `json:"hash"`      // of the proposed document
	BaseHash        string                  `json:"base_hash"` // of the policy it replaces
	Document        *policy.Policy          `json:"document"`
	Status          string                  `json:"status"`
	Why             []string                `json:"why,omitempty"` // what loosens
	ProposedBy      string                  `json:"proposed_by"`
	Approvals       []TxApproval            `json:"approvals"`
	ApprovalsNeeded int                     `json:"approvals_needed"`
	CreatedAt       time.Time               `json:"created_at"`
	ExpiresAt       time.Time               `json:"expires_at"`
}

// gateLoosening is SetPolicy's hook: a loosening change of subject (a
// policy of walletID or of one of its agents) on a quorum wallet becomes a
// pending change with p's approval (p proved TOTP in SetPolicy), and
// pending reports true; on any other wallet it reports false and the
// caller applies the change as before.
func (s *Service) gateLoosening(ctx context.Context, p *Principal, level countersign.PolicyLevel, subjectID, walletID string, pol *policy.Policy, why []string) (*PendingPolicyChange, bool, error) {
	w, err := s.store.WalletByID(ctx, walletID)
	if err != nil {
		return nil, false, err
	}
	need, err := s.walletQuorum(ctx, w)
	if err != nil || need <= 1 {
		return nil, false, err
	}
	base := ""
	if r, err := s.store.Policy(ctx, level, subjectID); err == nil {
		base = r.Hash
	} else if countersign.ErrorCode(err) != countersign.NotFound {
		return nil, false, err
	}
	now := s.clock.Now().UTC()
	c := &countersign.PolicyChange{ID: uuid.NewString(), OwnerID: w.OwnerID, WalletID: w.ID, Level: level, SubjectID: subjectID,
		Document: string(pol.Marshal()), Hash: pol.Hash(), BaseHash: base, ProposedBy: p.Actor(), Needed: need,
		Status: countersign.PolicyChangePending, CreatedAt: now, ExpiresAt: now.Add(s.cfg.PendingTTL)}
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		if err := s.store.CreatePolicyChange(ctx, c); err != nil {
			return err
		}
		if err := s.store.AddPolicyChangeApproval(ctx, &countersign.PolicyChangeApproval{ChangeID: c.ID, UserID: p.User.ID, At: now}); err != nil {
			return err
		}
		details := map[string]any{"change_id": c.ID, "level": string(level), "subject_id": subjectID, "old_hash": base, "new_hash": c.Hash,
			"approvals": 1, "approvals_needed": need, "why": why}
		cs.add(countersign.Change{Owner: w.OwnerID, Actor: p.Actor(), Action: "policy.change_propose", Subject: subjectID, Details: details,
			Events: []countersign.ChangeEvent{{Type: "policy.change_pending", Subject: subjectID, Payload: details}}})
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	v, err := s.changeView(ctx, c, why)
	return v, true, err
}

func (s *Service) changeView(ctx context.Context, c *countersign.PolicyChange, why []string) (*PendingPolicyChange, error) {
	pol, _ := policy.Parse([]byte(c.Document))
	counted, err := s.countedChangeApprovals(ctx, c)
	if err != nil {
		return nil, err
	}
	out := &PendingPolicyChange{ChangeID: c.ID, WalletID: c.WalletID, Level: c.Level, SubjectID: c.SubjectID, Hash: c.Hash, BaseHash: c.BaseHash,
		Document: pol, Status: c.Status, Why: why, ProposedBy: c.ProposedBy, Approvals: []TxApproval{}, ApprovalsNeeded: c.Needed,
		CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt}
	for _, a := range counted {
		out.Approvals = append(out.Approvals, TxApproval{User: s.username(ctx, a.UserID), At: a.At})
	}
	return out, nil
}

// countedChangeApprovals are c's approvals by current approvers of its
// wallet (the owner included).
func (s *Service) countedChangeApprovals(ctx context.Context, c *countersign.PolicyChange) ([]*countersign.PolicyChangeApproval, error) {
	list, err := s.store.PolicyChangeApprovals(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	approvers, err := s.store.Approvers(ctx, c.WalletID)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(list, func(a *countersign.PolicyChangeApproval) bool {
		return a.UserID != c.OwnerID && !slices.ContainsFunc(approvers, func(x *countersign.Approver) bool { return x.UserID == a.UserID })
	}), nil
}

// PolicyChanges lists the pending changes of the wallets p owns or
// approves.
func (s *Service) PolicyChanges(ctx context.Context, p *Principal) ([]*PendingPolicyChange, error) {
	own, err := s.store.WalletsByOwner(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	ids, err := s.approverInbox(ctx, p)
	if err != nil {
		return nil, err
	}
	for _, w := range own {
		ids = append(ids, w.ID)
	}
	out := []*PendingPolicyChange{}
	now := s.clock.Now()
	for _, id := range ids {
		list, err := s.store.PolicyChangesOf(ctx, id, countersign.PolicyChangePending)
		if err != nil {
			return nil, err
		}
		for _, c := range list {
			if !now.Before(c.ExpiresAt) {
				continue
			}
			v, err := s.changeView(ctx, c, nil)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// DecidePolicyChange records p's approval (or reject) of a pending change
// with p's own TOTP code. p must be an approver of the change's wallet.
// The change applies once enough distinct approvers approved it, if the
// policy it replaces is still the one it was proposed against (otherwise
// it is superseded and nothing changes); any approver's reject ends it.
func (s *Service) DecidePolicyChange(ctx context.Context, p *Principal, id, code string, d Decision) (*PendingPolicyChange, error) {
	if d != Approve && d != Reject {
		return nil, countersign.Errorf(countersign.BadRequest, "decision must be approve or reject")
	}
	if _, err := uuid.Parse(id); err != nil {
		return nil, countersign.Errorf(countersign.NotFound, "policy change not found")
	}
	c, err := s.store.PolicyChange(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.walletOf(ctx, p, c.WalletID); err != nil {
		return nil, countersign.Errorf(countersign.NotFound, "policy change not found")
	}
	open := func(c *countersign.PolicyChange) error {
		if c.Status != countersign.PolicyChangePending {
			return countersign.Errorf(countersign.Conflict, "the policy change is %s", c.Status)
		}
		if !s.clock.Now().Before(c.ExpiresAt) {
			return countersign.Errorf(countersign.Conflict, "the policy change has expired")
		}
		return nil
	}
	if err := open(c); err != nil {
		return nil, err
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	var superseded bool
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.PolicyChange(ctx, id)
		if err != nil {
			return err
		}
		c = cur
		if err := open(cur); err != nil {
			return err
		}
		now := s.clock.Now().UTC()
		if d == Reject {
			cur.Status, cur.DecidedAt = countersign.PolicyChangeRejected, now
			cs.add(countersign.Change{Owner: cur.OwnerID, Actor: p.Actor(), Action: "policy.change_reject", Subject: cur.SubjectID, Details: map[string]string{"change_id": cur.ID}})
			return s.store.SetPolicyChangeStatus(ctx, cur.ID, cur.Status, now)
		}
		if err := s.store.AddPolicyChangeApproval(ctx, &countersign.PolicyChangeApproval{ChangeID: cur.ID, UserID: p.User.ID, At: now}); err != nil {
			if countersign.ErrorCode(err) == countersign.Conflict {
				return countersign.Errorf(countersign.Conflict, "you have already approved this policy change: another approver must")
			}
			return err
		}
		counted, err := s.countedChangeApprovals(ctx, cur)
		if err != nil {
			return err
		}
		details := map[string]any{"change_id": cur.ID, "approvals": len(counted), "approvals_needed": cur.Needed}
		cs.add(countersign.Change{Owner: cur.OwnerID, Actor: p.Actor(), Action: "policy.change_approve", Subject: cur.SubjectID, Details: details})
		if len(counted) < cur.Needed {
			return nil
		}
		base := ""
		if r, err := s.store.Policy(ctx, cur.Level, cur.SubjectID); err == nil {
			base = r.Hash
		} else if countersign.ErrorCode(err) != countersign.NotFound {
			return err
		}
		if base != cur.BaseHash {
			// Fail closed: approved against a policy that is no longer
			// there; applying it would also undo the change in between.
			superseded, cur.Status = true, countersign.PolicyChangeSuperseded
			return s.store.SetPolicyChangeStatus(ctx, cur.ID, cur.Status, now)
		}
		pol, err := policy.Parse([]byte(cur.Document))
		if err != nil {
			return err
		}
		// Approvers may have left since it was proposed: a quorum they can
		// no longer reach is not applied (policy_rest.go); nothing changes.
		if err := s.checkQuorumReachable(ctx, cur.WalletID, pol); err != nil {
			return countersign.Errorf(countersign.Conflict, "this change can no longer apply: %s", countersign.ErrorDetail(err))
		}
		cur.Status, cur.DecidedAt = countersign.PolicyChangeApplied, now
		if err := s.store.SetPolicyChangeStatus(ctx, cur.ID, cur.Status, now); err != nil {
			return err
		}
		// applyPolicy joins this transaction (policy.go): audit with the
		// old and new hash, policy.changed.
		_, err = s.applyPolicy(ctx, cur.Level, cur.SubjectID, cur.OwnerID, pol, p.Actor(), true)
		return err
	})
	if err != nil {
		return nil, err
	}
	if superseded {
		return nil, countersign.Errorf(countersign.Conflict, "the policy changed since this change was proposed: it is superseded, propose it again")
	}
	return s.changeView(ctx, c, nil)
}
