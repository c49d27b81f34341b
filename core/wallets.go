package core

import (
	"context"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/uuid"

	"github.com/countersign/countersign"
)

// CreateWallet creates a wallet with a fresh key after re-checking the
// user's password. The name is checked first: bad input costs no password
// attempt.
func (s *Service) CreateWallet(ctx context.Context, p *Principal, password, name string) (*countersign.Wallet, error) {
	name = strings.TrimSpace(name)
	if err := CheckText("name", name, MaxName, false); err != nil {
		return nil, err
	}
	if err := s.checkPassword(ctx, p.User, password); err != nil {
		return nil, err
	}
	existing, err := s.store.WalletsByOwner(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = fmt.Sprintf("wallet %d", len(existing)+1)
	}
	w := &countersign.Wallet{ID: uuid.NewString(), OwnerID: p.User.ID, Name: name, CreatedAt: s.clock.Now().UTC()}
	w.Address, w.KeyFormat, w.KeySealed, err = s.keys.NewKey(ctx, w.ID)
	if err != nil {
		return nil, err
	}
	err = s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "wallet.create", Subject: w.ID, Details: map[string]string{"address": w.Address, "name": name}},
		func(ctx context.Context) error { return s.store.CreateWallet(ctx, w) })
	if err != nil {
		return nil, err
	}
	return w, nil
}

// ownedWallet returns the caller's wallet at address: the owner's for a
// user, the bound one for an agent. Anything else is NotFound, so callers
// cannot probe other users' wallets.
func (s *Service) ownedWallet(ctx context.Context, p *Principal, address string) (*countersign.Wallet, error) {
	a, err := ParseAddress("address", address)
	if err != nil {
		return nil, err
	}
	w, err := s.store.WalletByAddress(ctx, a.Hex())
	if err != nil {
		return nil, err
	}
	if w.OwnerID != p.User.ID {
		return nil, countersign.Errorf(countersign.NotFound, "wallet not found")
	}
	if p.IsAgent() && w.ID != p.Agent.WalletID {
		return nil, countersign.Errorf(countersign.Forbidden, "this agent is bound to another wallet")
	}
	return w, nil
}

// LoadWallet returns a wallet's address, chain and native balance. Users
// prove password and MFA; agents may load only their bound wallet.
func (s *Service) LoadWallet(ctx context.Context, p *Principal, address, password, mfaCode string) (*countersign.Wallet, *big.Int, error) {
	if !p.IsAgent() {
		// a user with MFA on (the route's rule: http UserMFAOrAgent)
		// proves password and code; an agent, only its binding
		if err := s.checkPassword(ctx, p.User, password); err != nil {
			return nil, nil, err
		}
	}
	w, err := s.ownedWallet(ctx, p, address)
	if err != nil {
		return nil, nil, err
	}
	if !p.IsAgent() {
		if err := s.VerifyMFA(ctx, p.User.ID, mfaCode); err != nil {
			return nil, nil, err
		}
	}
	bal, err := s.chain.BalanceAt(ctx, w.Address)
	if err != nil {
		return nil, nil, err
	}
	return w, bal, nil
}

// Wallets lists the user's wallets.
func (s *Service) Wallets(ctx context.Context, p *Principal) ([]*countersign.Wallet, error) {
	return s.store.WalletsByOwner(ctx, p.User.ID)
}

// Balance is a native or ERC-20 balance in base units.
type Balance struct {
	Address  string
	Token    string
	Balance  *big.Int
	Decimals uint8
	Symbol   string
}

// NativeSymbol is reported for native balances.
const NativeSymbol = "ETH"

// Balance reads the balance of any address, natively or of an ERC-20.
func (s *Service) Balance(ctx context.Context, address, token string) (*Balance, error) {
	a, err := ParseAddress("address", address)
	if err != nil {
		return nil, err
	}
	if token == "" {
		bal, err := s.chain.BalanceAt(ctx, a.Hex())
		if err != nil {
			return nil, err
		}
		return &Balance{Address: a.Hex(), Balance: bal, Decimals: 18, Symbol: NativeSymbol}, nil
	}
	t, err := ParseAddress("token_address", token)
	if err != nil {
		return nil, err
	}
	info, err := s.TokenInfo(ctx, t)
	if err != nil {
		return nil, err
	}
	bal, err := s.erc20Call(ctx, t, "balanceOf", a)
	if err != nil {
		return nil, err
	}
	return &Balance{Address: a.Hex(), Token: t.Hex(), Balance: bal[0].(*big.Int), Decimals: info.Decimals, Symbol: info.Symbol}, nil
}

