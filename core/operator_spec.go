package core

import (
	"context"
	"log/slog"
	"math/big"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/policy"
)

// The repo-spec's operator_wallet section is the operator wallet's
// declared budgets and alerts. At every start the server makes the
// wallet's policy and low-balance alerts say what the spec says, so the
// file in the repository and the running server cannot drift apart: an
// edit of the spec is a policy change (audited as policy.change, actor
// system:repo-spec) at the next start.

// SpecActor is the audit actor of changes the repo-spec makes.
const SpecActor = "system:repo-spec"

// SpecAlert is one low_balance entry of the spec.
type SpecAlert struct {
	Asset string // native or a token address
	Below string // base units
}

// ApplyOperatorSpec sets the policy of the wallet with walletID to doc (a
// policy document; nil leaves the policy as it is) and adds or updates the
// spec's low-balance alerts (alerts set through the API for other assets
// stay). A policy that loosens the current one on a wallet with a quorum
// is not applied — loosening there needs its approvers — and a warning
// says so; the stricter policy in force stays.
func (s *Service) ApplyOperatorSpec(ctx context.Context, walletID string, doc []byte, alerts []SpecAlert, log *slog.Logger) error {
	w, err := s.store.WalletByID(ctx, walletID)
	if err != nil {
		return err
	}
	if doc != nil {
		pol, err := policy.Parse(doc)
		if err != nil {
			return countersign.Errorf(countersign.BadRequest, "the repo-spec's budgets make an invalid policy: %s", countersign.ErrorDetail(err))
		}
		old, rec, err := s.loadPolicy(ctx, countersign.PolicyWallet, w.ID)
		if err != nil {
			return err
		}
		if rec == nil || rec.Hash != pol.Hash() {
			loosens, why := policy.Loosens(old, pol)
			need, err := s.walletQuorum(ctx, w)
			if err != nil {
				return err
			}
			if loosens && need > 1 {
				log.Warn("the repo-spec's budgets loosen the operator wallet's policy, which has a quorum: not applied (propose the change to its approvers)",
					"wallet_id", w.ID, "why", why)
			} else {
				if _, err := s.applyPolicy(ctx, countersign.PolicyWallet, w.ID, w.OwnerID, pol, SpecActor, loosens); err != nil {
					return err
				}
				log.Info("applied the repo-spec's budgets as the operator wallet's policy", "wallet_id", w.ID, "rules", len(pol.Rules), "hash", pol.Hash())
			}
		}
	}
	if len(alerts) == 0 {
		return nil
	}
	have, err := s.store.BalanceAlerts(ctx, w.ID)
	if err != nil {
		return err
	}
	for _, a := range alerts {
		asset, err := alertAsset(a.Asset)
		if err != nil {
			return err
		}
		n, ok := new(big.Int).SetString(a.Below, 10)
		if !ok || n.Sign() <= 0 {
			return countersign.Errorf(countersign.BadRequest, "the repo-spec's low_balance below %q is not a positive integer", a.Below)
		}
		same := false
		for _, h := range have {
			if h.Asset == asset && h.Below == n.String() {
				same = true
			}
		}
		if same {
			continue
		}
		if err := s.Record(ctx, countersign.Change{Owner: w.OwnerID, Actor: SpecActor, Action: "wallet.low_balance.set", Subject: w.ID,
			Details: map[string]string{"asset": asset, "below": n.String()}},
			func(ctx context.Context) error {
				return s.store.PutBalanceAlert(ctx, &countersign.BalanceAlert{WalletID: w.ID, OwnerID: w.OwnerID, Asset: asset, Below: n.String()})
			}); err != nil {
			return err
		}
	}
	s.balanceCheck.Store(0)
	return nil
}
