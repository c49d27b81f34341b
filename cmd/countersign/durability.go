package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/countersign/countersign/core"
)

// durabilityFlags registers the overrides of the start-up safety checks.
// Both are off by default: the checks fail closed.
func durabilityFlags(flags *flag.FlagSet, c *Config) {
	flags.BoolVar(&c.AcceptNewChain, "accept-new-chain", false,
		"start although the chain is not the one recorded for this data; transactions still authorized or in flight are marked dropped (env ACCEPT_NEW_CHAIN=1)")
	flags.BoolVar(&c.AllowOpenDataDir, "allow-open-data-dir", false,
		"start although group or others can write to the data directory (env ALLOW_OPEN_DATA_DIR=1)")
}

// durabilityEnv reads the environment variables of the overrides a flag
// did not set.
func durabilityEnv(flags *flag.FlagSet, c *Config, env func(...string) string) error {
	set := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, b := range []struct {
		flag, env string
		dst       *bool
	}{
		{"accept-new-chain", "ACCEPT_NEW_CHAIN", &c.AcceptNewChain},
		{"allow-open-data-dir", "ALLOW_OPEN_DATA_DIR", &c.AllowOpenDataDir},
	} {
		v := env(b.env)
		if set[b.flag] || v == "" {
			continue
		}
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s must be 1 or 0, not %q", b.env, v)
		}
		*b.dst = on
	}
	return nil
}

// checkDataDir checks the data directory, and the SQLite database's
// directory if it is elsewhere: they hold the database and its WAL, the
// master key file, the wallet keystore and the wallet token.
//
// One that group or others can write to is refused: they could replace
// the database, the master key or a keystore file, or plant a symlink
// where one is about to be created. --allow-open-data-dir starts anyway.
//
// One they can only read or enter gets a loud warning: the files in it
// are created 0600 (and the database's are narrowed to 0600 at every
// start), so what is left open is the names and sizes of the files, and
// any file another tool wrote into it with a wider mode. Refusing that
// too would refuse every directory made by a plain mkdir under the usual
// umask 022.
func checkDataDir(cfg *Config, log *slog.Logger) error {
	dirs := []string{cfg.DataDir}
	if db := sqlitePath(cfg.DB); db != "" {
		if d, err := filepath.Abs(filepath.Dir(db)); err == nil && d != cfg.DataDir {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		info, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue // created 0700 by whatever writes there first
		}
		if err != nil {
			return err
		}
		perm := info.Mode().Perm()
		switch {
		case perm&0o022 != 0 && !cfg.AllowOpenDataDir:
			return fmt.Errorf("data directory %s is writable by group or others (mode %v): they could replace the database, the master key or the wallet keys; "+
				"chmod 700 it, or start with --allow-open-data-dir (ALLOW_OPEN_DATA_DIR=1) if it is protected some other way", d, perm)
		case perm&0o077 != 0:
			log.Warn("!!! THE DATA DIRECTORY IS OPEN TO GROUP OR OTHERS: it holds the database, the master key and the wallet keys; chmod 700 it",
				"dir", d, "mode", perm.String(), "allowed_by_flag", perm&0o022 != 0)
		}
	}
	return nil
}

// sqlitePath is the SQLite file cfg.DB names, "" for another database.
func sqlitePath(db string) string {
	if strings.Contains(db, "://") && !strings.HasPrefix(db, "sqlite://") {
		return ""
	}
	return strings.TrimPrefix(db, "sqlite://")
}

// bindChain checks the connected chain against the one recorded for this
// data (core.CheckChain), says loudly what changed, and makes every
// transaction the previous process signed due for rebroadcast.
func bindChain(ctx context.Context, cfg *Config, svc *core.Service, embedded bool, log *slog.Logger) error {
	ch, err := svc.CheckChain(ctx, core.ChainCheck{Embedded: embedded, AcceptNew: cfg.AcceptNewChain})
	if err != nil {
		return err
	}
	cur := ch.Current
	switch {
	case !ch.Changed && ch.Previous == nil:
		log.Info("recorded the chain of this data: a later start on another chain is refused", "chain_id", cur.ChainID, "genesis", cur.GenesisHash)
	case ch.Changed && embedded && (ch.Previous == nil || ch.Previous.Embedded):
		log.Warn("the embedded dev chain is new on every start: transactions authorized or in flight on the previous one are dropped and nonce counters reset",
			"dropped", ch.Dropped, "nonce_counters_reset", ch.Nonces, "genesis", cur.GenesisHash)
	case ch.Changed:
		prev := "unknown"
		if ch.Previous != nil {
			prev = fmt.Sprintf("chain %d, genesis %s", ch.Previous.ChainID, ch.Previous.GenesisHash)
		}
		log.Warn("!!! THE CHAIN CHANGED (--accept-new-chain): transactions authorized or in flight on the previous chain are marked dropped; check their outcome on that chain",
			"previous", prev, "chain_id", cur.ChainID, "genesis", cur.GenesisHash, "dropped", ch.Dropped, "nonce_counters_reset", ch.Nonces)
	}
	n, err := svc.RebroadcastAfterRestart(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info("transactions signed before the restart are due for rebroadcast (the same bytes)", "transactions", n)
	}
	return nil
}
