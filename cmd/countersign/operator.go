package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/cloud/awskms"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/repospec"
	"github.com/countersign/countersign/signer/keyfile"
)

// The operator wallet's start checks. REPO_SPEC names a repo-spec.yaml;
// its operator_wallet section must be valid, name this server's chain, and
// name the address its signer really holds — otherwise the server does
// not start, naming both addresses. OPERATOR_KEYSTORE_PATH, with or
// without a spec, is the keystore-file signer's key, decrypted once here.

// checkOperator runs the checks and keeps the keystore-file signer (if
// any) in a.Operator.
func (a *App) checkOperator(ctx context.Context, cfg *Config, st countersign.Store, ch countersign.Chain, log *slog.Logger) error {
	var spec *repospec.Spec
	if cfg.RepoSpec != "" {
		b, err := os.ReadFile(cfg.RepoSpec)
		if err != nil {
			return fmt.Errorf("REPO_SPEC: %w", err)
		}
		if spec, err = repospec.Parse(b); err != nil {
			return fmt.Errorf("REPO_SPEC %s: %w", cfg.RepoSpec, err)
		}
	}
	path := cfg.OperatorKeystore
	if spec != nil && spec.OperatorWallet.KeystorePath != "" {
		path = spec.OperatorWallet.KeystorePath
	}
	if path != "" && (spec == nil || spec.OperatorWallet.Signer == "keystore") {
		k, err := keyfile.Open(path, cfg.OperatorPassphrase)
		if err != nil {
			return fmt.Errorf("the operator wallet (OPERATOR_KEYSTORE_PATH): %w", err)
		}
		a.Operator = k
		a.closers = append(a.closers, k.Close)
		log.Info("operator wallet key loaded", "address", k.Address(), "keystore", path)
	}
	if cfg.OperatorKMSKey != "" && (spec == nil || spec.OperatorWallet.Signer == "awskms") {
		kc, err := awskms.ParseURI(cfg.OperatorKMSKey)
		if err != nil {
			return fmt.Errorf("OPERATOR_KMS_KEY: %w", err)
		}
		k, err := awskms.NewSigner(ctx, kc)
		if err != nil {
			return fmt.Errorf("the operator wallet (OPERATOR_KMS_KEY): %w", err)
		}
		a.OperatorKMS = k
		log.Info("operator wallet KMS key loaded", "address", k.Address().Hex(), "key", k.ARN())
	}
	if spec == nil {
		return nil
	}
	a.spec = spec
	w := spec.OperatorWallet
	id, err := ch.ChainID(ctx)
	if err != nil {
		return err
	}
	if id.Int64() != w.ChainID {
		return fmt.Errorf("REPO_SPEC %s: operator_wallet.chain_id is %d, but this server is connected to chain %s: refusing to start", cfg.RepoSpec, w.ChainID, id)
	}
	var have string
	switch w.Signer {
	case "keystore":
		if a.Operator == nil {
			return fmt.Errorf("REPO_SPEC %s: operator_wallet.signer is keystore, but neither keystore_path nor OPERATOR_KEYSTORE_PATH names the file", cfg.RepoSpec)
		}
		have = a.Operator.Address()
	case "awskms":
		if a.OperatorKMS == nil {
			return fmt.Errorf("REPO_SPEC %s: operator_wallet.signer is awskms, but OPERATOR_KMS_KEY is not set (awskms://KEY_ID?region=…)", cfg.RepoSpec)
		}
		if id := w.KMSKeyID; id != "" && id != a.OperatorKMS.ARN() && !strings.HasSuffix(a.OperatorKMS.ARN(), "/"+id) && !strings.HasPrefix(cfg.OperatorKMSKey, "awskms://"+id) {
			return fmt.Errorf("REPO_SPEC %s: operator_wallet.kms_key_id is %s, but OPERATOR_KMS_KEY names %s: refusing to start", cfg.RepoSpec, id, a.OperatorKMS.ARN())
		}
		have = a.OperatorKMS.Address().Hex()
	case "sealed", "derived", "remote":
		// a wallet this server has, whose key is where the spec says:
		// sealed by the server, or the derived-key signer's (in process,
		// or remote through SIGNER_URL)
		wl, err := st.WalletByAddress(ctx, w.AddressEIP55())
		if countersign.ErrorCode(err) == countersign.NotFound {
			return fmt.Errorf("REPO_SPEC %s: operator_wallet.signer is %s, but this server holds no wallet %s (create it first: create_wallet or import for sealed, POST /api/wallets/derived for derived): refusing to start", cfg.RepoSpec, w.Signer, w.AddressEIP55())
		}
		if err != nil {
			return err
		}
		held := countersign.WalletSignerName(wl.KeyFormat)
		if w.Signer == "remote" {
			if held == countersign.WalletKeyDerived && cfg.SignerURL == "" {
				return fmt.Errorf("REPO_SPEC %s: operator_wallet.signer is remote, but SIGNER_URL is not set: refusing to start", cfg.RepoSpec)
			}
			held = map[string]string{countersign.WalletKeyDerived: "remote"}[held]
		}
		if held != w.Signer {
			return fmt.Errorf("REPO_SPEC %s: operator_wallet.signer is %s, but wallet %s's key is held by the %s signer: refusing to start", cfg.RepoSpec, w.Signer, wl.Address, countersign.WalletSignerName(wl.KeyFormat))
		}
		have = wl.Address
	default:
		return fmt.Errorf("REPO_SPEC %s: operator_wallet.signer %s cannot be checked at start by this build: refusing to start rather than run unchecked", cfg.RepoSpec, w.Signer)
	}
	if !strings.EqualFold(have, w.Address) {
		return fmt.Errorf("REPO_SPEC %s: the operator signer holds %s, but operator_wallet.address is %s: refusing to start", cfg.RepoSpec, have, w.AddressEIP55())
	}
	log.Info("operator wallet matches repo-spec", "address", w.AddressEIP55(), "chain_id", w.ChainID, "signer", w.Signer, "budgets", len(w.Budgets))
	return nil
}

