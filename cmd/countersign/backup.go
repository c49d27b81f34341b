package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/keys/envelope"
	"github.com/countersign/countersign/keys/keystore"
	"github.com/countersign/countersign/store/sqlite"
)

// A backup is one uncompressed tar file (mode 0600):
//
//	countersign-backup.json   the manifest (backupManifest), first
//	countersign.db            a VACUUM INTO snapshot of the SQLite database
//	keystore/<wallet>.kdb     the keystore files (KEYSTORE=dir only)
//
// Every secret in it stays encrypted: wallet keys in .kdb files under
// unlock secrets sealed in the database, TOTP, webhook and signing secrets
// sealed, all under the KEK. The master key file is never in a backup:
// keep it (and each key it held, until no backup needs it) somewhere else.
// One file, not a directory, so a backup is copied, checksummed and
// restored as a whole; tar, not zip, because Go writes and reads it as a
// stream and the format is readable everywhere (tar -tvf).

const (
	backupManifestName = "countersign-backup.json"
	backupDBName       = "countersign.db"
	backupFormat       = "countersign-backup"
	backupVersion      = 1
)

// backupManifest describes a backup. KEKIDs names the master keys the
// backup's sealed values need: the restore (and the operator) can tell
// which key file to keep for it.
type backupManifest struct {
	Format        string    `json:"format"`
	Version       int       `json:"version"`
	CreatedAt     time.Time `json:"created_at"`
	DBSHA256      string    `json:"db_sha256"`
	Keystore      string    `json:"keystore"` // dir (files in the archive) or store (in the database)
	KeystoreFiles int       `json:"keystore_files"`
	// KeystoreSHA256 is each archived .kdb file's checksum, by its name
	// (absent in backups written before it was kept).
	KeystoreSHA256 map[string]string `json:"keystore_sha256,omitempty"`
	KEKIDs         []string          `json:"kek_ids"`
	SealedValues   int               `json:"sealed_values"`
}

const backupUsage = `Usage: countersign backup --out FILE [flags]

Writes a consistent backup of a SQLite server while it serves: one tar file
(mode 0600) holding a snapshot of the database (VACUUM INTO), the keystore's
.kdb files (KEYSTORE=dir) and a manifest naming the master key ids it needs.
Secrets stay sealed under the master key; the master key is NOT in the
backup: keep the master key file separately. PostgreSQL: use pg_dump
(docs/OPERATIONS.md, "Backups").`

// backupFlags registers what backup shares with serve: the database and
// the keystore, with the same environment variables and defaults. Not the
// master key: a backup never reads it.
func backupFlags(fs *flag.FlagSet, getenv func(string) string) *Config {
	c := auditFlags(fs, getenv, false)
	fs.StringVar(&c.KeystoreKind, "keystore", getenv("KEYSTORE"), "where wallet key files live: dir or store (env KEYSTORE; default dir on SQLite)")
	fs.StringVar(&c.KeystoreDir, "keystore-dir", getenv("KEYSTORE_DIR"), "the keystore directory (default DATA_DIR/keystore) (env KEYSTORE_DIR)")
	return c
}

func backupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	out := fs.String("out", "", "the backup file to write (must not exist)")
	cfg := backupFlags(fs, getenv)
	if err := parseFlags(fs, args, stdout, backupUsage, nil); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("backup: --out FILE is required")
	}
	if err := auditArgs(fs, cfg); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	m, err := writeBackup(ctx, cfg, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup written to %s: database %s, %d keystore files, %d sealed values under master key id(s) %s (the master key is not in the backup)\n",
		*out, m.DBSHA256[:16], m.KeystoreFiles, m.SealedValues, strings.Join(m.KEKIDs, ", "))
	return nil
}

