// Command countersign is the countersigned agent wallet server.
//
//	countersign serve          run the server (embedded defaults: SQLite, dev chain)
//	countersign audit verify   check every audit hash chain (--checkpoint FILE: and a signed checkpoint)
//	countersign audit checkpoint  print the chain heads signed with the audit key
//	countersign backup / restore  a consistent SQLite backup while serving; restore into an empty data dir
//	countersign rotate-master-key re-wrap every sealed data key under a new master key
//	countersign keygen         a new key as an encrypted v3 keystore file
//	countersign keystore       a v3 keystore file into a countersigned wallet, or a wallet's key out
//	countersign version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/countersign/countersign/core"
	cshttp "github.com/countersign/countersign/http"
	csmcp "github.com/countersign/countersign/mcp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// version is empty unless a release build stamps it (-ldflags "-X
// main.version=…", deploy/build.sh); buildVersion then reads the build
// info. `countersign version` and GET /about both print buildVersion, so
// they cannot disagree.
var version = ""

// buildVersion is the stamped version, else the main module's version from
// the build info (a tag or pseudo-version when built from a git checkout),
// else "dev" (go run, go test: "(devel)").
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "countersign:", err)
		os.Exit(1)
	}
}

// parseFlags parses a subcommand's flags. -h (-help, --help) prints the
// command's synopsis, its flags and, with extra, more (serve's environment
// variables) to stdout and returns flag.ErrHelp, which run turns into
// success: asking for help is not an error. A bad flag is an error that
// names it; the flag package's own printing is silenced so the message
// appears once.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, synopsis string, extra func(io.Writer)) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, synopsis)
		fmt.Fprintln(stdout, "\nFlags:")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		if extra != nil {
			extra(stdout)
		}
		return flag.ErrHelp
	}
	if err != nil {
		return fmt.Errorf("%s: %w (run \"countersign %s -h\" for its flags)", fs.Name(), err, fs.Name())
	}
	return nil
}

// isHelp reports whether args asks for help before any subcommand word.
func isHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help")
}

const usage = `countersign — a wallet server for AI agents in which a human countersigns every spend.

Usage:
  countersign serve [flags]        run the server (no flags: embedded defaults)
  countersign audit verify [--checkpoint FILE] [flags]
                                   verify the hash chains of the audit log (and that nothing in a checkpoint is gone)
  countersign audit checkpoint [flags]
                                   print every chain's head signed with the server's audit key (keep it elsewhere)
  countersign wallet create|import|list|unlock|derive|export
                                   the local wallet daemon's wallets (env COUNTERSIGN_URL; the token from
                                   WALLET_TOKEN, else DATA_DIR/wallet.token: --data-dir, COUNTERSIGN_DATA_DIR)
  countersign sign message --account ID (--text T | --base64 B)
                                   sign with a daemon account
  countersign bench [--scenario S,…|all] [--spawn | --url U] [--connections N] [--duration D] [--json]
                                   requests/s, p50/p90/p99, server CPU and RSS per scenario, as ratios
                                   (bench footprint: RSS idle, under load, after logins; size; cold start)
  countersign load [--curve C] [--connections N] [--duration D] [--account ID]
                                   signing throughput over HTTP next to the in-process rate (older; see bench)
  countersign login --email E | --oidc-token T [--role-arn ARN]
                                   sign in, link the derived wallet, SIWE, mint an OIDC JWT (and AWS credentials)
  countersign signer [--addr A]    the derived-key signer alone (DEV ONLY; env DEV_KEY_SERVICE_MASTER_SECRET, SIGNER_TOKEN)
  countersign mcp                  MCP server on stdio for an agent (env COUNTERSIGN_API_KEY, COUNTERSIGN_URL)
  countersign topup [--provider openrouter] --amount-usd N [--wait D] | topup list | topup show ID
                                   buy provider credits as an agent, paid within the policy (env COUNTERSIGN_API_KEY, COUNTERSIGN_URL)
  countersign x402 fetch [--method M] [--header H] [--data D] [--max-amount N] URL
                                   fetch a URL and pay for it with x402 within the policy (env COUNTERSIGN_API_KEY, COUNTERSIGN_URL)
  countersign backup --out FILE    a consistent backup of a SQLite server while it serves (secrets stay sealed; no master key)
  countersign restore --from FILE [--data-dir DIR]
                                   restore a backup into a new or empty data directory, verified before it is put in place
  countersign rotate-master-key [--new-key-file FILE] [--check] [--retire]
                                   re-wrap every sealed data key under a new master key while serving; resumable, audited
  countersign spec validate FILE  check repo-spec.yaml's operator_wallet section, with line-numbered errors
  countersign keygen [--out FILE] [--kdf standard|light]
                                   a new key as an encrypted v3 keystore file (env OPERATOR_KEYSTORE_PATH, OPERATOR_WALLET_PASSPHRASE)
  countersign keystore import FILE | export ADDRESS --out FILE
                                   a v3 keystore file into a new countersigned wallet, or a wallet's key out (password + TOTP)
  countersign version              print the version
  countersign help                 this text

Run "countersign serve -h" for the server's flags and environment variables.
`

const auditUsage = `Usage:
  countersign audit verify [--checkpoint FILE] [--data-dir DIR] [--db PATH]
  countersign audit checkpoint [--data-dir DIR] [--db PATH] [--master-key-file FILE]

Run "countersign audit verify -h" or "countersign audit checkpoint -h" for each.`

const mcpUsage = `Usage: countersign mcp

Serves MCP on stdio for an agent's MCP host, forwarding to a running server.

Environment variables:
  COUNTERSIGN_URL        the server (default http://127.0.0.1:8555)
  COUNTERSIGN_API_KEY    the agent's API key`

