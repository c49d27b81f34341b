package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/core"
	cshttp "github.com/countersign/countersign/http"
	"github.com/countersign/countersign/keys/keystore"
	"github.com/countersign/countersign/netguard"
	"github.com/countersign/countersign/signer/derived"
)

// Config is everything serve needs, from flags and environment variables
// (flags win). Its zero value plus defaults() runs on embedded defaults.
type Config struct {
	Addr          string
	PprofAddr     string // PPROF_ADDR: runtime profiles on loopback, off when ""
	MemoryTrim    bool   // MEMORY_TRIM: give start-up's and bursts' memory back (footprint_trim.go)
	DataDir       string
	DB            string
	ChainURL      string
	MasterKeyFile string
	KEKURI        string // KEK_URI: an AWS KMS key as the key-encryption key (kek_awskms.go)
	KEKOpenOnly   bool   // KEK_OPEN_ONLY: the KMS key only opens; the file's first key seals
	LogFormat     string
	LogLevel      string
	TokenTTL      time.Duration
	PendingTTL    time.Duration
	AuthorizedTTL time.Duration // AUTHORIZED_TTL: how long an authorized request may wait to be executed
	MFALockout    time.Duration
	MFAMaxFail    int

	HashConcurrency int // PASSWORD_HASH_CONCURRENCY: Argon2id runs at once (default from memory and cores)
	HashQueue       int // PASSWORD_HASH_QUEUE: callers waiting for a slot before 503 (default 4× concurrency)

	PollInterval  time.Duration
	ChainTimeout  time.Duration // CHAIN_TIMEOUT: one call to the chain node (chain/evm retries reads within twice this)
	EventPoll     time.Duration // EVENT_POLL_INTERVAL: PostgreSQL's outbox poll, the fallback of LISTEN/NOTIFY (eventsignal.go)
	NoListen      bool          // tests: no LISTEN/NOTIFY, the outbox poll alone
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

	TrustedProxies string // TRUSTED_PROXIES: load balancers whose X-Forwarded-For names the client

	RepoSpec           string // REPO_SPEC: a repo-spec.yaml whose operator_wallet is checked at start
	OperatorKeystore   string // OPERATOR_KEYSTORE_PATH: the operator's v3 keystore file
	OperatorPassphrase string // OPERATOR_WALLET_PASSPHRASE (never logged)
	OperatorKMSKey     string // OPERATOR_KMS_KEY: the operator's AWS KMS key, awskms://KEY_ID?region=…
	OperatorOwner      string // OPERATOR_OWNER: the username whose wallet the operator keys back

	MetricsToken  string // METRICS_TOKEN
	WalletChain   string // WALLET_CHAIN: mock (default)
	LedgerDB      string // LEDGER_DB: only accepted when it names the main database (validate)
	ExportScryptN int    // scrypt N of exported v3 keystores; 0 is geth's standard 2^18
	EventsSocket  string // "" disables; default DATA_DIR/events.sock
	WebhookAllow  string // WEBHOOK_ALLOW_NETS: CIDRs webhooks may reach although internal
	SignRate      float64
	SignBurst     int
	Argon2        auth.Argon2Params

	Clock countersign.Clock // tests inject one; nil is the wall clock

	DaemonMode     string        // DAEMON_MODE: single (default), sticky or off (daemonguard.go)
	DaemonLeaseTTL time.Duration // tests: the daemon lease's TTL (default 30 s)

	Money core.MoneyConfig // MAX_FEE_PER_GAS, RECONCILE_BLOCKS (money_config.go)

	AcceptNewChain   bool              // --accept-new-chain, ACCEPT_NEW_CHAIN=1 (durability.go)
	AllowOpenDataDir bool              // --allow-open-data-dir, ALLOW_OPEN_DATA_DIR=1 (durability.go)
	ExecuteHooks     core.ExecuteHooks // tests: crash points around execute's broadcast

	WebhookDNS netguard.Resolver // tests: where webhook hosts resolve; nil is the system resolver

	Topup  topupSettings  // credit top-ups (topup.go)
	X402   x402Settings   // x402 payments (x402.go)
	Review reviewSettings // what approvers see (review_config.go)
}

