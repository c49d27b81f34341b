package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/countersign/countersign/cloud/awskms"
	"github.com/countersign/countersign/keys/envelope"
)

// The key-encryption key (KEK) settings: the master key file
// (COUNTERSIGN_MASTER_KEY_FILE), and optionally an AWS KMS key
// (KEK_URI=awskms://KEY_ID?region=…&endpoint=…). With KEK_URI the KMS key
// seals every new value and the file's keys (when the file exists) still
// open what they sealed; KEK_OPEN_ONLY=1 keeps the file's first key
// sealing and lets the KMS key only open — the step of a rotation to or
// from KMS where every replica must read both before any seals under the
// new one (docs/OPERATIONS.md).

// kekFlags defines serve's --kek-uri and --kek-open-only.
func kekFlags(fs *flag.FlagSet, c *Config, env func(...string) string) {
	fs.StringVar(&c.KEKURI, "kek-uri", env("KEK_URI"), "AWS KMS key as the key-encryption key: awskms://KEY_ID?region=REGION[&endpoint=URL] (env KEK_URI)")
	fs.BoolVar(&c.KEKOpenOnly, "kek-open-only", false, "with --kek-uri: the KMS key only opens, the master key file's first key seals (a rotation step) (env KEK_OPEN_ONLY=1)")
}

// kekEnv reads KEK_OPEN_ONLY when its flag was not given.
func kekEnv(fs *flag.FlagSet, c *Config, env func(...string) string) error {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "kek-open-only" })
	if v := env("KEK_OPEN_ONLY"); v != "" && !given {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("KEK_OPEN_ONLY must be 1 or 0, not %q", v)
		}
		c.KEKOpenOnly = on
	}
	return nil
}

// checkKEK validates the KEK settings without the network.
func checkKEK(uri string, openOnly bool) error {
	if uri == "" {
		if openOnly {
			return errors.New("KEK_OPEN_ONLY goes with KEK_URI: it makes the KMS key of KEK_URI open only")
		}
		return nil
	}
	if _, err := awskms.ParseURI(uri); err != nil {
		return fmt.Errorf("KEK_URI: %w", err)
	}
	return nil
}

// openKMSKEK reaches the KMS key of uri and checks it can wrap and unwrap
// (awskms.New): a start or a maintenance command never goes on with a KMS
// it cannot use, and never falls back to a file key.
func openKMSKEK(ctx context.Context, uri string) (*awskms.KEK, error) {
	cfg, err := awskms.ParseURI(uri)
	if err != nil {
		return nil, fmt.Errorf("KEK_URI: %w", err)
	}
	k, err := awskms.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("the KMS key-encryption key (KEK_URI) cannot be used, refusing to go on: %w", err)
	}
	return k, nil
}

// kekSealer builds the envelope sealer: the master key file's keys plus
// the KMS keys of uris (the first of which seals when kmsSeals). create
// and follow are serve's (a first start generates the file; a running
// server follows it).
func kekSealer(ctx context.Context, file string, uris []string, kmsSeals, create, follow bool) (*envelope.Sealer, bool, error) {
	var exts []envelope.KEK
	for _, u := range uris {
		if u == "" {
			continue
		}
		k, err := openKMSKEK(ctx, u)
		if err != nil {
			return nil, false, err
		}
		exts = append(exts, k)
	}
	kmsSeals = kmsSeals && len(exts) > 0
	// The file seals in KEK_OPEN_ONLY mode, so it must be the file every
	// replica has: one generated here would be this replica's alone.
	create = create && len(exts) == 0
	s, created, err := envelope.NewSealer(envelope.Options{File: file, Create: create, Follow: follow, External: exts, ExternalSeals: kmsSeals})
	if err != nil && len(exts) > 0 && !kmsSeals && errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("%w: with KEK_OPEN_ONLY the master key file's first key seals; make it with \"countersign rotate-master-key --new-key-file FILE --stage --kek-uri …\" and copy it to every replica", err)
	}
	return s, created, err
}

// serveSealer is openSealer's sealer for serve's settings.
func serveSealer(ctx context.Context, cfg *Config, log *slog.Logger) (*envelope.Sealer, bool, error) {
	s, created, err := kekSealer(ctx, cfg.MasterKeyFile, []string{cfg.KEKURI}, !cfg.KEKOpenOnly, true, true)
	if err != nil {
		return nil, false, err
	}
	if cfg.KEKURI != "" {
		log.Info("key-encryption key: AWS KMS", "seals", s.CurrentKeyID(), "opens", strings.Join(s.KeyIDs(), ", "), "kms_open_only", cfg.KEKOpenOnly)
	}
	return s, created, nil
}