// writeBackup snapshots the database next to out, archives it with the
// keystore files, fsyncs and renames the archive into place. The database
// is snapshot first and the keystore read after: a wallet row is written
// only after its file, so every wallet in the snapshot has its file (a
// file newer than the snapshot is carried along, harmless).
func writeBackup(ctx context.Context, cfg *Config, out string) (*backupManifest, error) {
	if _, err := os.Lstat(out); err == nil {
		return nil, fmt.Errorf("backup: %s exists: refusing to overwrite it", out)
	}
	if isPostgres(cfg.DB) { // refused before opening it: opening runs the migrations
		return nil, errors.New("backup: a PostgreSQL database has no online backup here: use its own tools (pg_dump, see docs/OPERATIONS.md)")
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	b, ok := st.(countersign.Backupper)
	if !ok {
		return nil, fmt.Errorf("backup: the %s store has no online backup here: use its own tools (PostgreSQL: pg_dump, see docs/OPERATIONS.md)", redactDB(cfg.DB))
	}
	dir := filepath.Dir(out)
	snap, err := os.CreateTemp(dir, ".countersign-backup-*.db")
	if err != nil {
		return nil, err
	}
	snapPath := snap.Name()
	snap.Close()
	os.Remove(snapPath) // BackupTo creates it itself (0600, exclusively)
	defer func() {
		for _, p := range []string{snapPath, snapPath + "-wal", snapPath + "-shm"} {
			os.Remove(p)
		}
	}()
	if err := b.BackupTo(ctx, snapPath); err != nil {
		return nil, err
	}
	m := &backupManifest{Format: backupFormat, Version: backupVersion, CreatedAt: time.Now().UTC(), Keystore: cfg.KeystoreKind}
	keyed, err := sealedSummary(ctx, snapPath, m)
	if err != nil {
		return nil, err
	}
	// After the summary: opening the snapshot rewrote its header (WAL
	// mode), and the checksum is of the bytes archived.
	if m.DBSHA256, err = fileSHA256(snapPath); err != nil {
		return nil, err
	}
	var kdbs []string
	kdbBytes := map[string][]byte{}
	if cfg.KeystoreKind == "dir" {
		if kdbs, err = (keystore.Dir{Path: cfg.KeystoreDir}).List(ctx); err != nil {
			return nil, err
		}
		m.KeystoreFiles = len(kdbs)
		// Every wallet in the snapshot has its file here, or this is not
		// the server's keystore (KEYSTORE, KEYSTORE_DIR): a backup without
		// them would restore wallets that can never sign.
		have := map[string]bool{}
		for _, id := range kdbs {
			have[id] = true
		}
		for _, id := range keyed {
			if !have[id] {
				return nil, fmt.Errorf("backup: wallet %s has no key file in %s: is KEYSTORE=%s, KEYSTORE_DIR the server's setting? (nothing was written)", id, cfg.KeystoreDir, cfg.KeystoreKind)
			}
		}
		// Read once: the bytes hashed are the bytes archived (a key file
		// rewritten meanwhile, a legacy format upgraded by a signature,
		// must not make a sound backup look damaged).
		m.KeystoreSHA256 = map[string]string{}
		for _, id := range kdbs {
			b, err := os.ReadFile(filepath.Join(cfg.KeystoreDir, id+".kdb"))
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256(b)
			m.KeystoreSHA256[id], kdbBytes[id] = hex.EncodeToString(sum[:]), b
		}
	}
	tmp := out + ".tmp"
	os.Remove(tmp) // a leftover of a backup that died
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp) // a no-op once renamed
	err = writeArchive(f, m, snapPath, kdbs, kdbBytes)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	syncDir(dir)
	return m, nil
}

// sealedSummary counts the snapshot's sealed values and the KEK ids they
// name, opening the snapshot (not the live database) so the numbers are
// the backup's, and returns the wallets whose key is a keystore file.
func sealedSummary(ctx context.Context, path string, m *backupManifest) (keyed []string, err error) {
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ids := map[string]bool{}
	err = eachSealed(ctx, st, func(v *countersign.SealedValue) error {
		m.SealedValues++
		if v.Kind == countersign.SealedWallet && v.Format == countersign.WalletKeyKDB {
			keyed = append(keyed, v.ID)
		}
		id, err := envelope.SealedKeyID(v.Sealed)
		if err != nil {
			id = "unreadable"
		}
		ids[id] = true
		return nil
	})
	for id := range ids {
		m.KEKIDs = append(m.KEKIDs, id)
	}
	slices.Sort(m.KEKIDs)
	return keyed, err
}

func writeArchive(w io.Writer, m *backupManifest, dbPath string, kdbs []string, kdbBytes map[string][]byte) error {
	tw := tar.NewWriter(w)
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := addBytes(tw, backupManifestName, mb); err != nil {
		return err
	}
	if err := addFile(tw, backupDBName, dbPath); err != nil {
		return err
	}
	for _, id := range kdbs {
		if err := addBytes(tw, "keystore/"+id+".kdb", kdbBytes[id]); err != nil {
			return err
		}
	}
	return tw.Close()
}