// run is main without the process: the tests drive it. Help (-h on any
// command) returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("a command is required")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "audit":
		if isHelp(args[1:]) {
			fmt.Fprintln(stdout, auditUsage)
			return nil
		}
		if len(args) >= 2 && args[1] == "checkpoint" {
			return auditCheckpoint(ctx, args[2:], getenv, stdout, stderr)
		}
		if len(args) < 2 || args[1] != "verify" {
			return errors.New(`usage: countersign audit verify [--checkpoint FILE] [--data-dir DIR] [--db PATH] | audit checkpoint [--data-dir DIR] [--db PATH]`)
		}
		return auditVerify(ctx, args[2:], getenv, stdout, stderr)
	case "wallet":
		return walletCmd(ctx, args[1:], getenv, stdout, stderr)
	case "sign":
		return signCmd(ctx, args[1:], getenv, stdout, stderr)
	case "load":
		return loadCmd(ctx, args[1:], getenv, stdout, stderr)
	case "login":
		return loginCmd(ctx, args[1:], getenv, stdout, stderr)
	case "signer":
		return signerCmd(ctx, args[1:], getenv, stdout, stderr)
	case "backup":
		return backupCmd(ctx, args[1:], getenv, stdout, stderr) // backup.go
	case "restore":
		return restoreCmd(ctx, args[1:], getenv, stdout, stderr) // backup.go
	case "spec":
		return specCmd(args[1:], stdout, stderr) // operator.go
	case "keygen":
		return keygenCmd(args[1:], getenv, stdout, stderr) // keygen.go
	case "keystore":
		return keystoreCmd(ctx, args[1:], getenv, stdout, stderr) // keygen.go
	case "x402":
		return x402Cmd(ctx, args[1:], getenv, stdout, stderr) // x402.go
	case "topup":
		return topupCmd(ctx, args[1:], getenv, stdout, stderr) // topup.go
	case "bench":
		return benchCmd(ctx, args[1:], getenv, stdout, stderr) // bench.go
	case "rotate-master-key":
		return rotateCmd(ctx, args[1:], getenv, stdout, stderr) // rotate.go
	case "mcp":
		// stdio MCP server for MCP hosts: forwards to a running server.
		if err := parseFlags(flag.NewFlagSet("mcp", flag.ContinueOnError), args[1:], stdout, mcpUsage, nil); err != nil {
			return err
		}
		url := getenv("COUNTERSIGN_URL")
		if url == "" {
			url = "http://127.0.0.1:8555"
		}
		return csmcp.Proxy(ctx, url, getenv("COUNTERSIGN_API_KEY"), &sdk.StdioTransport{})
	case "version", "--version":
		if err := parseFlags(flag.NewFlagSet("version", flag.ContinueOnError), args[1:], stdout, "Usage: countersign version\n\nPrints the version (the same as GET /about's).", nil); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "countersign", buildVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text", "":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: use text or json", format)
	}
	return slog.New(cshttp.LogHandler{Handler: h}), nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	app, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	if cfg.MemoryTrim {
		startFootprintTrim(ctx, log) // footprint_trim.go: give back what start-up made resident
	}
	<-ctx.Done()
	log.Info("shutting down")
	if err := app.Close(); err != nil {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}

func auditVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	checkpoint := fs.String("checkpoint", "", "also check a checkpoint file (from audit checkpoint or GET /api/audit/checkpoint): nothing in it may be gone")
	cfg := auditFlags(fs, getenv, false)
	if err := parseFlags(fs, args, stdout, "Usage: countersign audit verify [flags]\n\nChecks every audit hash chain in the database (a deleted, inserted or edited row breaks it).", nil); err != nil {
		return err
	}
	if err := auditArgs(fs, cfg); err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := core.VerifyAudit(ctx, st)
	if err != nil {
		return fmt.Errorf("audit chain BROKEN after %d good entries: %w", n, err)
	}
	if *checkpoint != "" {
		heads, err := verifyCheckpointFile(ctx, st, *checkpoint)
		if err != nil {
			return fmt.Errorf("audit chain BROKEN against checkpoint %s: %w", *checkpoint, err)
		}
		fmt.Fprintf(stdout, "audit chain OK: %d entries verified, checkpoint of %d chain heads intact\n", n, heads)
		return nil
	}
	fmt.Fprintf(stdout, "audit chain OK: %d entries verified\n", n)
	return nil
}

// signerCmd runs the derived-key signer as its own process: only the /dev/*
// routes, the boundary a TEE worker will take over (same wire shape).
func signerCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("signer", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8556", "listen address")
	format := fs.String("log-format", "text", "text or json")
	if err := parseFlags(fs, args, stdout, `Usage: countersign signer [flags]

Runs the derived-key signer alone (DEV ONLY): the /dev/* routes.

Environment variables:
  DEV_KEY_SERVICE_MASTER_SECRET  the master secret every key derives from (64 hex digits; required)
  SIGNER_TOKEN                   the service credential callers send (at least 16 characters; required)`, nil); err != nil {
		return err
	}
	log, err := newLogger(*format, "info", stderr)
	if err != nil {
		return err
	}
	if getenv("DEV_KEY_SERVICE_MASTER_SECRET") == "" {
		return errors.New("DEV_KEY_SERVICE_MASTER_SECRET is not set: the signer refuses to start without its master secret")
	}
	d, err := derivedSigner(&Config{SignerSecret: getenv("DEV_KEY_SERVICE_MASTER_SECRET"), SignerToken: getenv("SIGNER_TOKEN")}, log)
	if err != nil {
		return err
	}
	srv := cshttp.NewSignerServer(d, getenv("SIGNER_TOKEN"), log, prometheus.NewRegistry())
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.SignerHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	log.Info("countersign signer is serving (DEV ONLY)", "url", "http://"+ln.Addr().String())
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
