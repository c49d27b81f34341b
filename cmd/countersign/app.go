package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/chain/evm"
	"github.com/countersign/countersign/chain/sim"
	"github.com/countersign/countersign/cloud/awskms"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/daemon"
	cshttp "github.com/countersign/countersign/http"
	"github.com/countersign/countersign/keys/keystore"
	mockledger "github.com/countersign/countersign/ledger/mock"
	"github.com/countersign/countersign/mailer"
	csmcp "github.com/countersign/countersign/mcp"
	"github.com/countersign/countersign/netguard"
	"github.com/countersign/countersign/notify"
	oidcverify "github.com/countersign/countersign/oidc"
	"github.com/countersign/countersign/repospec"
	"github.com/countersign/countersign/signer/audited"
	"github.com/countersign/countersign/signer/derived"
	hdsigner "github.com/countersign/countersign/signer/hd"
	"github.com/countersign/countersign/signer/keyfile"
	"github.com/countersign/countersign/signer/local"
	"github.com/countersign/countersign/signer/remote"
	"github.com/countersign/countersign/store/sqlite"
)

// App is a running server: the same wiring for main and the end-to-end
// tests.
type App struct {
	URL     string
	Svc     *core.Service
	Store   countersign.Store  // the service's store (tests and maintenance commands)
	Chain   countersign.Chain  // the service's chain
	Sealer  countersign.Sealer // the key-encryption envelope
	Dev     *sim.Chain         // nil when an external chain is used
	Log     *slog.Logger
	DataDir string
	// Operator is the operator wallet's keystore-file signer
	// (OPERATOR_KEYSTORE_PATH), nil without one (operator.go).
	Operator *keyfile.Signer
	// OperatorKMS is the operator wallet's AWS KMS key (OPERATOR_KMS_KEY),
	// nil without one (operator.go).
	OperatorKMS *awskms.Signer
	spec        *repospec.Spec            // REPO_SPEC, nil without one
	derived     countersign.DerivedSigner // the derived-key signer, nil without one (startService)
	// WalletTokenFile is the generated wallet token's file, "" when the
	// operator set WALLET_TOKEN.
	WalletTokenFile string
	walletToken     string
	httpSrv         *http.Server
	cancel          context.CancelFunc
	closers         []func() error
	done            chan struct{}
}

// servicePorts builds the service's outbound adapters: webhook deliveries
// (through the SSRF guard), email login codes, OIDC login.
func servicePorts(cfg *Config) (core.Ports, error) {
	var p core.Ports
	allowNets, err := netguard.ParseAllowNets(cfg.WebhookAllow)
	if err != nil {
		return p, err
	}
	p.Webhooks = notify.New(&netguard.Guard{Allow: allowNets, Resolver: cfg.WebhookDNS})
	if cfg.SMTPAddr != "" {
		p.Mailer = &mailer.SMTP{Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, Username: cfg.SMTPUser, Password: cfg.SMTPPassword}
	}
	if cfg.OIDCLoginIss != "" {
		if cfg.OIDCLoginAud == "" {
			return p, errors.New("OIDC_LOGIN_ISSUER needs OIDC_LOGIN_CLIENT_ID (the aud its ID tokens carry)")
		}
		p.IDTokens = oidcverify.New(cfg.OIDCLoginIss, cfg.OIDCLoginAud, cfg.OIDCLoginHTTP)
	}
	return p, nil
}

// openStore opens the database named by cfg.DB.
func openStore(ctx context.Context, cfg *Config) (countersign.Store, error) {
	if err := checkDB(cfg.DB); err != nil {
		return nil, err
	}
	if isPostgres(cfg.DB) { // store_postgres.go
		return openPostgres(ctx, cfg.DB)
	}
	return sqlite.Open(ctx, strings.TrimPrefix(cfg.DB, "sqlite://"))
}