// setting is one environment variable serve reads. serveSettings is the
// one list of them: `serve -h` prints it, and a test checks that every
// name parseServeConfig asks the environment for is in it (and nothing
// else), so a new variable cannot be added without being documented.
type setting struct {
	Env     string // the variable
	Flag    string // the flag that overrides it, "" when there is none
	Default string // "" when unset means off or none
	Help    string
}

var serveSettings = slices.Concat(baseSettings, topupEnvSettings, x402EnvSettings, reviewEnvSettings, pprofEnvSettings, memoryEnvSettings)

// baseSettings are the settings of every area without its own list
// (topup.go, x402.go, review_config.go add theirs).
var baseSettings = []setting{
	{"WALLET_BIND", "--addr", "127.0.0.1", "listen host (loopback by default; put TLS in front for anything else)"},
	{"WALLET_PORT", "--addr", "8555", "listen port"},
	{"COUNTERSIGN_DATA_DIR", "--data-dir", "./data", "state directory: database, master key, keystore, wallet token"},
	{"DATABASE_URL", "--db", "DATA_DIR/countersign.db", "database: a SQLite file path, or postgres://USER:PASSWORD@HOST:5432/DB?sslmode=verify-full for several replicas on one PostgreSQL (migrations run once, under an advisory lock)"},
	{"LEDGER_DB", "", "", "not supported: the mock ledger lives in the main database so a transfer commits with its audit entry; a value other than that database's path stops the start"},
	{"EVM_RPC_URL", "--chain", "", "EVM JSON-RPC URL (http, ws, ipc); empty runs the embedded dev chain"},
	{"CHAIN_TIMEOUT", "", "10s", "timeout of one call to the chain node; reads are retried with backoff on transport errors, 5xx and timeouts (at most twice this in all), a broadcast is never retried (the tracker rebroadcasts)"},
	{"WEB3_PROVIDER_URI", "--chain", "", "the same as EVM_RPC_URL, when that is not set"},
	{"COUNTERSIGN_MASTER_KEY_FILE", "--master-key-file", "DATA_DIR/master.key", "key-encryption key file (32 bytes hex, mode 0600); generated at first start"},
	{"KEK_URI", "--kek-uri", "", "AWS KMS key as the key-encryption key: awskms://KEY_ID?region=REGION[&endpoint=URL] (KEY_ID: key id, ARN or alias/NAME); it seals, the master key file's keys (if any) still open; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, else the AWS SDK's default chain (AWS_PROFILE, SSO, web identity, ECS and EC2 roles)"},
	{"KEK_OPEN_ONLY", "--kek-open-only", "0", "1: the KMS key of KEK_URI only opens and the master key file's first key seals (the staging step of a rotation to or from KMS)"},
	{"LOG_FORMAT", "--log-format", "text", "text or json"},
	{"LOG_LEVEL", "--log-level", "info", "debug, info, warn or error"},
	{"PENDING_TTL", "--pending-ttl", "24h", "approval window of a prepared transaction"},
	{"AUTHORIZED_TTL", "--authorized-ttl", "1h", "an authorized request not executed within this expires (its budget is released)"},
	{"MFA_LOCKOUT", "--mfa-lockout", "15m", "lockout after too many wrong MFA codes in a row"},
	{"MFA_MAX_FAILURES", "", "5", "wrong MFA codes in a row before the lockout"},
	{"POLL_INTERVAL", "--poll-interval", "1s (100ms on the embedded chain)", "receipt tracker and expiry sweeper period"},
	{"EVENT_POLL_INTERVAL", "", "2s", "PostgreSQL only: how often each replica polls the event outbox for other replicas' changes (the fallback of LISTEN/NOTIFY; the most a live update waits when a notification is lost)"},
	{"ETH_RPC_APPROVAL_WAIT", "--approval-wait", "2m", "how long /eth signing calls wait for a human"},
	{"EXPLORER_URL", "--explorer", "", "block explorer base URL for links in the UI, e.g. https://basescan.org"},
	{"SIGNER_URL", "--signer-url", "", "a separate derived-key signer (countersign signer) instead of the in-process one"},
	{"ACCEPT_NEW_CHAIN", "--accept-new-chain", "0", "1: start although the chain is not the one recorded for this data"},
	{"ALLOW_OPEN_DATA_DIR", "--allow-open-data-dir", "0", "1: start although group or others can write to the data directory"},
	{"JWT_ACCESS_TOKEN_EXPIRES", "", "1800", "session token lifetime, seconds"},
	{"KEYSTORE", "", "dir (store with PostgreSQL)", "where wallet keys live: dir (one .kdb file per wallet) or store (the database, so any replica signs)"},
	{"KEYSTORE_DIR", "", "DATA_DIR/keystore", "the keystore directory of KEYSTORE=dir"},
	{"UNLOCK_TTL_SEC", "", "120", "how long an unlocked daemon wallet stays in memory, seconds"},
	{"ARGON_TIME", "", "4", "Argon2id passes of new .kdb files"},
	{"ARGON_MEMORY_MB", "", "256", "Argon2id memory of new .kdb files, MiB"},
	{"ARGON_PARALLELISM", "", "2", "Argon2id lanes of new .kdb files"},
	{"WALLET_TOKEN", "", "generated: DATA_DIR/wallet.token", "the X-Auth-Token the daemon routes require (at least 32 characters)"},
	{"WALLET_CHAIN", "", "mock", "the daemon's ledger adapter: mock (aitbc is refused until that chain has a node)"},
	{"WALLET_ALLOW", "", "", "comma-separated addresses or CIDRs: the only non-loopback clients the daemon answers"},
	{"WALLET_ALLOWED_HOSTS", "", "", "comma-separated Host names the daemon accepts besides loopback"},
	{"WALLET_ALLOWED_ORIGINS", "", "", "comma-separated origins (e.g. chrome-extension://ID) the daemon answers"},
	{"TRUSTED_PROXIES", "", "", "comma-separated addresses or CIDRs of the load balancers in front: for their requests the client is the rightmost untrusted X-Forwarded-For address"},
	{"REPO_SPEC", "", "", "a repo-spec.yaml: its operator_wallet must be valid, on this chain, and its signer's address must be the spec's, or the server refuses to start"},
	{"OPERATOR_KEYSTORE_PATH", "", "", "the operator wallet's Web3 v3 keystore file (countersign keygen writes one), decrypted once at start"},
	{"OPERATOR_WALLET_PASSPHRASE", "", "", "the passphrase of OPERATOR_KEYSTORE_PATH (an environment variable only; never logged)"},
	{"OPERATOR_KMS_KEY", "", "", "the operator wallet's AWS KMS key (ECC_SECG_P256K1, SIGN_VERIFY): awskms://KEY_ID?region=REGION[&endpoint=URL]; it signs, the key never leaves KMS"},
	{"OPERATOR_OWNER", "", "", "the username whose wallet (named operator) each loaded operator key backs, created at the first start; unset: the keys back no wallet"},
	{"METRICS_TOKEN", "", "", "bearer token /metrics requires from everyone (at least 32 characters); unset: loopback only"},
	{"EVENTS_SOCKET", "", "DATA_DIR/events.sock", "Unix socket streaming every event as NDJSON (off disables)"},
	{"SIGN_RATE", "", "100", "daemon signatures per second (429 RATE_LIMIT beyond)"},
	{"SIGN_BURST", "", "200", "daemon signature burst"},
	{"DAEMON_MODE", "", "single", "where the wallet daemon's routes run on several replicas (PostgreSQL): single (the replica holding the daemon lease; the others answer 503 naming it), sticky (every replica; route each daemon client to one) or off (404 everywhere)"},
	{"WEBHOOK_ALLOW_NETS", "", "", "comma-separated CIDRs webhooks may reach although internal"},
	{"MAX_FEE_PER_GAS", "", "500gwei", "cap on every transaction's fee per gas (wei, or with a gwei suffix)"},
	{"RECONCILE_BLOCKS", "", "2000", "how far back execute looks on chain when the nonce is ahead of the record"},
	{"CONFIRMATIONS", "", "1", "blocks a receipt needs before a transaction is confirmed or failed (1 suits the dev chain; 12 or more on mainnets, per the L2's finality elsewhere)"},
	{"REPLACE_AFTER", "", "3m", "how long a submitted transaction may stay unmined before it is replaced with bumped fees within its approval (0: never)"},
	{"REORG_WINDOW", "", "64", "how many blocks back confirmed transactions are rechecked for a reorg that removed them (at least CONFIRMATIONS)"},
	{"DEV_KEY_SERVICE_MASTER_SECRET", "", "", "DEV ONLY: enables the in-process derived-key signer (/dev/*); 64 hex digits"},
	{"SIGNER_TOKEN", "", "", "service credential the /dev/* routes require (at least 16 characters)"},
	{"OMNI_CLIENT_ID", "", "countersign", "client_id of omni_account"},
	{"PUBLIC_URL", "", "http://ADDR", "this server as users reach it (SIWE domain and URI; https makes cookies Secure)"},
	{"OIDC_ISSUER", "", "", "enables minting OIDC JWTs: the https issuer URL clouds fetch"},
	{"OIDC_AUDIENCE", "", "sts.amazonaws.com", "aud of minted OIDC JWTs"},
	{"SMTP_ADDR", "", "", "SMTP server host:port for email login codes"},
	{"SMTP_FROM", "", "countersign@localhost", "sender of email login codes"},
	{"SMTP_USERNAME", "", "", "SMTP user"},
	{"SMTP_PASSWORD", "", "", "SMTP password"},
	{"OIDC_LOGIN_ISSUER", "", "", "OIDC login with ID tokens from this issuer"},
	{"OIDC_LOGIN_CLIENT_ID", "", "", "the aud the OIDC login issuer's ID tokens carry (needed with OIDC_LOGIN_ISSUER)"},
	{"PASSWORD_ARGON_TIME", "", "3", "Argon2id passes of new password hashes"},
	{"PASSWORD_ARGON_MEMORY_MB", "", "64", "Argon2id memory of new password hashes, MiB"},
	{"PASSWORD_ARGON_PARALLELISM", "", "2", "Argon2id lanes of new password hashes"},
	{"PASSWORD_HASH_CONCURRENCY", "", "from memory and cores", "Argon2id computations at once"},
	{"PASSWORD_HASH_QUEUE", "", "4 x concurrency", "requests that may wait for a hashing slot before 503"},
}

