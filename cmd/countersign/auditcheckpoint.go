package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/keys/envelope"
)

// auditCheckpoint is `countersign audit checkpoint`: every audit chain's
// head, signed with the server's audit key, printed as JSON to keep
// somewhere the database's writers cannot reach (another machine, a
// write-once bucket, a ticket). It opens the database and the master key
// file directly, like `audit verify`, and refuses to sign chains that do
// not verify.
func auditCheckpoint(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit checkpoint", flag.ContinueOnError)
	cfg := auditFlags(fs, getenv, true)
	fs.StringVar(&cfg.KEKURI, "kek-uri", getenv("KEK_URI"), "the server's KEK_URI (awskms://…) when its data is sealed under AWS KMS (env KEK_URI)")
	if err := parseFlags(fs, args, stdout, "Usage: countersign audit checkpoint [flags]\n\nPrints every audit chain's head signed with the server's audit key, as JSON: keep it\nwhere the database's writers cannot reach, and check it later with audit verify --checkpoint.", nil); err != nil {
		return err
	}
	if err := auditArgs(fs, cfg); err != nil {
		return err
	}
	sealer, err := checkpointSealer(ctx, cfg)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if n, err := core.VerifyAudit(ctx, st); err != nil {
		return fmt.Errorf("audit chain BROKEN after %d good entries, not signing a checkpoint: %w", n, err)
	}
	var clock countersign.Clock = countersign.SystemClock{}
	if cfg.Clock != nil {
		clock = cfg.Clock
	}
	cp, err := core.NewAuditCheckpoint(ctx, st, sealer, clock.Now(), nil)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// auditFlags registers the flags the audit commands share with serve:
// where the database is (and, for checkpoint, the master key), with the
// same environment variables and defaults. Only these: the audit commands
// open the files directly and start nothing else.
func auditFlags(fs *flag.FlagSet, getenv func(string) string, masterKey bool) *Config {
	c := &Config{}
	fs.StringVar(&c.DataDir, "data-dir", or(getenv("COUNTERSIGN_DATA_DIR"), "./data"), "the server's state directory (env COUNTERSIGN_DATA_DIR)")
	fs.StringVar(&c.DB, "db", getenv("DATABASE_URL"), "the database: a SQLite file (default DATA_DIR/countersign.db) or a postgres:// URL (env DATABASE_URL)")
	if masterKey {
		fs.StringVar(&c.MasterKeyFile, "master-key-file", getenv("COUNTERSIGN_MASTER_KEY_FILE"), "the server's key-encryption key file (default DATA_DIR/master.key) (env COUNTERSIGN_MASTER_KEY_FILE)")
	}
	return c
}

// auditArgs refuses arguments after the flags and fills in the defaults.
func auditArgs(fs *flag.FlagSet, c *Config) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return c.defaults()
}

// verifyCheckpointFile checks a checkpoint file against st: its signature,
// that it is this database's audit key, and that every head is still there.
func verifyCheckpointFile(ctx context.Context, st countersign.Store, file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	if len(b) > 16<<20 {
		return 0, errors.New("the checkpoint file is larger than 16 MiB")
	}
	var cp core.AuditCheckpoint
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cp); err != nil {
		return 0, fmt.Errorf("the checkpoint file is not a checkpoint: %w", err)
	}
	return core.VerifyAuditCheckpoint(ctx, st, &cp)
}

// checkpointSealer opens the server's sealed audit key: every key of the
// master key file (during a rotation the audit key may still be sealed
// under the older one) and, with KEK_URI, the KMS key. It never creates a
// master key: an audit key sealed under a new one would be useless to the
// server.
func checkpointSealer(ctx context.Context, cfg *Config) (countersign.Sealer, error) {
	if cfg.KEKURI != "" {
		return maintSealer(ctx, cfg, rotateTarget{})
	}
	if _, err := os.Stat(cfg.MasterKeyFile); err != nil {
		return nil, fmt.Errorf("no master key file at %s (set --data-dir or COUNTERSIGN_MASTER_KEY_FILE to the server's, or KEK_URI): %w", cfg.MasterKeyFile, err)
	}
	keks, err := envelope.LoadKeys(cfg.MasterKeyFile)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, k := range keks {
			clear(k)
		}
	}()
	return envelope.NewFromKeys(keks)
}
