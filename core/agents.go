package core

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
)

// CreateAgent creates an agent bound to one of the user's wallets and
// returns its API key, which is shown this once and stored only as a hash.
// p is a user with MFA on: the route's rule (http: UserMFA, WebMFA).
func (s *Service) CreateAgent(ctx context.Context, p *Principal, name, walletAddress, mfaCode string) (*countersign.Agent, string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, "", countersign.Errorf(countersign.BadRequest, "name is required (at most %d characters)", MaxName)
	}
	if err := CheckText("name", name, MaxName, false); err != nil {
		return nil, "", err
	}
	w, err := s.ownedWallet(ctx, p, walletAddress)
	if err != nil {
		return nil, "", err
	}
	if err := s.VerifyMFA(ctx, p.User.ID, mfaCode); err != nil {
		return nil, "", err
	}
	key, hash, err := auth.NewAPIKey()
	if err != nil {
		return nil, "", err
	}
	a := &countersign.Agent{ID: uuid.NewString(), OwnerID: p.User.ID, Name: name, WalletID: w.ID, KeyHash: hash,
		KeyPrefix: key[:len(auth.APIKeyPrefix)+6], CreatedAt: s.clock.Now().UTC()}
	err = s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "agent.create", Subject: a.ID,
		Details: map[string]string{"name": name, "wallet": w.Address, "key_prefix": a.KeyPrefix}},
		func(ctx context.Context) error { return s.store.CreateAgent(ctx, a) })
	if err != nil {
		return nil, "", err
	}
	return a, key, nil
}

// Agents lists the user's agents (never their keys).
func (s *Service) Agents(ctx context.Context, p *Principal) ([]*countersign.Agent, error) {
	return s.store.AgentsByOwner(ctx, p.User.ID)
}

// RevokeAgent revokes an agent's key at once.
// p is a user with MFA on: the route's rule (http: UserMFA, WebMFA).
func (s *Service) RevokeAgent(ctx context.Context, p *Principal, agentID, mfaCode string) error {
	a, err := s.store.AgentByID(ctx, agentID)
	if err != nil || a.OwnerID != p.User.ID {
		return countersign.Errorf(countersign.NotFound, "agent not found")
	}
	if a.Revoked() {
		return countersign.Errorf(countersign.Conflict, "agent is already revoked")
	}
	if err := s.VerifyMFA(ctx, p.User.ID, mfaCode); err != nil {
		return err
	}
	return s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "agent.revoke", Subject: a.ID, Details: map[string]string{"name": a.Name}},
		func(ctx context.Context) error { return s.store.RevokeAgent(ctx, a.ID, s.clock.Now().UTC()) })
}