// addBytes archives b as the regular file name (mode 0600).
func addBytes(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

func addFile(tw *tar.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: info.Size(), ModTime: info.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// eachSealed calls fn for every sealed value in the store, kind by kind.
func eachSealed(ctx context.Context, st countersign.Store, fn func(v *countersign.SealedValue) error) error {
	rs, ok := st.(countersign.Resealer)
	if !ok {
		return errors.New("this store cannot list its sealed values (no countersign.Resealer)")
	}
	for _, kind := range countersign.SealedKinds {
		after := ""
		for {
			vs, err := rs.SealedValues(ctx, kind, after, 500)
			if err != nil {
				return err
			}
			for _, v := range vs {
				if err := fn(v); err != nil {
					return err
				}
			}
			if len(vs) < 500 {
				break
			}
			after = vs[len(vs)-1].ID
		}
	}
	return nil
}

const restoreUsage = `Usage: countersign restore --from FILE [flags]

Restores a backup (from countersign backup) into an empty or new data
directory: it unpacks into a temporary directory beside it, checks the
database against the manifest's checksum, that it opens, that audit verify
passes, that every wallet has its key file and (when the master key file is
there) that every sealed value opens; only then renames it into place. It
never overwrites a data directory that holds anything. Copy the master key
file to the new server separately (it is not in the backup).`

var backupKDBName = regexp.MustCompile(`^keystore/([a-zA-Z0-9-]{1,64})\.kdb$`)

func restoreCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	from := fs.String("from", "", "the backup file to restore")
	dataDir := fs.String("data-dir", or(getenv("COUNTERSIGN_DATA_DIR"), "./data"), "the data directory to restore into: new or empty (env COUNTERSIGN_DATA_DIR)")
	kekURI := fs.String("kek-uri", getenv("KEK_URI"), "the servers' KEK_URI (awskms://…), when their data is sealed under AWS KMS: it opens the sealed values for the check (env KEK_URI)")
	keyFile := fs.String("master-key-file", getenv("COUNTERSIGN_MASTER_KEY_FILE"), "the master key file, to check that every sealed value opens before anything is put in place (read only, never created; without it the sealed values are not checked) (env COUNTERSIGN_MASTER_KEY_FILE)")
	if err := parseFlags(fs, args, stdout, restoreUsage, nil); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("restore: unexpected argument %q", fs.Arg(0))
	}
	if *from == "" {
		return errors.New("restore: --from FILE is required")
	}
	target, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := restoreBackup(ctx, *from, target, *keyFile, *kekURI, stdout); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// restoreBackup unpacks from into a temporary directory next to target,
// verifies it and renames it to target.
func restoreBackup(ctx context.Context, from, target, keyFile, kekURI string, stdout io.Writer) error {
	if names, err := os.ReadDir(target); err == nil && len(names) > 0 {
		return fmt.Errorf("the data directory %s is not empty: restore only into a new or empty directory (nothing was changed)", target)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(target)+".restore-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone once renamed; removed with everything if a check fails
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	m, err := unpackBackup(from, tmp)
	if err != nil {
		return err
	}
	sum, err := fileSHA256(filepath.Join(tmp, backupDBName))
	if err != nil {
		return err
	}
	if sum != m.DBSHA256 {
		return errors.New("the database in the backup does not match the manifest's checksum: the file is damaged")
	}
	if m.KeystoreSHA256 != nil { // every key file unpacked is one the manifest vouches for
		unpacked, _ := filepath.Glob(filepath.Join(tmp, "keystore", "*.kdb"))
		for _, p := range unpacked {
			if id := strings.TrimSuffix(filepath.Base(p), ".kdb"); m.KeystoreSHA256[id] == "" {
				return fmt.Errorf("the backup holds key file %s, which its manifest does not list: the backup was altered", id)
			}
		}
	}
	for id, want := range m.KeystoreSHA256 {
		if !backupKDBName.MatchString("keystore/" + id + ".kdb") {
			return fmt.Errorf("the backup's manifest names a key file %q that no backup holds", id)
		}
		sum, err := fileSHA256(filepath.Join(tmp, "keystore", id+".kdb"))
		if err != nil {
			return fmt.Errorf("the backup's manifest lists key file %s, which the backup does not hold", id)
		}
		if sum != want {
			return fmt.Errorf("the key file %s in the backup does not match the manifest's checksum: the file is damaged", id)
		}
	}
	cfg := &Config{DataDir: tmp, KeystoreKind: m.Keystore}
	if err := cfg.defaults(); err != nil {
		return err
	}
	cfg.MasterKeyFile = keyFile // "" (not the default under tmp): no check
	cfg.KEKURI = kekURI
	report, err := checkRestored(ctx, cfg)
	if err != nil {
		return err
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err // not empty after all: someone wrote into it meanwhile
	}
	if err := os.Rename(tmp, target); err != nil {
		return err
	}
	syncDir(parent)
	fmt.Fprintf(stdout, "restored %s into %s: %s\nCopy the master key file (key id(s) %s) to %s (or set COUNTERSIGN_MASTER_KEY_FILE) and start the server with --data-dir %s%s.\n",
		from, target, report, strings.Join(m.KEKIDs, ", "), filepath.Join(target, "master.key"), target, keystoreHint(m))
	return nil
}

func keystoreHint(m *backupManifest) string {
	if m.Keystore == "store" {
		return " and KEYSTORE=store"
	}
	return ""
}

// unpackBackup writes the archive's files into dir, accepting only the
// names a backup holds: no path leaves dir, nothing but regular files.
func unpackBackup(from, dir string) (*backupManifest, error) {
	f, err := os.Open(from)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var m *backupManifest
	seenDB := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s is not a countersign backup: %w", from, err)
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("the backup holds %q, which is not a regular file", h.Name)
		}
		switch {
		case h.Name == backupManifestName && m == nil:
			if h.Size > 1<<20 {
				return nil, errors.New("the backup's manifest is too large")
			}
			var mm backupManifest
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&mm); err != nil {
				return nil, fmt.Errorf("the backup's manifest is unreadable: %w", err)
			}
			if mm.Format != backupFormat || mm.Version != backupVersion {
				return nil, fmt.Errorf("%s is not a countersign backup of version %d", from, backupVersion)
			}
			if mm.Keystore != "dir" && mm.Keystore != "store" {
				return nil, fmt.Errorf("the backup's manifest names keystore %q", mm.Keystore)
			}
			m = &mm
		case m == nil:
			return nil, fmt.Errorf("%s is not a countersign backup (no manifest first)", from)
		case h.Name == backupDBName && !seenDB:
			seenDB = true
			if err := extract(tr, filepath.Join(dir, backupDBName)); err != nil {
				return nil, err
			}
		case backupKDBName.MatchString(h.Name) && m.Keystore == "dir":
			ks := filepath.Join(dir, "keystore")
			if err := os.MkdirAll(ks, 0o700); err != nil {
				return nil, err
			}
			if err := extract(tr, filepath.Join(ks, backupKDBName.FindStringSubmatch(h.Name)[1]+".kdb")); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("the backup holds an unexpected entry %q", h.Name)
		}
	}
	if m == nil || !seenDB {
		return nil, fmt.Errorf("%s is not a complete countersign backup (manifest or database missing)", from)
	}
	return m, nil
}

