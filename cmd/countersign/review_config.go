package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign/core"
)

// reviewSettings are serve's settings of what approvers see.
type reviewSettings struct {
	ChainNames map[int64]string
	Tokens     []core.KnownToken
}

// reviewEnvSettings are the environment variables reviewEnv reads.
var reviewEnvSettings = []setting{
	{"CHAIN_NAMES", "", "", "names for chain ids on the review pages, added to the built-in table: 8453=Base,31337=Anvil"},
	{"TOKENS_FILE", "", "", "a JSON file of known tokens [{chain_id, address, symbol, name, decimals}] added to the built-in list (the dev chain's TEST, USDC, USDT, DAI, WETH on the chains countersign knows)"},
}

// maxTokensFile bounds TOKENS_FILE: a token list is kilobytes, not more.
const maxTokensFile = 4 << 20

// reviewEnv reads the review settings. A malformed value stops the server
// at start: a known-token list that silently failed to load would make
// every listed token look unknown, or worse, show nothing amiss.
func reviewEnv(c *Config, env func(...string) string) error {
	if v := strings.TrimSpace(env("CHAIN_NAMES")); v != "" {
		c.Review.ChainNames = map[int64]string{}
		for _, pair := range strings.Split(v, ",") {
			id, name, ok := strings.Cut(strings.TrimSpace(pair), "=")
			n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
			name = strings.TrimSpace(name)
			if !ok || err != nil || n <= 0 || name == "" || len(name) > 64 || core.CheckText("CHAIN_NAMES", name, 64, false) != nil {
				return fmt.Errorf("CHAIN_NAMES: %q is not <chain id>=<name> (a positive id, a name of at most 64 characters)", pair)
			}
			c.Review.ChainNames[n] = name
		}
	}
	if path := env("TOKENS_FILE"); path != "" {
		toks, err := readTokensFile(path)
		if err != nil {
			return fmt.Errorf("TOKENS_FILE: %w", err)
		}
		c.Review.Tokens = toks
	}
	return nil
}

// readTokensFile reads and checks a known-token list.
func readTokensFile(path string) ([]core.KnownToken, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxTokensFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxTokensFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var toks []core.KnownToken
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&toks); err != nil {
		return nil, fmt.Errorf("%s is not a JSON list of {chain_id, address, symbol, name, decimals}: %v", path, err)
	}
	for i, t := range toks {
		a, err := core.ParseAddress("address", t.Address)
		if err != nil || t.ChainID <= 0 || t.Symbol == "" || len(t.Symbol) > 32 || len(t.Name) > 64 ||
			core.CheckText("symbol", t.Symbol, 32, false) != nil || core.CheckText("name", t.Name, 64, false) != nil {
			return nil, fmt.Errorf("entry %d (%q) needs a positive chain_id, an address, a symbol of at most 32 and a name of at most 64 characters", i, t.Symbol)
		}
		toks[i].Address = common.HexToAddress(a.Hex()).Hex()
	}
	return toks, nil
}

// reviewConfig is the service's review configuration.
func reviewConfig(cfg *Config) core.ReviewConfig {
	return core.ReviewConfig{ChainNames: cfg.Review.ChainNames, Tokens: cfg.Review.Tokens}
}