// printSettings writes serveSettings as the environment part of serve -h.
func printSettings(w io.Writer) {
	fmt.Fprintln(w, "\nEnvironment variables (a flag wins over its variable):")
	for _, s := range serveSettings {
		line := "  " + s.Env
		if s.Flag != "" {
			line += " (" + s.Flag + ")"
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, s.Help)
		if s.Default != "" {
			fmt.Fprintf(w, " (default %s)", s.Default)
		}
		fmt.Fprintln(w)
	}
}

const serveSynopsis = `Usage: countersign serve [flags]

Runs the server. With no flags and no environment it starts on embedded
defaults: SQLite in ./data, an in-process EVM dev chain, a generated master
key, bound to 127.0.0.1:8555.`

// parseServeConfig reads serve's flags and environment. With -h it writes
// serve's usage (flags and every environment variable) to helpOut and
// returns flag.ErrHelp.
func parseServeConfig(args []string, getenv func(string) string, helpOut io.Writer) (*Config, error) {
	c := &Config{}
	env := firstEnv(getenv)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, c, env)
	durabilityFlags(fs, c)
	kekFlags(fs, c, env) // kek_awskms.go
	if err := parseFlags(fs, args, helpOut, serveSynopsis, printSettings); err != nil {
		return nil, err
	}
	if err := durabilityEnv(fs, c, env); err != nil {
		return nil, err
	}
	if err := kekEnv(fs, c, env); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	serveStringEnv(c, env)
	if err := daemonEnv(c, env); err != nil {
		return nil, err
	}
	if err := parseMoneyConfig(&c.Money, env); err != nil {
		return nil, err
	}
	if err := parseTrackingConfig(&c.Money, env); err != nil { // tracking_config.go
		return nil, err
	}
	if err := serviceEnv(c, env); err != nil {
		return nil, err
	}
	if err := topupEnv(c, env); err != nil { // topup.go
		return nil, err
	}
	if err := x402Env(c, env); err != nil { // x402.go
		return nil, err
	}
	if err := reviewEnv(c, env); err != nil { // review_config.go
		return nil, err
	}
	if err := pprofEnv(c, env); err != nil { // pprof.go
		return nil, err
	}
	if err := memoryEnv(c, env); err != nil { // footprint_trim.go
		return nil, err
	}
	return c, c.defaults()
}

