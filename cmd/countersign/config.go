package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/keys/keystore"
)

// Config is everything serve needs, from flags and environment variables
// (flags win). Its zero value plus defaults() runs on embedded defaults.
type Config struct {
	Addr          string
	DataDir       string
	DB            string
	ChainURL      string
	MasterKeyFile string
	LogFormat     string
	LogLevel      string
	TokenTTL      time.Duration
	PendingTTL    time.Duration
	MFALockout    time.Duration
	MFAMaxFail    int

	HashConcurrency int // PASSWORD_HASH_CONCURRENCY: Argon2id runs at once (default from memory and cores)
	HashQueue       int // PASSWORD_HASH_QUEUE: callers waiting for a slot before 503 (default 4× concurrency)

	PollInterval  time.Duration
	ApprovalWait  time.Duration
	Explorer      string
	SignerSecret  string // DEV_KEY_SERVICE_MASTER_SECRET
	SignerToken   string // SIGNER_TOKEN
	SignerURL     string // SIGNER_URL
	Omni          core.OmniConfig
	SMTPAddr      string
	SMTPFrom      string
	SMTPUser      string
	SMTPPassword  string
	OIDCLoginIss  string
	OIDCLoginAud  string
	OIDCLoginHTTP *http.Client // tests: a client that trusts their TLS issuer
	KeystoreKind  string       // dir (default) | store
	KeystoreDir   string
	UnlockTTL     time.Duration
	DaemonArgon   keystore.Params
	WalletToken   string // WALLET_TOKEN, set by the operator; "" generates DATA_DIR/wallet.token
	WalletAllow   string // WALLET_ALLOW
	WalletHosts   string // WALLET_ALLOWED_HOSTS
	WalletOrigins string // WALLET_ALLOWED_ORIGINS
	MetricsToken  string // METRICS_TOKEN
	WalletChain   string // WALLET_CHAIN: mock (default)
	ExportScryptN int    // scrypt N of exported v3 keystores; 0 is geth's standard 2^18
	EventsSocket  string // "" disables; default DATA_DIR/events.sock
	WebhookAllow  string // WEBHOOK_ALLOW_NETS: CIDRs webhooks may reach although internal
	SignRate      float64
	SignBurst     int
	Argon2        auth.Argon2Params

	Clock countersign.Clock // tests inject one; nil is the wall clock

	Money core.MoneyConfig // MAX_FEE_PER_GAS, RECONCILE_BLOCKS (money_config.go)

	AcceptNewChain   bool              // --accept-new-chain, ACCEPT_NEW_CHAIN=1 (durability.go)
	AllowOpenDataDir bool              // --allow-open-data-dir, ALLOW_OPEN_DATA_DIR=1 (durability.go)
	ExecuteHooks     core.ExecuteHooks // tests: crash points around execute's broadcast

	WebhookDNS core.Resolver // tests: where webhook hosts resolve; nil is the system resolver
}

