// Package core holds the services of countersign: users and sessions, MFA,
// wallets, agents, the countersigned transaction lifecycle (prepare →
// authorize → execute → track), the hash-chained audit log and the event
// outbox. It talks to the world only through the ports of the root package.
package core

import (
	"context"
	"log/slog"
	"math/big"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
)

// Config holds the tunables of the services. Zero values take defaults.
type Config struct {
	Argon2          auth.Argon2Params
	TokenTTL        time.Duration // session token lifetime (default 30 min)
	PendingTTL      time.Duration // approval window of a prepared transaction (default 24 h)
	AuthorizedTTL   time.Duration // how long an authorized request may wait to be executed (default 1 h)
	MFAMaxFailures  int           // wrong codes in a row before lockout (default 5)
	MFALockout      time.Duration // lockout length (default 15 min)
	LoginFailures   int           // wrong passwords per (username, client address) per window (default 5)
	LoginIPFails    int           // wrong passwords per client address per window (default 20)
	LoginUserFails  int           // wrong passwords per username from any address per window (default 50)
	HashConcurrency int           // Argon2id computations at once (default: from memory and cores)
	HashQueue       int           // callers that may wait for a slot before 503 (default 4× concurrency)
	LoginWindow     time.Duration // (default 15 min)
	PollInterval    time.Duration // receipt tracker and expiry sweeper period (default 1 s)
	MFAIssuer       string        // issuer in otpauth URIs (default "countersign")
	Omni            OmniConfig
	Money           MoneyConfig
	Ports           Ports
	Hooks           ExecuteHooks // called around execute's broadcast (crash-point tests)
	Live            LiveConfig   // other replicas' changes reach this one's live listeners (eventsignal.go)
	Topups          TopupConfig  // credit top-up providers (topups.go)
	X402            X402Config   // x402 payments (x402.go)
	Review          ReviewConfig // what approvers see: chain names, known tokens (review_config.go)
	// Signers are the external signer backends by the wallet key format
	// they hold (countersign.WalletKeyKeystore, WalletKeyAWSKMS): a wallet
	// whose key is there signs through them (walletsigners.go).
	Signers map[string]countersign.Signer
	// Derived is the derived-key signer (nil: none): when it signs digests
	// it also backs derived wallets (walletsigners.go).
	Derived countersign.DerivedSigner
}

// Ports are the service's optional outbound adapters.
type Ports struct {
	Webhooks countersign.WebhookSender   // webhook deliveries; nil leaves them queued
	Mailer   countersign.Mailer          // email login codes; nil disables email login
	IDTokens countersign.IDTokenVerifier // OIDC login; nil disables it
}