// firstEnv returns a lookup of the first of several variable names that
// is set (a setting with an alias, such as EVM_RPC_URL and WEB3_PROVIDER_URI).
func firstEnv(getenv func(string) string) func(names ...string) string {
	return func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
}

// serveFlags defines serve's flags, each defaulting to its variable.
func serveFlags(fs *flag.FlagSet, c *Config, env func(...string) string) {
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
	fs.StringVar(&c.DB, "db", env("DATABASE_URL"), "database: a SQLite file path (default DATA_DIR/countersign.db) or a postgres:// URL (env DATABASE_URL)")
	fs.StringVar(&c.ChainURL, "chain", env("EVM_RPC_URL", "WEB3_PROVIDER_URI"), "EVM JSON-RPC URL; empty runs the embedded dev chain (env EVM_RPC_URL, WEB3_PROVIDER_URI)")
	fs.StringVar(&c.MasterKeyFile, "master-key-file", env("COUNTERSIGN_MASTER_KEY_FILE"), "key-encryption key file (default DATA_DIR/master.key) (env COUNTERSIGN_MASTER_KEY_FILE)")
	fs.StringVar(&c.LogFormat, "log-format", or(env("LOG_FORMAT"), "text"), "text or json (env LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", or(env("LOG_LEVEL"), "info"), "debug, info, warn or error (env LOG_LEVEL)")
	fs.DurationVar(&c.PendingTTL, "pending-ttl", 0, "approval window of a prepared transaction (env PENDING_TTL, default 24h)")
	fs.DurationVar(&c.AuthorizedTTL, "authorized-ttl", 0, "an authorized request not executed within this expires (env AUTHORIZED_TTL, default 1h)")
	fs.DurationVar(&c.MFALockout, "mfa-lockout", 0, "lockout after too many wrong MFA codes (env MFA_LOCKOUT, default 15m)")
	fs.DurationVar(&c.PollInterval, "poll-interval", 0, "receipt tracker period (env POLL_INTERVAL, default 1s; 100ms on the embedded chain)")
	fs.StringVar(&c.Explorer, "explorer", env("EXPLORER_URL"), "block explorer base URL for links in the UI, e.g. https://basescan.org (env EXPLORER_URL)")
	fs.DurationVar(&c.ApprovalWait, "approval-wait", 0, "how long /eth signing calls wait for a human (env ETH_RPC_APPROVAL_WAIT, default 2m)")
	fs.StringVar(&c.SignerURL, "signer-url", env("SIGNER_URL"), "a separate derived-key signer (countersign signer) to use instead of the in-process one (env SIGNER_URL)")
}