// parseServeConfig reads serve's flags and environment.
func parseServeConfig(args []string, getenv func(string) string, stderr io.Writer) (*Config, error) {
	c := &Config{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	defAddr := "127.0.0.1:8555"
	if h, p := env("WALLET_BIND"), env("WALLET_PORT"); h != "" || p != "" {
		if h == "" {
			h = "127.0.0.1"
		}
		if p == "" {
			p = "8555"
		}
		defAddr = net.JoinHostPort(h, p)
	}
	fs.StringVar(&c.Addr, "addr", defAddr, "listen address (env WALLET_BIND, WALLET_PORT)")
	fs.StringVar(&c.DataDir, "data-dir", or(env("COUNTERSIGN_DATA_DIR"), "./data"), "state directory (env COUNTERSIGN_DATA_DIR)")
	fs.StringVar(&c.DB, "db", env("DATABASE_URL"), "database: a SQLite file path (default DATA_DIR/countersign.db) (env DATABASE_URL)")
	fs.StringVar(&c.ChainURL, "chain", env("EVM_RPC_URL", "WEB3_PROVIDER_URI"), "EVM JSON-RPC URL; empty runs the embedded dev chain (env EVM_RPC_URL, WEB3_PROVIDER_URI)")
	fs.StringVar(&c.MasterKeyFile, "master-key-file", env("COUNTERSIGN_MASTER_KEY_FILE"), "key-encryption key file (default DATA_DIR/master.key) (env COUNTERSIGN_MASTER_KEY_FILE)")
	fs.StringVar(&c.LogFormat, "log-format", or(env("LOG_FORMAT"), "text"), "text or json (env LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", or(env("LOG_LEVEL"), "info"), "debug, info, warn or error (env LOG_LEVEL)")
	fs.DurationVar(&c.PendingTTL, "pending-ttl", 0, "approval window of a prepared transaction (env PENDING_TTL, default 24h)")
	fs.DurationVar(&c.MFALockout, "mfa-lockout", 0, "lockout after too many wrong MFA codes (env MFA_LOCKOUT, default 15m)")
	fs.DurationVar(&c.PollInterval, "poll-interval", 0, "receipt tracker period (env POLL_INTERVAL, default 1s; 100ms on the embedded chain)")
	fs.StringVar(&c.Explorer, "explorer", env("EXPLORER_URL"), "block explorer base URL for links in the UI, e.g. https://basescan.org (env EXPLORER_URL)")
	fs.DurationVar(&c.ApprovalWait, "approval-wait", 0, "how long /eth signing calls wait for a human (env ETH_RPC_APPROVAL_WAIT, default 2m)")
	fs.StringVar(&c.SignerURL, "signer-url", env("SIGNER_URL"), "a separate derived-key signer (countersign signer) to use instead of the in-process one (env SIGNER_URL)")
	durabilityFlags(fs, c)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := durabilityEnv(fs, c, env); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	c.SignerSecret, c.SignerToken = env("DEV_KEY_SERVICE_MASTER_SECRET"), env("SIGNER_TOKEN")
	c.Omni = core.OmniConfig{ClientID: env("OMNI_CLIENT_ID"), PublicURL: env("PUBLIC_URL"), OIDCIssuer: env("OIDC_ISSUER"), OIDCAudience: env("OIDC_AUDIENCE")}
	if c.Omni.PublicURL == "" {
		c.Omni.PublicURL = "http://" + c.Addr
	}
	c.SMTPAddr, c.SMTPFrom, c.SMTPUser, c.SMTPPassword = env("SMTP_ADDR"), or(env("SMTP_FROM"), "countersign@localhost"), env("SMTP_USERNAME"), env("SMTP_PASSWORD")
	c.OIDCLoginIss, c.OIDCLoginAud = env("OIDC_LOGIN_ISSUER"), env("OIDC_LOGIN_CLIENT_ID")
	c.KeystoreKind, c.KeystoreDir, c.WalletToken = or(env("KEYSTORE"), "dir"), env("KEYSTORE_DIR"), env("WALLET_TOKEN")
	c.WalletAllow = env("WALLET_ALLOW")
	c.WalletHosts, c.WalletOrigins, c.MetricsToken = env("WALLET_ALLOWED_HOSTS"), env("WALLET_ALLOWED_ORIGINS"), env("METRICS_TOKEN")
	c.WalletChain = or(env("WALLET_CHAIN"), "mock")
	c.WebhookAllow = env("WEBHOOK_ALLOW_NETS")
	c.EventsSocket = or(env("EVENTS_SOCKET"), filepath.Join(c.DataDir, "events.sock"))
	if env("EVENTS_SOCKET") == "off" {
		c.EventsSocket = ""
	}
	if v := env("UNLOCK_TTL_SEC"); v != "" {
		var err error
		if c.UnlockTTL, err = envSeconds(v, 120); err != nil {
			return nil, fmt.Errorf("UNLOCK_TTL_SEC: %w", err)
		}
	}
	c.DaemonArgon = keystore.DefaultParams
	for _, a := range []struct {
		name string
		set  func(int)
		max  int
	}{
		{"ARGON_TIME", func(n int) { c.DaemonArgon.Time = uint32(n) }, keystore.MaxTime},
		{"ARGON_MEMORY_MB", func(n int) { c.DaemonArgon.MemoryKiB = uint32(n) << 10 }, keystore.MaxMemoryKiB >> 10},
		{"ARGON_PARALLELISM", func(n int) { c.DaemonArgon.Threads = uint8(n) }, keystore.MaxThreads},
	} {
		if v := env(a.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > a.max {
				return nil, fmt.Errorf("%s must be an integer from 1 to %d", a.name, a.max)
			}
			a.set(n)
		}
	}
	if err := c.DaemonArgon.Check(); err != nil {
		return nil, err
	}
	var err error
	if v := env("SIGN_RATE"); v != "" {
		if c.SignRate, err = strconv.ParseFloat(v, 64); err != nil || c.SignRate <= 0 {
			return nil, fmt.Errorf("SIGN_RATE must be a positive number of signatures per second")
		}
	}
	if v := env("SIGN_BURST"); v != "" {
		if c.SignBurst, err = strconv.Atoi(v); err != nil || c.SignBurst < 1 {
			return nil, fmt.Errorf("SIGN_BURST must be a positive integer")
		}
	}
	if err := parseMoneyConfig(&c.Money, env); err != nil {
		return nil, err
	}
	if c.TokenTTL, err = envSeconds(env("JWT_ACCESS_TOKEN_EXPIRES"), 1800); err != nil {
		return nil, fmt.Errorf("JWT_ACCESS_TOKEN_EXPIRES: %w", err)
	}
	for _, d := range []struct {
		dst  *time.Duration
		name string
	}{{&c.PendingTTL, "PENDING_TTL"}, {&c.MFALockout, "MFA_LOCKOUT"}, {&c.PollInterval, "POLL_INTERVAL"}, {&c.ApprovalWait, "ETH_RPC_APPROVAL_WAIT"}} {
		if *d.dst == 0 && env(d.name) != "" {
			if *d.dst, err = time.ParseDuration(env(d.name)); err != nil || *d.dst <= 0 {
				return nil, fmt.Errorf("%s must be a positive duration such as 30m", d.name)
			}
		}
	}
	if v := env("MFA_MAX_FAILURES"); v != "" {
		if c.MFAMaxFail, err = strconv.Atoi(v); err != nil || c.MFAMaxFail < 1 {
			return nil, fmt.Errorf("MFA_MAX_FAILURES must be a positive integer")
		}
	}
	c.Argon2 = auth.DefaultArgon2
	for _, a := range []struct {
		name string
		set  func(int)
		max  int
	}{
		{"PASSWORD_ARGON_TIME", func(n int) { c.Argon2.Time = uint32(n) }, 16},
		{"PASSWORD_ARGON_MEMORY_MB", func(n int) { c.Argon2.Memory = uint32(n) * 1024 }, 1024},
		{"PASSWORD_ARGON_PARALLELISM", func(n int) { c.Argon2.Threads = uint8(n) }, 16},
		{"PASSWORD_HASH_CONCURRENCY", func(n int) { c.HashConcurrency = n }, 1024},
		{"PASSWORD_HASH_QUEUE", func(n int) { c.HashQueue = n }, 100000},
	} {
		if v := env(a.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > a.max {
				return nil, fmt.Errorf("%s must be an integer from 1 to %d", a.name, a.max)
			}
			a.set(n)
		}
	}
	return c, c.defaults()
}

func (c *Config) defaults() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8555"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return err
	}
	c.DataDir = abs
	if c.DB == "" {
		c.DB = filepath.Join(c.DataDir, "countersign.db")
	}
	if c.MasterKeyFile == "" {
		c.MasterKeyFile = filepath.Join(c.DataDir, "master.key")
	}
	if c.Argon2.Time == 0 {
		c.Argon2 = auth.DefaultArgon2
	}
	if c.KeystoreDir == "" {
		c.KeystoreDir = filepath.Join(c.DataDir, "keystore")
	}
	if c.PollInterval == 0 && c.ChainURL == "" {
		c.PollInterval = 100 * time.Millisecond
	}
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func envSeconds(v string, def int) (time.Duration, error) {
	if v == "" {
		return time.Duration(def) * time.Second, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("must be a positive number of seconds")
	}
	return time.Duration(n) * time.Second, nil
}