func extract(r io.Reader, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkRestored opens the unpacked database and checks what a server
// needs: the audit chains verify, every keystore-format wallet has its
// file, and, given the master key file, every sealed value opens.
func checkRestored(ctx context.Context, cfg *Config) (string, error) {
	st, err := sqlite.Open(ctx, cfg.DB)
	if err != nil {
		return "", fmt.Errorf("the backup's database does not open: %w", err)
	}
	defer st.Close()
	n, err := core.VerifyAudit(ctx, st)
	if err != nil {
		return "", fmt.Errorf("audit chain BROKEN in the backup after %d good entries: %w", n, err)
	}
	ks, err := openKeystore(cfg, st)
	if err != nil {
		return "", err
	}
	var sealer *envelope.Sealer
	if cfg.KEKURI != "" { // the KMS key, and the file's keys if there is a file
		if sealer, err = maintSealer(ctx, cfg, rotateTarget{}); err != nil {
			return "", err
		}
	} else if cfg.MasterKeyFile != "" {
		keks, err := envelope.LoadKeys(cfg.MasterKeyFile)
		if err != nil {
			return "", err
		}
		sealer, err = envelope.NewFromKeys(keks)
		for _, k := range keks {
			clear(k)
		}
		if err != nil {
			return "", err
		}
	}
	wallets, opened := 0, 0
	err = eachSealed(ctx, st, func(v *countersign.SealedValue) error {
		if v.Kind == countersign.SealedWallet && v.Format == countersign.WalletKeyKDB {
			wallets++
			if _, err := ks.Get(ctx, v.ID); err != nil {
				return fmt.Errorf("wallet %s has no key file in the backup", v.ID)
			}
		}
		if sealer != nil {
			pt, err := sealer.Open(v.RecordID(), v.Sealed)
			if err != nil {
				id, _ := envelope.SealedKeyID(v.Sealed)
				if !errors.Is(err, envelope.ErrOpen) { // a KMS that could not be asked: not the backup's fault
					return fmt.Errorf("a sealed %s value (%s, key id %s) could not be opened: %w", v.Kind, v.ID, id, err)
				}
				return fmt.Errorf("a sealed %s value (%s) does not open with the master key file %s (it needs key id %s)", v.Kind, v.ID, cfg.MasterKeyFile, id)
			}
			clear(pt)
			opened++
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	report := fmt.Sprintf("audit chain OK (%d entries), %d wallet key files present", n, wallets)
	if sealer != nil {
		report += fmt.Sprintf(", %d sealed values open with the master key", opened)
	} else {
		report += ", sealed values NOT checked (no master key file given: --master-key-file)"
	}
	return report, nil
}