// serveStringEnv reads the settings that are environment only and taken
// as they are (no parsing to fail).
func serveStringEnv(c *Config, env func(...string) string) {
	c.SignerSecret, c.SignerToken = env("DEV_KEY_SERVICE_MASTER_SECRET"), env("SIGNER_TOKEN")
	c.Omni = core.OmniConfig{ClientID: env("OMNI_CLIENT_ID"), PublicURL: env("PUBLIC_URL"), OIDCIssuer: env("OIDC_ISSUER"), OIDCAudience: env("OIDC_AUDIENCE")}
	if c.Omni.PublicURL == "" {
		c.Omni.PublicURL = "http://" + c.Addr
	}
	c.SMTPAddr, c.SMTPFrom, c.SMTPUser, c.SMTPPassword = env("SMTP_ADDR"), or(env("SMTP_FROM"), "countersign@localhost"), env("SMTP_USERNAME"), env("SMTP_PASSWORD")
	c.OIDCLoginIss, c.OIDCLoginAud = env("OIDC_LOGIN_ISSUER"), env("OIDC_LOGIN_CLIENT_ID")
	c.KeystoreKind, c.KeystoreDir, c.WalletToken = env("KEYSTORE"), env("KEYSTORE_DIR"), env("WALLET_TOKEN") // default in defaults
	c.WalletAllow = env("WALLET_ALLOW")
	c.WalletHosts, c.WalletOrigins, c.MetricsToken = env("WALLET_ALLOWED_HOSTS"), env("WALLET_ALLOWED_ORIGINS"), env("METRICS_TOKEN")
	c.TrustedProxies = env("TRUSTED_PROXIES")
	c.RepoSpec, c.OperatorKeystore, c.OperatorPassphrase = env("REPO_SPEC"), env("OPERATOR_KEYSTORE_PATH"), env("OPERATOR_WALLET_PASSPHRASE")
	c.OperatorKMSKey, c.OperatorOwner = env("OPERATOR_KMS_KEY"), env("OPERATOR_OWNER")
	c.WalletChain = or(env("WALLET_CHAIN"), "mock")
	c.DaemonMode = or(env("DAEMON_MODE"), daemonSingle)
	c.LedgerDB = env("LEDGER_DB")
	c.WebhookAllow = env("WEBHOOK_ALLOW_NETS")
	c.EventsSocket = or(env("EVENTS_SOCKET"), filepath.Join(c.DataDir, "events.sock"))
	if env("EVENTS_SOCKET") == "off" {
		c.EventsSocket = ""
	}
}

