package core

import (
	"context"
	"encoding/json"
	"math/big"
	"time"

	"github.com/countersign/countersign"
)

// The read-only views below are what the transports (http, mcp) need of the
// service's dependencies; the dependencies themselves stay private, so no
// handler reaches a store or a chain except through a method here.

// ChainID is the chain this server is bound to.
func (s *Service) ChainID() *big.Int { return new(big.Int).Set(s.chainID) }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.clock.Now() }

// TokenTTL is a session token's lifetime.
func (s *Service) TokenTTL() time.Duration { return s.tokens.TTL() }

// OmniSettings is the identity configuration (public URL, OIDC issuer).
func (s *Service) OmniSettings() OmniConfig { return s.omni }

// BlockNumber is the chain's head.
func (s *Service) BlockNumber(ctx context.Context) (uint64, error) { return s.chain.BlockNumber(ctx) }

// ForwardRead forwards a read-only JSON-RPC call to the chain node, when
// the chain adapter can (countersign.RawRPC); ok is false when it cannot.
func (s *Service) ForwardRead(ctx context.Context, method string, params []json.RawMessage) (_ json.RawMessage, ok bool, _ error) {
	rr, ok := s.chain.(countersign.RawRPC)
	if !ok {
		return nil, false, nil
	}
	res, err := rr.CallRaw(ctx, method, params)
	return res, true, err
}

// AgentWallet is the wallet agent a was created for.
func (s *Service) AgentWallet(ctx context.Context, a *countersign.Agent) (*countersign.Wallet, error) {
	if a == nil {
		return nil, countersign.Errorf(countersign.Forbidden, "only agents have a wallet of their own")
	}
	return s.store.WalletByID(ctx, a.WalletID)
}

// Ready checks the store and the chain, returning the chain head.
func (s *Service) Ready(ctx context.Context) (uint64, error) {
	if err := s.store.Ping(ctx); err != nil {
		return 0, &NotReady{Part: "the database", Err: countersign.Wrap(countersign.Internal, err, "database is not ready")}
	}
	n, err := s.chain.BlockNumber(ctx)
	if err != nil {
		return 0, &NotReady{Part: "the chain node", Err: err}
	}
	return n, nil
}

// NotReady is Ready's error: which part does not answer, and why.
type NotReady struct {
	Part string // "the database", "the chain node"
	Err  error
}

func (e *NotReady) Error() string { return e.Part + " does not answer: " + e.Err.Error() }
func (e *NotReady) Unwrap() error { return e.Err }

// TransactionCounts counts transactions by status (metrics).
func (s *Service) TransactionCounts(ctx context.Context) (map[countersign.Status]int64, error) {
	return s.store.CountTransactionsByStatus(ctx)
}

// Subscribe wakes the returned channel when owner's event feed grows;
// stop unsubscribes.
func (s *Service) Subscribe(owner string) (wake <-chan struct{}, stop func()) {
	return s.broker.Subscribe(owner)
}

// LastEventID is the id of owner's newest event (0 when none).
func (s *Service) LastEventID(ctx context.Context, owner string) (int64, error) {
	return s.store.LastEventID(ctx, owner)
}
