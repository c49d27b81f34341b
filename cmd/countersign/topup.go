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
	"net/url"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/topup/openrouter"
)

// topupSettings are serve's topup settings.
type topupSettings struct {
	OpenRouterKey  redactedString // OPENROUTER_API_KEY: enables the openrouter provider
	OpenRouterURL  string         // OPENROUTER_BASE_URL
	Contract       string         // TOPUP_TRANSFERS_CONTRACT
	MaxCents       int64          // TOPUP_MAX_USD
	AutoProvider   string         // TOPUP_PROVIDER
	AutoAgentID    string         // TOPUP_AGENT_ID
	ThresholdCents int64          // TOPUP_THRESHOLD_USD
	AmountCents    int64          // TOPUP_AMOUNT_USD
	CheckEvery     time.Duration  // TOPUP_CHECK_INTERVAL
}

// redactedString is a secret setting: printing the Config never shows it.
type redactedString string

func (redactedString) String() string   { return "[redacted]" }
func (redactedString) GoString() string { return "[redacted]" }

// topupEnvSettings are the environment variables topupEnv reads.
var topupEnvSettings = []setting{
	{"OPENROUTER_API_KEY", "", "", "OpenRouter API key: turns on the openrouter top-up provider (never logged)"},
	{"OPENROUTER_BASE_URL", "", openrouter.DefaultBaseURL, "OpenRouter's API origin (https; http only on a loopback host)"},
	{"TOPUP_TRANSFERS_CONTRACT", "", "", "the Coinbase Commerce Transfers contract a charge must name (default: the published one on Base 8453 and Base Sepolia 84532; other chains: required)"},
	{"TOPUP_MAX_USD", "", "500", "the largest top-up a request may ask for, in USD"},
	{"TOPUP_THRESHOLD_USD", "", "", "automatic top-up: prepare one when the provider's credits fall below this (USD; with TOPUP_AMOUNT_USD and TOPUP_AGENT_ID)"},
	{"TOPUP_AMOUNT_USD", "", "", "automatic top-up: how much to ask for (USD)"},
	{"TOPUP_AGENT_ID", "", "", "automatic top-up: the agent whose wallet pays (its policy decides each payment)"},
	{"TOPUP_PROVIDER", "", "openrouter", "automatic top-up: the provider whose credits are watched"},
	{"TOPUP_CHECK_INTERVAL", "", "5m", "automatic top-up: how often the provider's credits are read"},
}

// topupEnv reads the topup settings.
func topupEnv(c *Config, env func(...string) string) error {
	t := &c.Topup
	t.OpenRouterKey = redactedString(env("OPENROUTER_API_KEY"))
	t.OpenRouterURL = or(env("OPENROUTER_BASE_URL"), openrouter.DefaultBaseURL)
	if t.OpenRouterKey != "" {
		if _, err := openrouter.New(t.OpenRouterURL, string(t.OpenRouterKey), nil); err != nil {
			return err
		}
	}
	t.Contract = env("TOPUP_TRANSFERS_CONTRACT")
	if t.Contract != "" {
		if _, err := core.ParseAddress("TOPUP_TRANSFERS_CONTRACT", t.Contract); err != nil {
			return err
		}
	}
	usd := func(name string) (int64, error) {
		v := env(name)
		if v == "" {
			return 0, nil
		}
		n, err := countersign.ParseUSD(name, v)
		if err != nil {
			return 0, errors.New(countersign.ErrorDetail(err))
		}
		return n, nil
	}
	var err error
	if t.MaxCents, err = usd("TOPUP_MAX_USD"); err != nil {
		return err
	}
	if t.ThresholdCents, err = usd("TOPUP_THRESHOLD_USD"); err != nil {
		return err
	}
	if t.AmountCents, err = usd("TOPUP_AMOUNT_USD"); err != nil {
		return err
	}
	t.AutoAgentID = env("TOPUP_AGENT_ID")
	t.AutoProvider = or(env("TOPUP_PROVIDER"), openrouter.Name)
	if v := env("TOPUP_CHECK_INTERVAL"); v != "" {
		if t.CheckEvery, err = time.ParseDuration(v); err != nil || t.CheckEvery < time.Second {
			return fmt.Errorf("TOPUP_CHECK_INTERVAL must be a duration of at least 1s, such as 5m")
		}
	}
	// The automatic top-up's three settings go together: two of them alone
	// would be a watch that silently never tops up.
	set := 0
	for _, v := range []bool{t.ThresholdCents > 0, t.AmountCents > 0, t.AutoAgentID != ""} {
		if v {
			set++
		}
	}
	if set != 0 && set != 3 {
		return errors.New("automatic top-ups need all of TOPUP_THRESHOLD_USD, TOPUP_AMOUNT_USD and TOPUP_AGENT_ID")
	}
	if set == 3 && t.AutoProvider == openrouter.Name && t.OpenRouterKey == "" {
		return errors.New("automatic top-ups from openrouter need OPENROUTER_API_KEY")
	}
	return nil
}