// Start builds everything from cfg and starts serving. Each step adds
// what it opens to a.closers, so a refused start closes what it made.
func Start(ctx context.Context, cfg *Config, log *slog.Logger) (_ *App, err error) {
	// a, not the named result: "return nil, err" must not lose what to close.
	a := &App{Log: log, DataDir: cfg.DataDir, done: make(chan struct{})}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()
	if err := a.checkConfig(cfg, log); err != nil { // a refused start leaves nothing behind
		return nil, err
	}
	sealer, keyCreated, err := openSealer(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, st.Close)
	if err := checkMasterKey(ctx, cfg, st, sealer); err != nil { // rotate.go
		if keyCreated { // made a moment ago for data it cannot open: leave no second key about
			os.Remove(cfg.MasterKeyFile)
		}
		return nil, err
	}
	warnUnopenable(ctx, st, sealer, log) // rotate.go
	ch, dev, err := a.openChain(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := a.checkOperator(ctx, cfg, st, ch, log); err != nil { // REPO_SPEC (operator.go)
		return nil, err
	}
	ks, err := openKeystore(cfg, st)
	if err != nil {
		return nil, err
	}
	svc, err := a.startService(ctx, cfg, st, ch, ks, sealer, log)
	if err != nil {
		return nil, err
	}
	srv, err := a.newHTTPServer(cfg, svc, dev, log)
	if err != nil {
		return nil, err
	}
	if srv.Daemon, err = newDaemon(cfg, st, ks, svc); err != nil {
		return nil, err
	}
	ln, err := a.listen(cfg, srv, log)
	if err != nil {
		return nil, err
	}
	if err := a.guardDaemon(ctx, cfg, st, srv, log); err != nil { // DAEMON_MODE (daemonguard.go)
		return nil, err
	}
	if cfg.PprofAddr != "" {
		_, stop, err := startPprof(cfg.PprofAddr, log)
		if err != nil {
			ln.Close()
			return nil, err
		}
		a.closers = append(a.closers, stop)
	}
	a.startWorkers(ctx, cfg, svc, srv.Daemon, log)
	go func() {
		if err := a.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("countersign is serving", "url", a.URL, "chain_id", svc.ChainID().String(), "embedded_chain", a.Dev != nil,
		"data_dir", cfg.DataDir, "db", redactDB(cfg.DB))
	if a.Dev != nil {
		log.Info("embedded dev chain (in memory, fresh on every start)", "faucet", a.Dev.Faucet.Hex(), "test_token", a.Dev.Token.Hex(), "counter", a.Dev.Counter.Hex())
	}
	return a, nil
}

// checkConfig refuses a configuration before anything is created: the
// settings, the data directory, and the tokens (a weak WALLET_TOKEN or
// METRICS_TOKEN stops the start).
func (a *App) checkConfig(cfg *Config, log *slog.Logger) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := checkDataDir(cfg, log); err != nil { // before anything is written into it
		return err
	}
	if a.walletToken, err = daemonToken(cfg, log); err != nil {
		return err
	}
	if cfg.WalletToken == "" {
		a.WalletTokenFile = walletTokenFile(cfg.DataDir)
	}
	if cfg.MetricsToken != "" {
		return cshttp.CheckTokenStrength("METRICS_TOKEN", cfg.MetricsToken)
	}
	return nil
}

// openSealer loads (or, the first time, creates) the master key file and
// returns the envelope sealer over every key in it (the first seals, all
// open). The sealer follows the file: a key that rotate-master-key put
// there is picked up without a restart (keys/envelope/reload.go). With
// KEK_URI an AWS KMS key seals instead, the file's keys (if any) still
// open, and a KMS that cannot be used stops the start (kek_awskms.go).
func openSealer(ctx context.Context, cfg *Config, log *slog.Logger) (countersign.Sealer, bool, error) {
	sealer, created, err := serveSealer(ctx, cfg, log)
	if err != nil {
		return nil, false, err
	}
	if created {
		log.Warn("!!! GENERATED A NEW MASTER KEY: every wallet key and MFA secret is encrypted under it. Back it up and keep it secret; losing it loses the wallets.",
			"file", cfg.MasterKeyFile)
	}
	return sealer, created, nil
}

// openChain starts the embedded dev chain (no CHAIN_URL) or dials the
// configured one.
func (a *App) openChain(ctx context.Context, cfg *Config) (countersign.Chain, cshttp.DevChain, error) {
	if cfg.ChainURL != "" {
		c, closeFn, err := evm.Dial(ctx, cfg.ChainURL, evm.WithTimeout(cfg.ChainTimeout)) // 0: evm.DefaultTimeout
		if err != nil {
			return nil, nil, fmt.Errorf("connect to chain %s: %w", redactURL(cfg.ChainURL), err)
		}
		a.closers = append(a.closers, func() error { closeFn(); return nil })
		return c, nil, nil
	}
	// A fixed seed: the dev chain's money is play money, and a fixed
	// faucet gives the TEST token the same address everywhere.
	dev, err := sim.Start(ctx, []byte("countersign embedded dev chain"))
	if err != nil {
		return nil, nil, fmt.Errorf("start embedded chain: %w", err)
	}
	a.Dev = dev
	a.closers = append(a.closers, a.Dev.Close)
	return evm.New(a.Dev.Client()), devChain{a.Dev}, nil
}

// openKeystore picks the KeyStore. One key model: API wallets and daemon
// wallets are v1-kdb files in the same KeyStore.
func openKeystore(cfg *Config, st countersign.Store) (countersign.KeyStore, error) {
	switch cfg.KeystoreKind {
	case "", "dir":
		return keystore.Dir{Path: cfg.KeystoreDir}, nil
	case "store":
		return keystore.DB{Store: st}, nil
	default:
		return nil, fmt.Errorf("KEYSTORE must be dir or store, not %q", cfg.KeystoreKind)
	}
}

// startService builds the core service and readies its data: the chain
// binding, the audit key, the wallet keys in the keystore.
func (a *App) startService(ctx context.Context, cfg *Config, st countersign.Store, ch countersign.Chain, ks countersign.KeyStore, sealer countersign.Sealer, log *slog.Logger) (*core.Service, error) {
	ports, err := servicePorts(cfg)
	if err != nil {
		return nil, err
	}
	if a.derived, err = derivedSigner(cfg, log); err != nil {
		return nil, err
	}
	svc, err := core.New(ctx, st, ch, local.New(sealer, ks), sealer, cfg.Clock, log, core.Config{
		Argon2: cfg.Argon2, TokenTTL: cfg.TokenTTL, PendingTTL: cfg.PendingTTL, AuthorizedTTL: cfg.AuthorizedTTL,
		MFALockout: cfg.MFALockout, MFAMaxFailures: cfg.MFAMaxFail, PollInterval: cfg.PollInterval,
		HashConcurrency: cfg.HashConcurrency, HashQueue: cfg.HashQueue, Omni: cfg.Omni, Money: cfg.Money,
		Ports: ports, Hooks: cfg.ExecuteHooks, Live: liveConfig(cfg, st), // eventsignal.go
		Topups: topupConfig(cfg), X402: x402Config(cfg), Review: reviewConfig(cfg), // topup.go, x402.go, review_config.go
		Signers: a.operatorSigners(), Derived: a.derived, // operator.go; the derived-key signer also backs derived wallets
	})
	if err != nil {
		return nil, err
	}
	a.Svc, a.Store, a.Chain, a.Sealer = svc, st, ch, sealer
	a.closers = append(a.closers, func() error { svc.Close(); return nil }) // drains the group commit before the store closes
	// Before any worker runs: the data must belong to this chain.
	if err := bindChain(ctx, cfg, svc, a.Dev != nil, log); err != nil {
		return nil, err
	}
	if err := svc.EnsureAuditKey(ctx); err != nil { // signs audit checkpoints
		return nil, err
	}
	if err := a.attachOperator(ctx, cfg, svc, log); err != nil { // operator.go
		return nil, err
	}
	if err := a.applySpec(ctx, cfg, svc, log); err != nil { // operator.go
		return nil, err
	}
	return svc, checkWalletKeys(ctx, cfg, svc, log)
}

// checkWalletKeys moves legacy wallet keys into the keystore and refuses
// to start when a wallet's key is missing from it.
func checkWalletKeys(ctx context.Context, cfg *Config, svc *core.Service, log *slog.Logger) error {
	if n, err := svc.MigrateWalletKeys(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Info("moved wallet keys into the keystore", "wallets", n, "keystore", or(cfg.KeystoreKind, "dir"))
	}
	missing, err := svc.MissingWalletKeys(ctx)
	if err != nil || len(missing) == 0 {
		return err
	}
	where := "KEYSTORE=store (the database)"
	if cfg.KeystoreKind != "store" {
		where = "KEYSTORE=dir, KEYSTORE_DIR=" + cfg.KeystoreDir
	}
	return fmt.Errorf("the keys of %d wallet(s) are not in the keystore (%s), e.g. %s: restore the keystore from the backup taken with the database, or point KEYSTORE/KEYSTORE_DIR where the keys are",
		len(missing), where, missing[0])
}

// newHTTPServer configures the HTTP server (all but the daemon).
func (a *App) newHTTPServer(cfg *Config, svc *core.Service, dev cshttp.DevChain, log *slog.Logger) (_ *cshttp.Server, err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv := cshttp.NewServer(svc, log, dev, reg)
	if cfg.ApprovalWait > 0 {
		srv.ApprovalWait = cfg.ApprovalWait
	}
	if srv.Derived = a.derived; srv.Derived != nil {
		// every /dev signature goes on its omni account's audit chain
		srv.Derived = audited.New(srv.Derived, svc)
	}
	srv.ServiceToken = cfg.SignerToken
	srv.WalletToken = a.walletToken
	srv.WalletRemote = cfg.WalletToken != "" // an explicit token is the operator's choice to serve beyond this machine
	srv.MetricsToken = cfg.MetricsToken
	if srv.WalletAllow, err = cshttp.ParseAllowList(cfg.WalletAllow); err != nil {
		return nil, err
	}
	if srv.WalletAllowedHosts, err = cshttp.ParseHostList(cfg.WalletHosts); err != nil {
		return nil, err
	}
	if srv.WalletAllowedOrigins, err = cshttp.ParseOriginList(cfg.WalletOrigins); err != nil {
		return nil, err
	}
	if srv.TrustedProxies, err = cshttp.ParseTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	if cfg.ExportScryptN != 0 {
		srv.ExportScryptN = cfg.ExportScryptN
	}
	srv.MCP = csmcp.Handler(svc)
	srv.Version = buildVersion() // the same as `countersign version`
	srv.Explorer = cfg.Explorer
	return srv, nil
}

// newDaemon builds the local wallet daemon: its keys in the keystore
// (signer/hd), its ledger, its state changes recorded by the service.
func newDaemon(cfg *Config, st countersign.Store, ks countersign.KeyStore, svc *core.Service) (*daemon.Service, error) {
	var ledger countersign.Ledger
	switch cfg.WalletChain {
	case "", "mock":
		ledger = mockledger.Ledger{Store: st}
	case "aitbc":
		return nil, errors.New("WALLET_CHAIN=aitbc: there is no AITBC node adapter yet (the chain has no RPC to talk to); use WALLET_CHAIN=mock")
	default:
		return nil, fmt.Errorf("WALLET_CHAIN must be mock (or, later, aitbc), not %q", cfg.WalletChain)
	}
	keys := daemonKeyring(cfg, st, hdsigner.New(ks, cfg.Clock, hdsigner.Config{Argon2: cfg.DaemonArgon})) // daemonguard.go: the shared signing rate
	return daemon.New(st, keys, svc, cfg.Clock, daemon.Config{UnlockTTL: cfg.UnlockTTL, SignRate: cfg.SignRate, SignBurst: cfg.SignBurst, Ledger: ledger}), nil
}

// listen opens the listener (refusing a non-loopback address without an
// explicit daemon credential) and makes the http.Server.
func (a *App) listen(cfg *Config, srv *cshttp.Server, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		// The generated token is for this machine: serving the daemon
		// beyond it takes the operator's explicit WALLET_TOKEN, or a
		// WALLET_ALLOW list of the clients that may use it.
		if cfg.WalletToken == "" && cfg.WalletAllow == "" {
			ln.Close()
			return nil, errors.New("refusing to listen on a non-loopback address without WALLET_TOKEN (or WALLET_ALLOW): the generated wallet token is for local clients only")
		}
		log.Warn("listening on a non-loopback address: put TLS in front of countersign", "addr", ln.Addr().String())
	}
	a.URL = "http://" + ln.Addr().String()
	a.httpSrv = &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	a.httpSrv.RegisterOnShutdown(srv.Svc.EndAgentFeeds) // Shutdown neither waits for nor closes hijacked WebSockets
	return ln, nil
}

