package core

import (
	"context"

	"github.com/countersign/countersign"
)

// Test helpers for tests that build transactions by hand (the group
// commit's, the audit checkpoint's). Production code records through
// change and Record only (record.go).

// audit writes one change's audit entry inside the current transaction.
func (s *Service) audit(ctx context.Context, owner, actor, action, subject string, details any) error {
	cs := &changeSet{}
	cs.add(countersign.Change{Owner: owner, Actor: actor, Action: action, Subject: subject, Details: details})
	return s.writeChanges(ctx, cs)
}

// do runs fn inside a store transaction shared with other callers (the
// group commit's batching of arbitrary work), and returns once that
// transaction has committed or failed.
func (g *groupCommit) do(ctx context.Context, fn func(ctx context.Context) error) error {
	return g.submit(ctx, &commitItem{ctx: ctx, fn: fn})
}