// TokenInfo is an ERC-20's display metadata.
type TokenInfo struct {
	Decimals uint8
	Symbol   string
}

// TokenInfo reads decimals and symbol of an ERC-20; a token without them
// is refused.
func (s *Service) TokenInfo(ctx context.Context, token common.Address) (*TokenInfo, error) {
	code, err := s.chain.CodeAt(ctx, token.Hex())
	if err != nil {
		return nil, err
	}
	if len(code) == 0 {
		return nil, countersign.Errorf(countersign.BadRequest, "token_address %s has no contract code on chain %s", token.Hex(), s.chainID)
	}
	dec, err := s.erc20Call(ctx, token, "decimals")
	if err != nil {
		return nil, countersign.Errorf(countersign.BadRequest, "token_address %s does not answer decimals(): not an ERC-20", token.Hex())
	}
	info := &TokenInfo{Decimals: dec[0].(uint8)}
	if sym, err := s.erc20Call(ctx, token, "symbol"); err == nil {
		info.Symbol = sym[0].(string)
	}
	return info, nil
}

func (s *Service) erc20Call(ctx context.Context, token common.Address, method string, args ...any) ([]any, error) {
	data, err := erc20ABI.Pack(method, args...)
	if err != nil {
		return nil, err
	}
	out, err := s.chain.Call(ctx, countersign.CallMsg{To: token.Hex(), Data: data})
	if err != nil {
		return nil, err
	}
	vals, err := erc20ABI.Unpack(method, out)
	if err != nil || len(vals) == 0 {
		return nil, countersign.Errorf(countersign.ChainError, "token %s returned an invalid %s()", token.Hex(), method)
	}
	return vals, nil
}

// keyMigrator is a Signer that can move legacy sealed keys into the
// keystore (signer/local).
type keyMigrator interface {
	MigrateKey(ctx context.Context, w *countersign.Wallet) (format string, sealed []byte, err error)
}

// MigrateWalletKeys moves every wallet whose key is still sealed in its
// row into the keystore, so all keys share one model. Each move writes
// and verifies the keystore file first and then swaps the row (only if it
// is still in the old format) with an audit entry; a run cut short leaves
// the rest for the next start. It returns how many wallets moved.
func (s *Service) MigrateWalletKeys(ctx context.Context) (int, error) {
	m, ok := s.keys.(keyMigrator)
	if !ok {
		return 0, nil
	}
	list, err := s.store.WalletsByKeyFormat(ctx, countersign.WalletKeySealed)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, w := range list {
		format, sealed, err := m.MigrateKey(ctx, w)
		if err != nil {
			return n, fmt.Errorf("move the key of wallet %s into the keystore: %w", w.ID, err)
		}
		err = s.Record(ctx, countersign.Change{Owner: w.OwnerID, Actor: SystemOwner, Action: "wallet.key.migrate", Subject: w.ID, Details: map[string]string{"address": w.Address, "format": format}},
			func(ctx context.Context) error {
				return s.store.SwapWalletKey(ctx, w.ID, countersign.WalletKeySealed, format, sealed)
			})
		if err != nil {
			return n, fmt.Errorf("move the key of wallet %s into the keystore: %w", w.ID, err)
		}
		n++
	}
	return n, nil
}

// keyChecker is a Signer that can tell whether a wallet's key is present
// without opening it (signer/local).
type keyChecker interface {
	CheckKey(ctx context.Context, w *countersign.Wallet) error
}

// MissingWalletKeys lists the wallets whose key is not where their row
// says — a keystore directory not restored with the database, or KEYSTORE
// switched between dir and store — so the server can refuse to start
// rather than fail at the first signature.
func (s *Service) MissingWalletKeys(ctx context.Context) ([]string, error) {
	c, ok := s.keys.(keyChecker)
	if !ok {
		return nil, nil
	}
	list, err := s.store.WalletsByKeyFormat(ctx, countersign.WalletKeyKDB)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, w := range list {
		if err := c.CheckKey(ctx, w); err != nil {
			missing = append(missing, w.Address)
		}
	}
	return missing, nil
}