// topupConfig is the service's topup configuration.
func topupConfig(cfg *Config) core.TopupConfig {
	t := cfg.Topup
	out := core.TopupConfig{Contract: t.Contract, MaxCents: t.MaxCents, CheckEvery: t.CheckEvery}
	if t.OpenRouterKey != "" {
		p, err := openrouter.New(t.OpenRouterURL, string(t.OpenRouterKey), nil)
		if err != nil {
			out.Invalid = err // topupEnv checked it; a Config built in code reaches here
			return out
		}
		out.Providers = append(out.Providers, p)
	}
	if t.AutoAgentID != "" {
		out.Auto = []core.AutoTopup{{Provider: or(t.AutoProvider, openrouter.Name), AgentID: t.AutoAgentID, ThresholdCents: t.ThresholdCents, AmountCents: t.AmountCents}}
	}
	return out
}

const topupUsage = `Usage: countersign topup [--provider openrouter] --amount-usd N [--wait 2m] [--json]
       countersign topup list [--json]
       countersign topup show ID [--json]

Asks the server for provider credits as an agent (COUNTERSIGN_API_KEY, the
server at COUNTERSIGN_URL): the server gets a charge from the provider and
prepares its payment from the agent's wallet, which the wallet's policy
decides (auto within a budget, a human, a quorum, a delay). --wait waits
that long for the top-up to end (confirmed or failed) or to need a human.`

// topupCmd runs `countersign topup`.
func topupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub := "request"
	if len(args) > 0 && (args[0] == "list" || args[0] == "show") {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("topup", flag.ContinueOnError)
	provider := fs.String("provider", openrouter.Name, "the credit provider")
	amount := fs.String("amount-usd", "", "how much, in US dollars (e.g. 10 or 12.50)")
	wait := fs.Duration("wait", 0, "wait up to this long for the top-up to end or to need a human")
	asJSON := fs.Bool("json", false, "print JSON")
	base := fs.String("url", or(getenv("COUNTERSIGN_URL"), "http://127.0.0.1:8555"), "the server (env COUNTERSIGN_URL)")
	if err := parseFlags(fs, args, stdout, topupUsage, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	key := getenv("COUNTERSIGN_API_KEY")
	if key == "" {
		return errors.New("topup: COUNTERSIGN_API_KEY (the agent's API key) is required")
	}
	c := &agentClient{base: strings.TrimRight(*base, "/"), key: key, http: &http.Client{Timeout: time.Minute}}
	print := func(v core.TopupView) error {
		if *asJSON {
			return json.NewEncoder(stdout).Encode(v)
		}
		fmt.Fprintln(stdout, describeTopup(v))
		return nil
	}
	switch sub {
	case "list":
		if fs.NArg() != 0 {
			return errors.New("topup list: no arguments")
		}
		var out struct {
			Topups []core.TopupView `json:"topups"`
		}
		if err := c.call(ctx, "GET", "/api/topups", nil, &out); err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(out)
		}
		for _, v := range out.Topups {
			fmt.Fprintln(stdout, describeTopup(v))
		}
		return nil
	case "show":
		if fs.NArg() != 1 {
			return errors.New("topup show: give the top-up's id")
		}
		var v core.TopupView
		if err := c.call(ctx, "GET", "/api/topups/"+url.PathEscape(fs.Arg(0)), nil, &v); err != nil {
			return err
		}
		return print(v)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("topup: unexpected argument %q", fs.Arg(0))
	}
	if *amount == "" {
		return errors.New("topup: --amount-usd is required")
	}
	if _, err := countersign.ParseUSD("--amount-usd", *amount); err != nil {
		return errors.New("topup: " + countersign.ErrorDetail(err))
	}
	var v core.TopupView
	if err := c.call(ctx, "POST", "/api/topups", core.TopupRequest{Provider: *provider, AmountUSD: *amount}, &v); err != nil {
		return err
	}
	deadline := time.Now().Add(*wait)
	for *wait > 0 && topupWaits(v) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		if err := c.call(ctx, "GET", "/api/topups/"+v.ID, nil, &v); err != nil {
			return err
		}
	}
	if err := print(v); err != nil {
		return err
	}
	if v.Status == string(countersign.TopupFailed) {
		return errors.New("topup: the top-up failed")
	}
	return nil
}

// topupWaits reports whether a top-up may still end by itself (it has not
// ended, and it is not waiting for a human's decision — that wait could be
// long; the payment request's status says so).
func topupWaits(v core.TopupView) bool {
	return v.Status != string(countersign.TopupConfirmed) && v.Status != string(countersign.TopupFailed)
}

// describeTopup is one line about v for a terminal.
func describeTopup(v core.TopupView) string {
	s := fmt.Sprintf("%s  %s $%s  %s", v.ID, v.Provider, v.AmountUSD, v.Status)
	if v.TransactionID != nil {
		s += "  payment " + *v.TransactionID
	}
	if v.TxHash != nil {
		s += "  tx " + *v.TxHash
	}
	if v.Error != nil {
		s += "\n  " + *v.Error
	}
	return s
}

// agentClient calls the server's REST API with an agent's API key.
type agentClient struct {
	base, key string
	http      *http.Client
}

func (c *agentClient) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-API-KEY", c.key)
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Detail string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, e.Error.Code, e.Error.Detail)
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, res.StatusCode)
	}
	return json.Unmarshal(raw, out)
}