func (c *Config) defaults() {
	if c.Argon2.Time == 0 {
		c.Argon2 = auth.DefaultArgon2
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 30 * time.Minute
	}
	if c.PendingTTL == 0 {
		c.PendingTTL = 24 * time.Hour
	}
	if c.AuthorizedTTL == 0 {
		c.AuthorizedTTL = time.Hour
	}
	if c.MFAMaxFailures == 0 {
		c.MFAMaxFailures = 5
	}
	if c.MFALockout == 0 {
		c.MFALockout = 15 * time.Minute
	}
	if c.LoginFailures == 0 {
		c.LoginFailures = 5
	}
	if c.LoginIPFails == 0 {
		c.LoginIPFails = 20
	}
	if c.LoginUserFails == 0 {
		c.LoginUserFails = 50
	}
	if c.HashConcurrency <= 0 {
		c.HashConcurrency = DefaultHashConcurrency(c.Argon2.Memory)
	}
	if c.HashQueue <= 0 {
		c.HashQueue = 4 * c.HashConcurrency
	}
	if c.LoginWindow == 0 {
		c.LoginWindow = 15 * time.Minute
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.MFAIssuer == "" {
		c.MFAIssuer = "countersign"
	}
	c.Omni.defaults()
	c.Money.defaults()
}

// Service is the application: every use case is a method on it.
type Service struct {
	store   countersign.Store
	chain   countersign.Chain
	signer  countersign.Signer // signs for every wallet: routes by where its key is (walletsigners.go)
	keys    countersign.Signer // the server's own keys: creates, imports, exports, moves them
	sealer  countersign.Sealer
	clock   countersign.Clock
	log     *slog.Logger
	cfg     Config
	chainID *big.Int

	tokens *auth.Tokens
	broker *Broker
	omni   OmniConfig

	webhooks countersign.WebhookSender   // webhook deliveries; nil leaves them queued
	mailer   countersign.Mailer          // email login codes; nil disables email login
	idTokens countersign.IDTokenVerifier // OIDC login; nil disables it
	hooks    ExecuteHooks                // called around execute's broadcast (crash-point tests)
	tracker  trackerStats                // the receipt tracker's counters

	commits *groupCommit // shares one transaction among concurrent pure records

	logins *loginLimiter
	hashes *hashPool
	wake   chan struct{} // nudges the receipt tracker after a broadcast
	feeds  *agentFeeds   // agents' open live feeds (agentfeed.go)

	balanceCheck atomic.Int64 // unix ns of the last low-balance check (balancealerts.go)

	topups topupState // topups.go
	x402   x402State  // x402.go

	reviews   reviewCache  // the reviews status and prepare answers carry (review_cache.go)
	sims      simCache     // prepare's simulations, shared with its review (review_cache.go)
	histories historyCache // the owner's payment history those reviews warn from (review_cache.go)
	balances  balanceCache // the balances they show (review_cache.go)
	head      headMemo     // the chain head those two key on (review_cache.go)

	approvalsSeen ttlCache[approvalsKey, []*countersign.Approval] // a request's approval rows per update, for views (approvers.go)
	quotes        feeCache                                        // prepare's fee quotes, one per chain head (review_cache.go)
}

// New assembles a Service, loading (or creating on first start) the session
// token signing key.
func New(ctx context.Context, st countersign.Store, ch countersign.Chain, sg countersign.Signer, se countersign.Sealer,
	clock countersign.Clock, log *slog.Logger, cfg Config) (*Service, error) {
	cfg.defaults()
	if clock == nil {
		clock = countersign.SystemClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	if d, ok := cfg.Derived.(countersign.DerivedDigestSigner); ok {
		signers := map[string]countersign.Signer{countersign.WalletKeyDerived: derivedWallets{d}}
		for k, v := range cfg.Signers {
			signers[k] = v
		}
		cfg.Signers = signers
	}
	s := &Service{store: st, chain: ch, signer: routeSigners(sg, cfg.Signers), keys: sg, sealer: se, clock: clock, log: log, cfg: cfg,
		broker: NewBroker(), wake: make(chan struct{}, 1), feeds: newAgentFeeds(),
		webhooks: cfg.Ports.Webhooks, mailer: cfg.Ports.Mailer, idTokens: cfg.Ports.IDTokens, hooks: cfg.Hooks}
	s.logins = newLoginLimiter(cfg.LoginFailures, cfg.LoginIPFails, cfg.LoginUserFails, cfg.LoginWindow)
	s.hashes = newHashPool(cfg.HashConcurrency, cfg.HashQueue, 5*time.Second)
	s.omni = cfg.Omni
	if s.omni.OIDCIssuer != "" {
		if err := CheckIssuerURL(s.omni.OIDCIssuer); err != nil {
			return nil, err
		}
	}
	id, err := ch.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	s.chainID = id
	keys, err := s.tokenKeys(ctx)
	if err != nil {
		return nil, err
	}
	s.tokens, err = auth.NewTokens(keys, cfg.TokenTTL, clock.Now)
	if err != nil {
		return nil, err
	}
	s.commits = newGroupCommit(s, 64)
	if err := s.initTopups(ctx); err != nil { // topups.go
		return nil, err
	}
	if err := s.initX402(ctx); err != nil { // x402.go
		return nil, err
	}
	return s, nil
}

// tokenKeys loads the session signing keys, creating the first one. Keys
// live in the store, sealed, so every replica signs and verifies alike.
func (s *Service) tokenKeys(ctx context.Context) ([]auth.TokenKey, error) {
	return s.signingKeys(ctx, "ES256")
}

// signingKeys loads the sealed keys of one kind (alg), newest first,
// creating the first one.
func (s *Service) signingKeys(ctx context.Context, alg string) ([]auth.TokenKey, error) {
	load := func() ([]auth.TokenKey, error) {
		stored, err := s.store.SigningKeys(ctx)
		if err != nil {
			return nil, err
		}
		var keys []auth.TokenKey
		for _, sk := range stored {
			if sk.Alg != alg {
				continue // other kinds, and keys of an older format
			}
			k, err := s.openSigningKey(sk)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		return keys, nil
	}
	keys, err := load()
	if err != nil || len(keys) > 0 {
		return keys, err
	}
	if _, err := s.addSigningKey(ctx, alg); err != nil && countersign.ErrorCode(err) != countersign.Conflict {
		return nil, err
	}
	return load()
}

// openSigningKey unseals a stored signing key.
func (s *Service) openSigningKey(sk *countersign.SigningKey) (auth.TokenKey, error) {
	scalar, err := s.sealer.Open("signing-key:"+sk.KID, sk.Sealed)
	if err != nil {
		return auth.TokenKey{}, err
	}
	defer clear(scalar)
	return auth.ParseTokenKey(scalar)
}

// addSigningKey creates, seals and stores a new key of kind alg.
func (s *Service) addSigningKey(ctx context.Context, alg string) (auth.TokenKey, error) {
	k, err := auth.NewTokenKey()
	if err != nil {
		return k, err
	}
	scalar, err := k.Scalar()
	if err != nil {
		return k, err
	}
	sealed, err := s.sealer.Seal("signing-key:"+k.KID, scalar)
	clear(scalar)
	if err != nil {
		return k, err
	}
	pub, _ := k.Private.PublicKey.Bytes()
	return k, s.store.AddSigningKey(ctx, &countersign.SigningKey{KID: k.KID, Alg: alg, Sealed: sealed, Public: pub, CreatedAt: s.clock.Now()})
}

// Run runs the background workers (receipt tracker, expiry sweeper and, on
// a store other replicas share, their events' wake-ups) until ctx ends.
func (s *Service) Run(ctx context.Context) {
	live := make(chan struct{})
	go func() { defer close(live); s.runLive(ctx) }() // other replicas' events (eventsignal.go)
	defer func() { <-live }()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		if err := s.TrackReceipts(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("receipt tracker", "err", err)
		}
		if err := s.ExpirePending(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("expiry sweeper", "err", err)
		}
		if err := s.ExpireAuthorized(ctx); err != nil && ctx.Err() == nil { // AUTHORIZED_TTL (approvers.go)
			s.log.Warn("authorized expiry sweeper", "err", err)
		}
		if err := s.AuthorizeDelayed(ctx); err != nil && ctx.Err() == nil { // policy.go
			s.log.Warn("delay sweeper", "err", err)
		}
		if err := s.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("webhook deliveries", "err", err)
		}
		if err := s.RunTopups(ctx); err != nil && ctx.Err() == nil { // topups.go
			s.log.Warn("top-ups", "err", err)
		}
		if err := s.CheckBalances(ctx); err != nil && ctx.Err() == nil { // balancealerts.go
			s.log.Warn("balance alerts", "err", err)
		}
	}
}

// claimTimeout bounds a worker's claim statement, which runs on a context
// of its own (claimContext).
const claimTimeout = 10 * time.Second

// claimContext is the context for a worker's claim of rows (a lease): ctx's
// values, but not its cancellation. A statement cancelled while it runs
// may have committed although it reports the cancellation (the SQLite
// driver reports ctx's error whenever ctx ended during the call, and a
// PostgreSQL commit can race a cancel request the same way), and a lease
// its worker does not know it took keeps the row from every worker until
// the lease ends. A claim is one short statement: shutdown waits for it,
// at most claimTimeout when the database stalls.
func claimContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return detach(ctx, claimTimeout)
}

// detach is ctx's values without its cancellation, bounded by timeout: for
// work whose outcome must be recorded whatever the caller does (a claim, a
// broadcast, a charge the provider made).
func detach(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}

func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