// intSetting is an integer variable from 1 to max.
type intSetting struct {
	name string
	set  func(int)
	max  int
}

// intEnv reads each set variable of list, in order, and refuses the first
// one that is not an integer from 1 to its max.
func intEnv(env func(...string) string, list []intSetting) error {
	for _, a := range list {
		if v := env(a.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > a.max {
				return fmt.Errorf("%s must be an integer from 1 to %d", a.name, a.max)
			}
			a.set(n)
		}
	}
	return nil
}

// daemonEnv reads the wallet daemon's settings: unlock TTL, the
// keystore's Argon2id cost and the signing rate limit.
func daemonEnv(c *Config, env func(...string) string) error {
	if v := env("UNLOCK_TTL_SEC"); v != "" {
		var err error
		if c.UnlockTTL, err = envSeconds(v, 120); err != nil {
			return fmt.Errorf("UNLOCK_TTL_SEC: %w", err)
		}
	}
	c.DaemonArgon = keystore.DefaultParams
	if err := intEnv(env, []intSetting{
		{"ARGON_TIME", func(n int) { c.DaemonArgon.Time = uint32(n) }, keystore.MaxTime},
		{"ARGON_MEMORY_MB", func(n int) { c.DaemonArgon.MemoryKiB = uint32(n) << 10 }, keystore.MaxMemoryKiB >> 10},
		{"ARGON_PARALLELISM", func(n int) { c.DaemonArgon.Threads = uint8(n) }, keystore.MaxThreads},
	}); err != nil {
		return err
	}
	if err := c.DaemonArgon.Check(); err != nil {
		return err
	}
	var err error
	if v := env("SIGN_RATE"); v != "" {
		if c.SignRate, err = strconv.ParseFloat(v, 64); err != nil || c.SignRate <= 0 {
			return fmt.Errorf("SIGN_RATE must be a positive number of signatures per second")
		}
	}
	if v := env("SIGN_BURST"); v != "" {
		if c.SignBurst, err = strconv.Atoi(v); err != nil || c.SignBurst < 1 {
			return fmt.Errorf("SIGN_BURST must be a positive integer")
		}
	}
	return nil
}

