package core

import (
	"strconv"
	"strings"
)

// ReviewConfig is what the review of a request shows an approver besides
// the request itself: names for chains and the list of known tokens.
type ReviewConfig struct {
	// ChainNames add to (or override) the built-in table of well-known
	// chains (CHAIN_NAMES).
	ChainNames map[int64]string
	// Tokens add to the built-in known-token list (TOKENS_FILE).
	Tokens []KnownToken
}

// KnownToken is one entry of the known-token list: a token an approver can
// trust to be the one its symbol suggests.
type KnownToken struct {
	ChainID  int64  `json:"chain_id"`
	Address  string `json:"address"`
	Symbol   string `json:"symbol"`
	Name     string `json:"name"`
	Decimals uint8  `json:"decimals"`
}

// builtinChains names the chains countersign is used with most. Unknown
// ids show as "chain <id>".
var builtinChains = map[int64]string{
	1:        "Ethereum",
	10:       "OP Mainnet",
	56:       "BNB Smart Chain",
	100:      "Gnosis",
	137:      "Polygon",
	8453:     "Base",
	42161:    "Arbitrum One",
	43114:    "Avalanche C-Chain",
	84532:    "Base Sepolia",
	11155111: "Sepolia",
	1337:     "countersign dev chain",
}

// DevTestToken is the embedded dev chain's TEST token. The chain derives
// its faucet key from a fixed seed, so the token is deployed at the same
// address on every start (TestDevTokenIsKnown pins it).
const DevTestToken = "0x878fc7D602e16436B8810A26939Ca78fe41B9eFf"

// builtinTokens are tokens of the chains countersign knows, by their
// issuers' published addresses.
var builtinTokens = []KnownToken{
	{1337, DevTestToken, "TEST", "countersign test token", 18},
	{1, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "USDC", "USD Coin", 6},
	{1, "0xdAC17F958D2ee523a2206206994597C13D831ec7", "USDT", "Tether USD", 6},
	{1, "0x6B175474E89094C44Da98b954EedeAC495271d0F", "DAI", "Dai Stablecoin", 18},
	{1, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "WETH", "Wrapped Ether", 18},
	{8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USDC", "USD Coin", 6},
	{8453, "0x4200000000000000000000000000000000000006", "WETH", "Wrapped Ether", 18},
	{84532, "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC", "USD Coin", 6},
	{11155111, "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238", "USDC", "USD Coin", 6},
}

// ChainName names chain id for people: the configured name, the built-in
// one, or "chain <id>".
func (s *Service) ChainName(id int64) string {
	if n, ok := s.cfg.Review.ChainNames[id]; ok && n != "" {
		return n
	}
	if n, ok := builtinChains[id]; ok {
		return n
	}
	return "chain " + strconv.FormatInt(id, 10)
}

// KnownToken returns the known-token entry of address on chain id.
func (s *Service) KnownToken(id int64, address string) (KnownToken, bool) {
	for _, list := range [][]KnownToken{s.cfg.Review.Tokens, builtinTokens} {
		for _, k := range list {
			if k.ChainID == id && strings.EqualFold(k.Address, address) {
				return k, true
			}
		}
	}
	return KnownToken{}, false
}

// knownSymbol reports whether a known token of chain id has symbol: an
// unknown token that calls itself USDC is a look-alike.
func (s *Service) knownSymbol(id int64, symbol string) bool {
	for _, list := range [][]KnownToken{s.cfg.Review.Tokens, builtinTokens} {
		for _, k := range list {
			if k.ChainID == id && strings.EqualFold(k.Symbol, symbol) {
				return true
			}
		}
	}
	return false
}
