package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

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
	cfg, err := parseServeConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	// LoadOrCreateKeyFile would make a new master key where there is none:
	// an audit key sealed under it would be useless to the server.
	if _, err := os.Stat(cfg.MasterKeyFile); err != nil {
		return fmt.Errorf("no master key file at %s (set --data-dir or COUNTERSIGN_MASTER_KEY_FILE to the server's): %w", cfg.MasterKeyFile, err)
	}
	kek, _, err := envelope.LoadOrCreateKeyFile(cfg.MasterKeyFile)
	if err != nil {
		return err
	}
	sealer, err := envelope.New(kek)
	clear(kek)
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

// checkpointFlag takes --checkpoint FILE (or --checkpoint=FILE) out of
// audit verify's arguments; the rest are serve's flags.
func checkpointFlag(args []string) (file string, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "checkpoint" {
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return "", nil, errors.New("--checkpoint needs a file")
			}
			i++
			value = args[i]
		}
		if value == "" {
			return "", nil, errors.New("--checkpoint needs a file")
		}
		file = value
	}
	return file, rest, nil
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