// operatorSigners are the external signer backends the operator loaded,
// by the wallet key format whose wallets they sign for.
func (a *App) operatorSigners() map[string]countersign.Signer {
	m := map[string]countersign.Signer{}
	if a.Operator != nil {
		m[countersign.WalletKeyKeystore] = a.Operator
	}
	if a.OperatorKMS != nil {
		m[countersign.WalletKeyAWSKMS] = a.OperatorKMS.Wallet()
	}
	return m
}

// attachOperator gives each loaded operator key a wallet of OPERATOR_OWNER
// (core.AttachOperatorWallet): from then on it is a countersigned wallet
// like any other — agents, policies, approvals, receipts — whose
// signatures its own backend makes. Without OPERATOR_OWNER the keys are
// loaded (and checked against REPO_SPEC) but back no wallet.
func (a *App) attachOperator(ctx context.Context, cfg *Config, svc *core.Service, log *slog.Logger) error {
	var keys []core.OperatorKey
	if a.Operator != nil {
		keys = append(keys, core.OperatorKey{Format: countersign.WalletKeyKeystore, Address: a.Operator.Address()})
	}
	if a.OperatorKMS != nil {
		keys = append(keys, core.OperatorKey{Format: countersign.WalletKeyAWSKMS, Address: a.OperatorKMS.Address().Hex()})
	}
	if len(keys) == 0 {
		if cfg.OperatorOwner != "" {
			return errors.New("OPERATOR_OWNER is set, but no operator key is: set OPERATOR_KEYSTORE_PATH or OPERATOR_KMS_KEY")
		}
		return nil
	}
	if cfg.OperatorOwner == "" {
		log.Warn("an operator key is loaded but backs no wallet: set OPERATOR_OWNER to the username that owns it", "keys", len(keys))
		return nil
	}
	for _, k := range keys {
		if _, err := svc.AttachOperatorWallet(ctx, cfg.OperatorOwner, k, log); err != nil {
			return err
		}
	}
	return nil
}

// applySpec makes the operator wallet's policy and low-balance alerts what
// REPO_SPEC's budgets and low_balance say (core.ApplyOperatorSpec), at
// every start. Without a wallet for the spec's address (no OPERATOR_OWNER
// yet) there is nothing to apply them to, and a warning says so.
func (a *App) applySpec(ctx context.Context, cfg *Config, svc *core.Service, log *slog.Logger) error {
	if a.spec == nil {
		return nil
	}
	w := a.spec.OperatorWallet
	if len(w.Budgets) == 0 && len(w.LowBalance) == 0 {
		return nil
	}
	wl, err := a.Store.WalletByAddress(ctx, w.AddressEIP55())
	if countersign.ErrorCode(err) == countersign.NotFound {
		log.Warn("REPO_SPEC's budgets and alerts are not applied: no wallet holds the operator address yet (set OPERATOR_OWNER)", "address", w.AddressEIP55())
		return nil
	}
	if err != nil {
		return err
	}
	transfers := cfg.Topup.Contract // top-up budgets pin the Transfers contract (topup.go)
	if transfers == "" {
		transfers = core.KnownTransfersContracts[svc.ChainID().Int64()]
	}
	doc, err := w.PolicyDocument(transfers)
	if err != nil {
		return fmt.Errorf("REPO_SPEC %s: %w", cfg.RepoSpec, err)
	}
	var alerts []core.SpecAlert
	for _, t := range w.LowBalance {
		alerts = append(alerts, core.SpecAlert{Asset: t.Asset, Below: t.Below})
	}
	if err := svc.ApplyOperatorSpec(ctx, wl.ID, doc, alerts, log); err != nil {
		return fmt.Errorf("REPO_SPEC %s: %w", cfg.RepoSpec, err)
	}
	return nil
}

const specUsage = `Usage: countersign spec validate FILE

Checks the operator_wallet section of a repo-spec.yaml against its JSON
Schema (docs/repo-spec.schema.json) and prints each problem with its line.
Exit status 0 when it is valid.`

func specCmd(args []string, stdout, stderr io.Writer) error {
	if isHelp(args) || len(args) == 0 {
		fmt.Fprintln(stdout, specUsage)
		if len(args) == 0 {
			return errors.New("spec: a subcommand is required")
		}
		return nil
	}
	if args[0] != "validate" {
		return fmt.Errorf("spec: unknown subcommand %q (validate)", args[0])
	}
	fs := flag.NewFlagSet("spec validate", flag.ContinueOnError)
	if err := parseFlags(fs, args[1:], stdout, specUsage, nil); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("spec validate: one FILE is required")
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	s, err := repospec.Parse(b)
	var inv *repospec.Invalid
	if errors.As(err, &inv) {
		for _, p := range inv.Problems {
			fmt.Fprintf(stdout, "%s:%s\n", fs.Arg(0), strings.TrimPrefix(p.String(), "line "))
		}
		return fmt.Errorf("%s: %d problem(s)", fs.Arg(0), len(inv.Problems))
	}
	if err != nil {
		return err
	}
	w := s.OperatorWallet
	fmt.Fprintf(stdout, "%s: valid: operator wallet %s on chain %d (signer %s, %d budget(s), %d low-balance alert(s))\n",
		fs.Arg(0), w.AddressEIP55(), w.ChainID, w.Signer, len(w.Budgets), len(w.LowBalance))
	return nil
}