// startWorkers runs the background work until Close: the service's
// workers, the daemon's unlock expiry, the local event socket.
func (a *App) startWorkers(ctx context.Context, cfg *Config, svc *core.Service, d *daemon.Service, log *slog.Logger) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	go func() {
		defer close(a.done)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // zero unlocked daemon wallets when their TTL passes, and all at shutdown
			defer wg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					_, _ = d.Lock(context.WithoutCancel(runCtx), "")
					return
				case <-t.C:
					d.Sweep()
				}
			}
		}()
		if cfg.EventsSocket != "" {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := notify.ServeEventSocket(runCtx, cfg.EventsSocket, svc.AllEventsFeed(), log); err != nil {
					log.Warn("event socket", "path", cfg.EventsSocket, "err", err)
				}
			}()
		}
		svc.Run(runCtx)
		wg.Wait()
	}()
}

// Close shuts the server down gracefully: stop accepting, finish requests
// (long polls and event streams are cut after 5 s), stop workers, close.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if a.httpSrv != nil {
		if err := a.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, a.httpSrv.Close())
		}
	}
	if a.cancel != nil {
		a.cancel()
		<-a.done
	}
	errs = append(errs, a.closeAll())
	return errors.Join(errs...)
}

func (a *App) closeAll() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// derivedSigner picks the derived-key signer: a separate process when
// SIGNER_URL is set, in-process when DEV_KEY_SERVICE_MASTER_SECRET is, none
// otherwise. A signer without a service credential is refused: an
// unauthenticated signing oracle is not acceptable even in development.
func derivedSigner(cfg *Config, log *slog.Logger) (countersign.DerivedSigner, error) {
	if cfg.SignerURL == "" && cfg.SignerSecret == "" {
		return nil, nil
	}
	if len(cfg.SignerToken) < 16 {
		return nil, errors.New("the derived-key signer needs SIGNER_TOKEN (at least 16 characters): its /dev routes must not be open")
	}
	if cfg.SignerURL != "" {
		log.Info("derived-key signer: remote", "url", redactURL(cfg.SignerURL))
		return remote.New(cfg.SignerURL, cfg.SignerToken), nil
	}
	d, err := derived.New(cfg.SignerSecret)
	if err != nil {
		return nil, err
	}
	log.Warn("derived-key signer: IN-PROCESS, DEVELOPMENT ONLY — every user key derives from DEV_KEY_SERVICE_MASTER_SECRET; replace with a TEE")
	return d, nil
}

// redactURL drops credentials and query (API keys often live there).
func redactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
			rest = rest[at+1:]
		}
		u = u[:i+3] + rest
	}
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	return u
}

// devChain adapts the embedded chain to the HTTP server's faucet port.
type devChain struct{ c *sim.Chain }

func (d devChain) Info() (string, string, string) {
	return d.c.Faucet.Hex(), d.c.Token.Hex(), d.c.Counter.Hex()
}

func (d devChain) Fund(ctx context.Context, addr string, wei *big.Int) (string, error) {
	h, err := d.c.Fund(ctx, common.HexToAddress(addr), wei)
	return h.Hex(), err
}

func (d devChain) Mint(ctx context.Context, addr string, units *big.Int) (string, error) {
	h, err := d.c.Mint(ctx, common.HexToAddress(addr), units)
	return h.Hex(), err
}