// serviceEnv reads the API service's settings: token lifetime, the
// durations a flag did not set, MFA lockout and password hashing.
func serviceEnv(c *Config, env func(...string) string) error {
	var err error
	if c.TokenTTL, err = envSeconds(env("JWT_ACCESS_TOKEN_EXPIRES"), 1800); err != nil {
		return fmt.Errorf("JWT_ACCESS_TOKEN_EXPIRES: %w", err)
	}
	for _, d := range []struct {
		dst  *time.Duration
		name string
	}{{&c.PendingTTL, "PENDING_TTL"}, {&c.AuthorizedTTL, "AUTHORIZED_TTL"}, {&c.MFALockout, "MFA_LOCKOUT"}, {&c.PollInterval, "POLL_INTERVAL"}, {&c.ApprovalWait, "ETH_RPC_APPROVAL_WAIT"}, {&c.EventPoll, "EVENT_POLL_INTERVAL"}, {&c.ChainTimeout, "CHAIN_TIMEOUT"}} {
		if *d.dst == 0 && env(d.name) != "" {
			if *d.dst, err = time.ParseDuration(env(d.name)); err != nil || *d.dst <= 0 {
				return fmt.Errorf("%s must be a positive duration such as 30m", d.name)
			}
		}
	}
	if c.EventPoll > 0 && c.EventPoll < 100*time.Millisecond { // each replica reads the outbox this often
		return fmt.Errorf("EVENT_POLL_INTERVAL must be at least 100ms")
	}
	if v := env("MFA_MAX_FAILURES"); v != "" {
		if c.MFAMaxFail, err = strconv.Atoi(v); err != nil || c.MFAMaxFail < 1 {
			return fmt.Errorf("MFA_MAX_FAILURES must be a positive integer")
		}
	}
	c.Argon2 = auth.DefaultArgon2
	return intEnv(env, []intSetting{
		{"PASSWORD_ARGON_TIME", func(n int) { c.Argon2.Time = uint32(n) }, 16},
		{"PASSWORD_ARGON_MEMORY_MB", func(n int) { c.Argon2.Memory = uint32(n) * 1024 }, 1024},
		{"PASSWORD_ARGON_PARALLELISM", func(n int) { c.Argon2.Threads = uint8(n) }, 16},
		{"PASSWORD_HASH_CONCURRENCY", func(n int) { c.HashConcurrency = n }, 1024},
		{"PASSWORD_HASH_QUEUE", func(n int) { c.HashQueue = n }, 100000},
	})
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
	if c.KeystoreKind == "" {
		// On PostgreSQL the keys live in the database too, so every replica
		// signs with them (a directory is one machine's).
		c.KeystoreKind = "dir"
		if isPostgres(c.DB) {
			c.KeystoreKind = "store"
		}
	}
	if c.PollInterval == 0 && c.ChainURL == "" {
		c.PollInterval = 100 * time.Millisecond
	}
	return nil
}

