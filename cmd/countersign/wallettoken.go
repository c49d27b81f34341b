package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	cshttp "github.com/countersign/countersign/http"
)

// The wallet daemon's token. Loopback alone does not identify the operator
// (web pages, rebinding names, proxies and agents on the machine all reach
// it), so the daemon always requires X-Auth-Token. Without WALLET_TOKEN,
// serve generates one at first start into DATA_DIR/wallet.token (mode
// 0600, like the master key) and the CLI reads it from there: whoever can
// read the data directory is the operator.

// walletTokenFile is where serve keeps the generated token and the CLI
// looks for it.
func walletTokenFile(dataDir string) string { return filepath.Join(dataDir, "wallet.token") }

// daemonToken returns the token the daemon requires: WALLET_TOKEN when the
// operator set it (it must be strong), else the generated file's.
func daemonToken(cfg *Config, log *slog.Logger) (string, error) {
	if cfg.WalletToken != "" {
		if err := cshttp.CheckTokenStrength("WALLET_TOKEN", cfg.WalletToken); err != nil {
			return "", err
		}
		log.Info("wallet daemon: X-Auth-Token is WALLET_TOKEN")
		return cfg.WalletToken, nil
	}
	path := walletTokenFile(cfg.DataDir)
	tok, created, err := loadOrCreateWalletToken(path)
	if err != nil {
		return "", err
	}
	if created {
		log.Warn("generated the wallet daemon's token: clients send it as X-Auth-Token (the CLI reads it from this file)", "file", path)
	} else {
		log.Info("wallet daemon: X-Auth-Token is the token in this file", "file", path)
	}
	return tok, nil
}

// loadOrCreateWalletToken reads the token at path, or creates one (32
// random bytes as hex, mode 0600, directory 0700) when there is none. A
// file others can read, or that is not a plain file, is refused. Creation
// never replaces a file: the token is written to a temporary name, synced
// and hard-linked into place, so two servers starting together agree.
func loadOrCreateWalletToken(path string) (tok string, created bool, err error) {
	for range 2 {
		tok, err = readWalletTokenFile(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return tok, false, err
		}
		if err := writeNewWalletToken(path); !errors.Is(err, fs.ErrExist) {
			if err != nil {
				return "", false, err
			}
			tok, err = readWalletTokenFile(path)
			return tok, err == nil, err
		}
		// another process created it first: read theirs
	}
	return "", false, fmt.Errorf("wallet token file %s: cannot read or create it", path)
}

func readWalletTokenFile(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("wallet token file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("wallet token file %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if err := cshttp.CheckTokenStrength("wallet token file "+path, tok); err != nil {
		return "", err
	}
	return tok, nil
}

func writeNewWalletToken(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".wallet.token-*") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.WriteString(hex.EncodeToString(raw) + "\n")
	clear(raw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// cliWalletToken is the token the CLI sends: WALLET_TOKEN when set, else
// the file serve generated in the data directory. from says where it came
// from, for error messages (never the token).
func cliWalletToken(getenv func(string) string, dataDir string) (tok, from string) {
	if t := getenv("WALLET_TOKEN"); t != "" {
		return t, "WALLET_TOKEN"
	}
	path := walletTokenFile(dataDir)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Sprintf("no token sent: WALLET_TOKEN is not set and %s cannot be read (%v); use --data-dir or COUNTERSIGN_DATA_DIR to point at the server's data directory", path, errors.Unwrap(err))
	}
	return strings.TrimSpace(string(b)), path
}

// defaultDataDir is serve's default data directory, for the CLI.
func defaultDataDir(getenv func(string) string) string {
	return or(getenv("COUNTERSIGN_DATA_DIR"), "./data")
}

// daemonError adds where the token came from to an UNAUTHORIZED answer, so
// the operator knows which file or variable to fix.
func daemonError(err error, from string) error {
	if err != nil && strings.Contains(err.Error(), ": UNAUTHORIZED: ") {
		return fmt.Errorf("%w (wallet token: %s)", err, from)
	}
	return err
}
