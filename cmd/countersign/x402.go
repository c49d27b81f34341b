package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/netguard"
)

// x402Settings are serve's x402 settings (docs/X402.md).
type x402Settings struct {
	AllowNets   []netip.Prefix // X402_ALLOW_NETS
	MaxValidity time.Duration  // X402_MAX_VALIDITY
	MaxResponse int64          // X402_MAX_RESPONSE_BYTES
	Timeout     time.Duration  // X402_TIMEOUT
}

// x402EnvSettings are the environment variables x402Env reads.
var x402EnvSettings = []setting{
	{"X402_ALLOW_NETS", "", "", "comma-separated CIDRs x402 fetches may reach although internal (as WEBHOOK_ALLOW_NETS)"},
	{"X402_MAX_VALIDITY", "", "10m", "the longest an x402 payment authorization is valid (validBefore = now + min(maxTimeoutSeconds, this))"},
	{"X402_MAX_RESPONSE_BYTES", "", "4194304", "the largest response body an x402 fetch reads"},
	{"X402_TIMEOUT", "", "30s", "how long each request of an x402 fetch may take"},
}

// x402Env reads the x402 settings.
func x402Env(c *Config, env func(...string) string) error {
	var err error
	if c.X402.AllowNets, err = netguard.ParseAllowNets(env("X402_ALLOW_NETS")); err != nil {
		return fmt.Errorf("X402_ALLOW_NETS: %w", err)
	}
	for _, d := range []struct {
		dst  *time.Duration
		name string
		max  time.Duration
	}{{&c.X402.MaxValidity, "X402_MAX_VALIDITY", 24 * time.Hour}, {&c.X402.Timeout, "X402_TIMEOUT", 10 * time.Minute}} {
		if v := env(d.name); v != "" {
			if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst < time.Second || *d.dst > d.max {
				return fmt.Errorf("%s must be a duration from 1s to %s, such as 10m", d.name, d.max)
			}
		}
	}
	if v := env("X402_MAX_RESPONSE_BYTES"); v != "" {
		if c.X402.MaxResponse, err = strconv.ParseInt(v, 10, 64); err != nil || c.X402.MaxResponse < 1 || c.X402.MaxResponse > 64<<20 {
			return fmt.Errorf("X402_MAX_RESPONSE_BYTES must be a byte count from 1 to %d", 64<<20)
		}
	}
	return nil
}

// x402Config is the service's x402 configuration.
func x402Config(cfg *Config) core.X402Config {
	return core.X402Config{AllowNets: cfg.X402.AllowNets, MaxValidity: cfg.X402.MaxValidity, MaxResponse: cfg.X402.MaxResponse, Timeout: cfg.X402.Timeout}
}

const x402Usage = `Usage: countersign x402 fetch [flags] URL

Fetches URL through the countersign server as the agent of COUNTERSIGN_API_KEY
and pays for it with x402 if it answers 402, within the agent's policy
(POST /api/x402/fetch). The server is COUNTERSIGN_URL (default
http://127.0.0.1:8555). Prints the answer as JSON; while a human decides, the
answer is {"status":"pending","transaction_id":…}: run the same command again
with --transaction-id once it is authorized.`

// headerFlags collects repeated --header "Name: value" flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return "" }
func (h headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return errors.New(`a header is "Name: value"`)
	}
	h[strings.TrimSpace(name)] = strings.TrimSpace(value)
	return nil
}

// x402Cmd runs `countersign x402`.
func x402Cmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "fetch" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(stdout, x402Usage)
			return flag.ErrHelp
		}
		fmt.Fprintln(stderr, x402Usage)
		return errors.New("x402: the only command is fetch")
	}
	fs := flag.NewFlagSet("x402 fetch", flag.ContinueOnError)
	method := fs.String("method", "GET", "the HTTP method")
	headers := headerFlags{}
	fs.Var(headers, "header", `a request header "Name: value" (repeatable)`)
	data := fs.String("data", "", "the request body")
	maxAmount := fs.String("max-amount", "", "the most to pay, in base units of the asset (required to pay)")
	txID := fs.String("transaction-id", "", "resume a payment that was pending approval")
	wait := fs.Duration("wait", 0, "how long the call may take (0: no limit of its own)")
	if err := parseFlags(fs, args[1:], stdout, x402Usage, nil); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("x402 fetch: give exactly one URL (flags go before it)")
	}
	key := getenv("COUNTERSIGN_API_KEY")
	if key == "" {
		return errors.New("x402 fetch: COUNTERSIGN_API_KEY (the agent's API key) is not set")
	}
	base := strings.TrimRight(or(getenv("COUNTERSIGN_URL"), "http://127.0.0.1:8555"), "/")
	body, _ := json.Marshal(core.X402FetchRequest{URL: fs.Arg(0), Method: *method, Headers: headers, Body: *data, MaxAmount: *maxAmount, TransactionID: *txID})
	if *wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *wait)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/x402/fetch", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("x402 fetch: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 96<<20))
	if err != nil {
		return fmt.Errorf("x402 fetch: %w", err)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		out = pretty.Bytes()
	}
	fmt.Fprintln(stdout, string(out))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusAccepted:
		fmt.Fprintln(stderr, "x402 fetch: the payment waits for approval; run again with --transaction-id once it is authorized")
		return nil
	}
	return fmt.Errorf("x402 fetch: the server answered %s", resp.Status)
}