// validate checks every setting that can be checked without the disk or
// the network. Start calls it first, so a setting that would stop the
// start later stops it before anything is created: no master key, wallet
// token or database file is left behind by a start that was refused.
func (c *Config) validate() error {
	if err := checkDB(c.DB); err != nil {
		return err
	}
	if err := checkKEK(c.KEKURI, c.KEKOpenOnly); err != nil { // kek_awskms.go
		return err
	}
	if c.LedgerDB != "" {
		// The mock ledger's balances and transfers are rows of the main
		// database, written in the same transaction as their audit
		// entries; a second file would let a transfer commit without its
		// audit entry (or the reverse). Ignoring the variable would leave
		// the operator looking for a ledger file that is never written.
		l, errL := filepath.Abs(strings.TrimPrefix(c.LedgerDB, "sqlite://"))
		d, errD := filepath.Abs(sqlitePath(c.DB))
		if errL != nil || errD != nil || sqlitePath(c.DB) == "" || l != d {
			return fmt.Errorf("LEDGER_DB is not supported: the mock ledger is kept in the main database (%s) so each transfer commits with its audit entry; unset LEDGER_DB (or set it to that database's path)", redactDB(c.DB))
		}
	}
	switch c.KeystoreKind {
	case "", "dir", "store":
	default:
		return fmt.Errorf("KEYSTORE must be dir or store, not %q", c.KeystoreKind)
	}
	switch c.WalletChain {
	case "", "mock":
	case "aitbc":
		return errors.New("WALLET_CHAIN=aitbc: there is no AITBC node adapter yet (the chain has no RPC to talk to); use WALLET_CHAIN=mock")
	default:
		return fmt.Errorf("WALLET_CHAIN must be mock (or, later, aitbc), not %q", c.WalletChain)
	}
	if c.OIDCLoginIss != "" && c.OIDCLoginAud == "" {
		return errors.New("OIDC_LOGIN_ISSUER needs OIDC_LOGIN_CLIENT_ID (the aud its ID tokens carry)")
	}
	if c.WalletToken != "" {
		if err := cshttp.CheckTokenStrength("WALLET_TOKEN", c.WalletToken); err != nil {
			return err
		}
	}
	if c.MetricsToken != "" {
		if err := cshttp.CheckTokenStrength("METRICS_TOKEN", c.MetricsToken); err != nil {
			return err
		}
	}
	if c.SignerURL != "" || c.SignerSecret != "" {
		if len(c.SignerToken) < 16 {
			return errors.New("the derived-key signer needs SIGNER_TOKEN (at least 16 characters): its /dev routes must not be open")
		}
		if c.SignerURL == "" {
			if _, err := derived.New(c.SignerSecret); err != nil {
				return fmt.Errorf("DEV_KEY_SERVICE_MASTER_SECRET: %w", err)
			}
		}
	}
	if _, err := netguard.ParseAllowNets(c.WebhookAllow); err != nil {
		return err
	}
	if _, err := cshttp.ParseAllowList(c.WalletAllow); err != nil {
		return err
	}
	if _, err := cshttp.ParseHostList(c.WalletHosts); err != nil {
		return err
	}
	if _, err := cshttp.ParseOriginList(c.WalletOrigins); err != nil {
		return err
	}
	if _, err := cshttp.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return err
	}
	return checkDaemonMode(c.DaemonMode) // daemonguard.go
}

// checkDB refuses a database this build cannot open: a PostgreSQL URL
// that does not parse, and any other URL than postgres://, postgresql://
// and sqlite:// — a mistyped scheme (Postgres://, pg://) would otherwise
// be taken for a SQLite file name, its password in the path and the log,
// and each replica would run on a database of its own. Told without
// quoting the value: it may hold a password.
func checkDB(db string) error {
	if isPostgres(db) {
		return checkPostgresURL(db) // store_postgres.go
	}
	if scheme, _, ok := strings.Cut(db, "://"); ok && scheme != "sqlite" {
		if len(scheme) > 16 || strings.ContainsAny(scheme, ":@/?#") {
			scheme = "this"
		} else {
			scheme = strconv.Quote(scheme)
		}
		return fmt.Errorf("DATABASE_URL: the %s scheme is not a database countersign opens: use postgres://USER:PASSWORD@HOST:5432/DB (lowercase postgres:// or postgresql://) for PostgreSQL, or a file path (or sqlite://PATH) for SQLite", scheme)
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
