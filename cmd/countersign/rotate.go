package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/cloud/awskms"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/keys/envelope"
)

const rotateUsage = `Usage: countersign rotate-master-key [--new-key-file FILE [--stage] | --to awskms://…] [--check] [--retire] [flags]

Re-wraps every data key sealed under an older master key (KEK) under the
current one: wallet key secrets, TOTP secrets (and ones being enrolled),
session and audit signing keys, webhook secrets. Only the data keys are
re-encrypted; the secrets' ciphertexts stay as they are. It runs while the
server serves; each batch commits with its "kek.rotate" audit entry in the
system chain, so a rotation cut short is finished by running it again.

The master key file holds one key per line: the first seals, every line
opens. A server follows the file and picks up a new key without a restart.

  --new-key-file FILE  put FILE's key (generated into FILE, mode 0600, if FILE
                       does not exist) first in the master key file, the old
                       key(s) after it, then re-wrap
  --stage              with --new-key-file: only add FILE's key to the master
                       key file after the current one (it opens, it does not
                       seal yet) and stop: with several replicas, copy that
                       file to every replica first
  --to awskms://KEY_ID?region=…[&endpoint=…]
                       re-wrap every value under this AWS KMS key (from the
                       file's keys); before it, every replica must open
                       under it: KEK_URI=the same URI and KEK_OPEN_ONLY=1 on
                       each; after it, drop KEK_OPEN_ONLY. From another KMS
                       key it is refused (a server opens under one KMS key):
                       go through a master key file (From KMS, then To KMS
                       below), or let AWS KMS rotate the key's material
  (no flag)            re-wrap every value not under the current key: the
                       KMS key of --kek-uri (KEK_URI) unless --kek-open-only
                       (KEK_OPEN_ONLY=1), else the file's first key
  --check              count the values per key id, check every one opens;
                       exit status 1 if any is under an older key (with --to:
                       under any other key than that one)
  --retire             after a check finds none under older keys, remove the
                       older keys from the master key file
  --kek-uri URI        the servers' KEK_URI (env KEK_URI): its KMS key opens,
                       and is the current key unless --kek-open-only

To KMS: set KEK_URI=awskms://… and KEK_OPEN_ONLY=1 on every replica, run
--to awskms://…, drop KEK_OPEN_ONLY, run --to again (values sealed during
the roll), --check; the master key file can then go offline. From KMS:
--new-key-file FILE --stage --kek-uri … (creates the master key file when
there is none), copy it to every replica, set KEK_OPEN_ONLY=1 on each, run
--new-key-file FILE --kek-uri …, --check, then unset KEK_URI.`

// rotateBatchDone is called after each committed batch (tests: cut a
// rotation short).
var rotateBatchDone func(done int)

func rotateCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rotate-master-key", flag.ContinueOnError)
	newKey := fs.String("new-key-file", "", "the new master key: a key file (created with a new random key if it does not exist)")
	stage := fs.Bool("stage", false, "with --new-key-file: only add the new key to the master key file as a key that opens (not yet seals); re-wrap nothing")
	check := fs.Bool("check", false, "only report which key ids the sealed values use; exit status 1 if any older one is still used")
	retire := fs.Bool("retire", false, "remove the older keys from the master key file once no sealed value uses them")
	batch := fs.Int("batch", 200, "values re-wrapped per transaction")
	to := fs.String("to", "", "re-wrap every value under this AWS KMS key: awskms://KEY_ID?region=…[&endpoint=…]")
	cfg := auditFlags(fs, getenv, true)
	fs.StringVar(&cfg.KEKURI, "kek-uri", getenv("KEK_URI"), "the servers' KMS key-encryption key, awskms://… (env KEK_URI): it opens, and is current unless --kek-open-only")
	fs.BoolVar(&cfg.KEKOpenOnly, "kek-open-only", false, "the KMS key of --kek-uri only opens; the master key file's first key is current (env KEK_OPEN_ONLY=1)")
	if err := parseFlags(fs, args, stdout, rotateUsage, nil); err != nil {
		return err
	}
	if err := kekEnv(fs, cfg, firstEnv(getenv)); err != nil {
		return err
	}
	if err := auditArgs(fs, cfg); err != nil {
		return err
	}
	modes := 0
	for _, b := range []bool{*newKey != "", *check, *retire, *to != "" && !*check} {
		if b {
			modes++
		}
	}
	switch {
	case modes > 1:
		return errors.New("rotate-master-key: use one of --new-key-file, --to, --check, --retire (--to goes with --check)")
	case *stage && *newKey == "":
		return errors.New("rotate-master-key: --stage goes with --new-key-file")
	case *batch < 1 || *batch > 10000:
		return errors.New("rotate-master-key: --batch must be between 1 and 10000")
	}
	if err := checkKEK(cfg.KEKURI, cfg.KEKOpenOnly); err != nil {
		return err
	}
	if *to != "" {
		if err := checkKEK(*to, false); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		if err := checkKMSToKMS(cfg.KEKURI, *to); err != nil {
			return err
		}
	}
	target := rotateTarget{to: *to, fileCurrent: *newKey != ""}
	switch {
	case *check:
		return rotateCheck(ctx, cfg, target, stdout)
	case *retire:
		return rotateRetire(ctx, cfg, target, stdout)
	case *newKey != "":
		// From KMS there may be no master key file yet: the new key is its
		// first.
		// The audit entry's writer first: a store or key that cannot be
		// opened stops the run before the file changes.
		rec, err := openRecorder(ctx, cfg)
		if err != nil {
			return err
		}
		id, changed, err := installKey(cfg.MasterKeyFile, *newKey, !*stage, cfg.KEKURI != "", stdout)
		if err == nil && changed {
			role := "seals"
			if *stage {
				role = "opens only"
			}
			if err = rec.record(ctx, countersign.Change{Owner: core.SystemOwner, Actor: "operator", Action: "kek.add", Subject: "kek:" + id,
				Details: map[string]any{"key_id": id, "role": role, "file": cfg.MasterKeyFile}}); err != nil {
				err = fmt.Errorf("the master key file %s changed (key id %s %s), but its audit entry could not be written: %w", cfg.MasterKeyFile, id, role, err)
			}
		}
		rec.close()
		if err != nil {
			return err
		}
		if *stage {
			fmt.Fprintf(stdout, "Copy %s to every replica (a server loads a changed file on its next use of a key it lacks: no restart), then run \"countersign rotate-master-key --new-key-file %s\" to make it current and re-wrap.\n", cfg.MasterKeyFile, *newKey)
			if cfg.KEKURI != "" {
				fmt.Fprintln(stdout, "KEK_URI's KMS key seals on the servers until they run with KEK_OPEN_ONLY=1 (the file's first key then seals): set it on every replica before that run.")
			}
			return nil
		}
	}
	return rewrapAll(ctx, cfg, target, *batch, stdout)
}

// rotateTarget says which key is current for a maintenance run: the KMS
// key of --to; else the master key file's first key when fileCurrent
// (--new-key-file) or when the servers' KMS key only opens; else the KMS
// key of KEK_URI when set; else the file's first key.
type rotateTarget struct {
	to          string
	fileCurrent bool
}

// installKey adds the key of newFile to the master key file: first (it
// seals from now on) when current, else last (it only opens, so that every
// replica can read what will be sealed under it before any seals). Run
// again with the same file it changes nothing.
func installKey(masterFile, newFile string, current, mayCreate bool, stdout io.Writer) (id string, changed bool, err error) {
	old, err := envelope.LoadKeys(masterFile) // never created here from nothing: the data is sealed under what it holds
	if err != nil && !(mayCreate && errors.Is(err, os.ErrNotExist)) {
		return "", false, err
	}
	defer clearAll(old)
	var kek []byte
	if _, err := os.Stat(newFile); errors.Is(err, os.ErrNotExist) {
		if kek, err = envelope.GenerateKey(); err != nil {
			return "", false, err
		}
		if err := envelope.WriteKeys(newFile, [][]byte{kek}); err != nil {
			return "", false, err
		}
		fmt.Fprintf(stdout, "generated a new master key in %s (key id %s): back it up like the old one\n", newFile, envelope.KeyID(kek))
	} else {
		keks, err := envelope.LoadKeys(newFile)
		if err != nil {
			return "", false, err
		}
		if len(keks) != 1 {
			clearAll(keks)
			return "", false, fmt.Errorf("%s holds %d keys: a new key file holds exactly one", newFile, len(keks))
		}
		kek = keks[0]
	}
	defer clear(kek)
	id = envelope.KeyID(kek)
	ids := keyIDs(old)
	if len(old) == 0 { // from KMS: the file's first and only key
		if err := envelope.WriteKeys(masterFile, [][]byte{kek}); err != nil {
			return "", false, err
		}
		fmt.Fprintf(stdout, "master key file %s created with key id %s: it seals wherever the KMS key of KEK_URI does not (KEK_OPEN_ONLY=1, or no KEK_URI)\n", masterFile, id)
		return id, true, nil
	}
	switch {
	case current && ids[0] == id:
		fmt.Fprintf(stdout, "key id %s is already the current key of %s\n", id, masterFile)
		return id, false, nil
	case !current && slices.Contains(ids, id):
		fmt.Fprintf(stdout, "key id %s is already in %s\n", id, masterFile)
		return id, false, nil
	}
	var set [][]byte
	if current {
		set = append(set, kek)
	}
	for _, k := range old {
		if envelope.KeyID(k) != id {
			set = append(set, k)
		}
	}
	if !current {
		set = append(set, kek)
	}
	if err := envelope.WriteKeys(masterFile, set); err != nil {
		return "", false, err
	}
	if current {
		fmt.Fprintf(stdout, "master key file %s: key id %s seals from now on; %s still open\n", masterFile, id, strings.Join(keyIDs(set[1:]), ", "))
	} else {
		fmt.Fprintf(stdout, "master key file %s: key id %s added (opens only); %s still seals\n", masterFile, id, ids[0])
	}
	return id, true, nil
}

// openMaint opens what the maintenance commands need: the KEKs (every key
// of the master key file, the KMS keys of --kek-uri and --to; current as
// rotateTarget says) and the store, which must be able to list and
// replace its sealed values.
func openMaint(ctx context.Context, cfg *Config, target rotateTarget) (*envelope.Sealer, countersign.Store, countersign.Resealer, error) {
	sealer, err := maintSealer(ctx, cfg, target)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	rs, ok := st.(countersign.Resealer)
	if !ok {
		st.Close()
		return nil, nil, nil, fmt.Errorf("the %s store cannot list its sealed values: rotate-master-key does not support it yet", redactDB(cfg.DB))
	}
	return sealer, st, rs, nil
}

// maintSealer is the sealer of a maintenance command: every key of the
// master key file and the KMS keys of --to and KEK_URI, current as target
// says (rotateTarget{} is the servers' own choice: KEK_URI's key unless
// KEK_OPEN_ONLY, else the file's first key); nothing is created or
// followed. backup's restore check and audit checkpoint want the same.
func maintSealer(ctx context.Context, cfg *Config, target rotateTarget) (*envelope.Sealer, error) {
	uris := []string{target.to, cfg.KEKURI}
	kmsSeals := target.to != "" || (cfg.KEKURI != "" && !cfg.KEKOpenOnly && !target.fileCurrent)
	sealer, _, err := kekSealer(ctx, cfg.MasterKeyFile, uris, kmsSeals, false, false)
	return sealer, err
}

// chainless stands in for the chain: the rotation records audit entries
// through the service and never touches a chain.
type chainless struct{ countersign.Chain }

func (chainless) ChainID(context.Context) (*big.Int, error) { return new(big.Int), nil }

// rewrapAll re-wraps, batch by batch, every sealed value whose KEK id is
// not the current key's. Each batch is one transaction with its audit
// entry; a value the server replaced meanwhile is left (compare and swap)
// and counted, and a value no key opens stops the rotation before its
// batch writes anything.
func rewrapAll(ctx context.Context, cfg *Config, target rotateTarget, batch int, stdout io.Writer) error {
	sealer, st, rs, err := openMaint(ctx, cfg, target)
	if err != nil {
		return err
	}
	defer st.Close()
	// The service writes the audit entries (the chain's hashing is core's);
	// New also opens the session keys, so a master key file without the
	// key they are sealed under fails here, before anything is written.
	svc, err := maintService(ctx, cfg, target, st, sealer)
	if err != nil {
		return err
	}
	defer svc.Close()
	to := sealer.CurrentKeyID()
	from := slices.DeleteFunc(sealer.KeyIDs(), func(id string) bool { return id == to })
	slices.Sort(from)
	total, skipped := map[string]int{}, 0
	done := 0
	for _, kind := range countersign.SealedKinds {
		after := ""
		for {
			vs, err := rs.SealedValues(ctx, kind, after, batch)
			if err != nil {
				return fmt.Errorf("list %s values: %w (%d re-wrapped before; run rotate-master-key again to finish)", kind, err, done)
			}
			swaps, err := planRewrap(sealer, vs, to)
			if err != nil {
				return fmt.Errorf("%w in %s%s: %d values re-wrapped so far, nothing else changed", err, cfg.MasterKeyFile, kmsNote(cfg, target), done)
			}
			if len(swaps) > 0 {
				n, err := commitRewrap(ctx, svc, rs, kind, from, to, swaps)
				if err != nil {
					return fmt.Errorf("re-wrap %s values: %w (%d re-wrapped before; run rotate-master-key again to finish)", kind, err, done)
				}
				total[kind] += n
				skipped += len(swaps) - n
				done += n
				if rotateBatchDone != nil {
					rotateBatchDone(done)
				}
			}
			if len(vs) < batch {
				break
			}
			after = vs[len(vs)-1].ID
		}
	}
	c, err := sealedKeyIDs(ctx, st, nil)
	if err != nil {
		return err
	}
	left := 0
	for id, n := range c.byID {
		if id != to {
			left += n
		}
	}
	fmt.Fprintf(stdout, "re-wrapped %d sealed values under key id %s %s\n", done, to, kindCounts(total))
	if left > 0 {
		// The server sealed these under an older key meanwhile (it had not
		// seen the new file yet), or replaced them during the batch.
		fmt.Fprintf(stdout, "%d values are still under an older key (%d changed by the server during the rotation): run rotate-master-key again\n", left, skipped)
		return nil
	}
	if done > 0 {
		if err := svc.Record(ctx, countersign.Change{Owner: core.SystemOwner, Actor: "operator", Action: "kek.rotate.complete", Subject: "kek:" + to,
			Details: map[string]any{"to": to, "unused": from, "rewrapped": done}}, func(context.Context) error { return nil }); err != nil {
			return err
		}
	}
	if len(from) > 0 {
		fmt.Fprintf(stdout, "no sealed value uses key id(s) %s any more: remove them with \"countersign rotate-master-key --retire\"\n", strings.Join(from, ", "))
	}
	return nil
}

// kmsNote names the KMS keys a maintenance run opened with, for messages.
func kmsNote(cfg *Config, target rotateTarget) string {
	var uris []string
	for _, u := range []string{target.to, cfg.KEKURI} {
		if u != "" && !slices.Contains(uris, redactURL(u)) {
			uris = append(uris, redactURL(u))
		}
	}
	if len(uris) == 0 {
		return ""
	}
	return " and the KMS key(s) " + strings.Join(uris, ", ")
}

// census is what sealedKeyIDs found: values per KEK id, and the first
// value that did not open (when it was asked to open them).
type census struct {
	byID map[string]int
	bad  error
}

// sealedKeyIDs counts the sealed values per KEK id; with a sealer, it also
// opens each.
func sealedKeyIDs(ctx context.Context, st countersign.Store, sealer *envelope.Sealer) (*census, error) {
	c := &census{byID: map[string]int{}}
	err := eachSealed(ctx, st, func(v *countersign.SealedValue) error {
		id, err := envelope.SealedKeyID(v.Sealed)
		if err != nil {
			id = "unreadable"
		}
		c.byID[id]++
		if sealer != nil && c.bad == nil {
			pt, err := sealer.Open(v.RecordID(), v.Sealed)
			if errors.Is(err, envelope.ErrOpen) {
				c.bad = fmt.Errorf("a sealed %s value (%s) under key id %q does not open with the master key file", v.Kind, v.ID, id)
			} else if err != nil { // a KMS that could not be asked: not the value's fault
				c.bad = fmt.Errorf("a sealed %s value (%s) under key id %q could not be opened: %w", v.Kind, v.ID, id, err)
			}
			clear(pt)
		}
		return nil
	})
	return c, err
}

// rotateCheck reports the key ids in use; an older key still used, or a
// value that does not open, is an error (exit status 1).
func rotateCheck(ctx context.Context, cfg *Config, target rotateTarget, stdout io.Writer) error {
	sealer, st, _, err := openMaint(ctx, cfg, target)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := sealedKeyIDs(ctx, st, sealer)
	if err != nil {
		return err
	}
	byID, bad := c.byID, c.bad
	to := sealer.CurrentKeyID()
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	old := 0
	for _, id := range ids {
		mark := ""
		if id == to {
			mark = " (current)"
		} else {
			old += byID[id]
		}
		fmt.Fprintf(stdout, "key id %s%s: %d sealed values\n", id, mark, byID[id])
	}
	if bad != nil {
		return bad
	}
	if old > 0 {
		return fmt.Errorf("%d sealed values are under older keys: run rotate-master-key", old)
	}
	var unused []string
	for _, id := range sealer.KeyIDs() {
		if id != to {
			unused = append(unused, id)
		}
	}
	slices.Sort(unused)
	if len(unused) > 0 {
		fmt.Fprintf(stdout, "every sealed value opens under the current key %s; key id(s) %s are unused and may be retired\n", to, strings.Join(unused, ", "))
	} else {
		fmt.Fprintf(stdout, "every sealed value opens under the current key %s\n", to)
	}
	return nil
}

// rotateRetire removes the older keys from the master key file after a
// check that nothing uses them.
func rotateRetire(ctx context.Context, cfg *Config, target rotateTarget, stdout io.Writer) error {
	if err := rotateCheck(ctx, cfg, target, stdout); err != nil {
		return fmt.Errorf("not retiring any key: %w", err)
	}
	keks, err := envelope.LoadKeys(cfg.MasterKeyFile)
	if cfg.KEKURI != "" && errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(stdout, "there is no master key file: nothing to retire")
		return nil
	}
	if err != nil {
		return err
	}
	defer clearAll(keks)
	if cfg.KEKURI != "" && !cfg.KEKOpenOnly {
		// Every value is under the KMS key: the file's keys are all
		// unused. The file is not deleted here: a backup may still name
		// its keys.
		fmt.Fprintf(stdout, "no sealed value uses the keys of %s (key id(s) %s): the servers no longer need it; keep it offline while a backup names them, then delete it\n",
			cfg.MasterKeyFile, strings.Join(keyIDs(keks), ", "))
		return nil
	}
	if len(keks) == 1 {
		fmt.Fprintf(stdout, "%s holds one key: nothing to retire\n", cfg.MasterKeyFile)
		return nil
	}
	rec, err := openRecorder(ctx, cfg) // before the file changes: see rotateCmd
	if err != nil {
		return err
	}
	defer rec.close()
	if err := envelope.WriteKeys(cfg.MasterKeyFile, keks[:1]); err != nil {
		return err
	}
	current, retired := envelope.KeyID(keks[0]), keyIDs(keks[1:])
	fmt.Fprintf(stdout, "retired key id(s) %s from %s: copy it to every replica; keep the old key offline while a backup still needs it\n",
		strings.Join(retired, ", "), cfg.MasterKeyFile)
	if err := rec.record(ctx, countersign.Change{Owner: core.SystemOwner, Actor: "operator", Action: "kek.retire", Subject: "kek:" + current,
		Details: map[string]any{"retired": retired, "current": current, "file": cfg.MasterKeyFile}}); err != nil {
		return fmt.Errorf("the master key file %s changed (key id(s) %s retired), but its audit entry could not be written: %w", cfg.MasterKeyFile, strings.Join(retired, ", "), err)
	}
	return nil
}

// maintRecorder writes a maintenance step's audit entry in the system
// chain, through the service (the chain's hashing is core's). It is opened
// before the step changes the master key file, with the keys the servers
// use (rotateTarget{}), so that a store or KMS that cannot be reached
// stops the step before anything changes, rather than leave a change that
// a second run (finding nothing to do) would never audit.
type maintRecorder struct {
	st  countersign.Store
	svc *core.Service
}

func openRecorder(ctx context.Context, cfg *Config) (*maintRecorder, error) {
	sealer, err := maintSealer(ctx, cfg, rotateTarget{})
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	svc, err := maintService(ctx, cfg, rotateTarget{}, st, sealer)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &maintRecorder{st: st, svc: svc}, nil
}

// maintService is the service a maintenance command records its audit
// entries through: no chain, no signer, a silent log.
func maintService(ctx context.Context, cfg *Config, target rotateTarget, st countersign.Store, sealer *envelope.Sealer) (*core.Service, error) {
	svc, err := core.New(ctx, st, chainless{}, nil, sealer, nil, slog.New(slog.DiscardHandler), core.Config{})
	if err != nil {
		return nil, fmt.Errorf("open the store with the master key file %s%s: %w", cfg.MasterKeyFile, kmsNote(cfg, target), err)
	}
	return svc, nil
}

func (r *maintRecorder) record(ctx context.Context, c countersign.Change) error {
	return r.svc.Record(ctx, c, func(context.Context) error { return nil })
}

func (r *maintRecorder) close() {
	r.svc.Close()
	r.st.Close()
}

func keyIDs(keks [][]byte) []string {
	ids := make([]string, len(keks))
	for i, k := range keks {
		ids[i] = envelope.KeyID(k)
	}
	return ids
}

func clearAll(keks [][]byte) {
	for _, k := range keks {
		clear(k)
	}
}

func kindCounts(m map[string]int) string {
	var parts []string
	for _, k := range countersign.SealedKinds {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// checkMasterKey refuses a start whose master key file lacks the key the
// database's session signing keys are sealed under: the first secret the
// service opens. Without it the start failed later with the envelope's
// bare "cannot open sealed value", which names neither the file nor the
// key it needs.
func checkMasterKey(ctx context.Context, cfg *Config, st countersign.Store, sealer countersign.Sealer) error {
	ks, ok := sealer.(interface{ KeyIDs() []string })
	if !ok {
		return nil
	}
	have := ks.KeyIDs()
	sks, err := st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	for _, sk := range sks {
		id, err := envelope.SealedKeyID(sk.Sealed)
		if err != nil || slices.Contains(have, id) {
			continue
		}
		if arn, ok := strings.CutPrefix(id, "awskms:"); ok {
			return fmt.Errorf("this database's secrets are sealed under the AWS KMS key %s, which this server was not given (it has %s): "+
				"set KEK_URI=awskms://%s?region=… (--kek-uri) with credentials allowed to use it; a new key would lose every wallet",
				arn, strings.Join(have, ", "), arn)
		}
		return fmt.Errorf("the master key file %s does not hold the key this database's secrets are sealed under (key id %s; the file holds %s): "+
			"start with the master key file of this data (COUNTERSIGN_MASTER_KEY_FILE, --master-key-file); a new key would lose every wallet",
			cfg.MasterKeyFile, id, strings.Join(have, ", "))
	}
	return nil
}

// warnUnopenable logs, at start, the sealed values whose envelope names a
// key this server lacks (a key retired while a value still used it, a
// restore onto another key): checkMasterKey refuses a start only for the
// signing keys, which every request needs; these fail where they are used
// (one wallet's signing, one user's TOTP, one webhook), so the server
// serves the rest and says at once which and where. It reads the key id
// of every sealed value and opens none, for at most 5 s (a database of
// 300,000 wallets takes about half a second on SQLite).
func warnUnopenable(ctx context.Context, st countersign.Store, sealer countersign.Sealer, log *slog.Logger) {
	ks, ok := sealer.(interface{ KeyIDs() []string })
	if !ok {
		return
	}
	if _, ok := st.(countersign.Resealer); !ok {
		return
	}
	have := ks.KeyIDs()
	missing := map[string]map[string]int{} // key id → kind → count
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := eachSealed(ctx, st, func(v *countersign.SealedValue) error {
		id, err := envelope.SealedKeyID(v.Sealed)
		if err != nil {
			id = "unreadable"
		}
		if !slices.Contains(have, id) {
			if missing[id] == nil {
				missing[id] = map[string]int{}
			}
			missing[id][v.Kind]++
		}
		return nil
	})
	if err != nil { // a warning's check: it does not stop the start
		log.Warn("could not read the key ids of every sealed value at start: run \"countersign rotate-master-key --check\"", "err", err)
	}
	for id, kinds := range missing {
		log.Warn("sealed values name a key this server does not hold: they cannot be opened (each fails where it is used) until it is given the key; run \"countersign rotate-master-key --check\"",
			"key_id", id, "values", kindCounts(kinds), "keys_held", strings.Join(have, ", "))
	}
}

// rewrapSwap is one sealed value and its re-wrapped bytes.
type rewrapSwap struct {
	v      *countersign.SealedValue
	sealed []byte
}

// planRewrap re-wraps, in memory, every value of vs not yet under key id
// to; a value that opens with no key stops the rotation before anything
// is written.
func planRewrap(sealer *envelope.Sealer, vs []*countersign.SealedValue, to string) ([]rewrapSwap, error) {
	var swaps []rewrapSwap
	for _, v := range vs {
		id, _ := envelope.SealedKeyID(v.Sealed)
		if id == to {
			continue
		}
		nv, changed, err := sealer.Rewrap(v.RecordID(), v.Sealed)
		if errors.Is(err, envelope.ErrOpen) {
			return nil, fmt.Errorf("a sealed %s value (%s) does not open with any key (it names key id %q)", v.Kind, v.ID, id)
		}
		if err != nil { // a KMS outage, say: said as it is, not as damage
			return nil, fmt.Errorf("cannot re-wrap a sealed %s value (%s, key id %q): %w", v.Kind, v.ID, id, err)
		}
		if changed {
			swaps = append(swaps, rewrapSwap{v, nv})
		}
	}
	return swaps, nil
}

var errNothingReplaced = errors.New("nothing replaced")

// commitRewrap swaps one batch in one transaction with its kek.rotate
// audit entry; a row the server changed since it was read is left alone
// (not counted).
func commitRewrap(ctx context.Context, svc *core.Service, rs countersign.Resealer, kind string, from []string, to string, swaps []rewrapSwap) (int, error) {
	n := 0
	details := map[string]any{"from": from, "to": to, "kind": kind}
	err := svc.Record(ctx, countersign.Change{Owner: core.SystemOwner, Actor: "operator", Action: "kek.rotate", Subject: "kek:" + to, Details: details},
		func(ctx context.Context) error {
			n = 0
			for _, s := range swaps {
				ok, err := rs.ReplaceSealed(ctx, s.v, s.sealed)
				if err != nil {
					return err
				}
				if ok {
					n++
				}
			}
			// what was replaced, not what was planned (the entry is made
			// after this runs, in the same transaction)
			if n == 0 {
				return errNothingReplaced // the server re-sealed them all meanwhile: no entry for a change that did not happen
			}
			details["count"] = n
			if left := len(swaps) - n; left > 0 {
				details["changed_meanwhile"] = left
			}
			return nil
		})
	if errors.Is(err, errNothingReplaced) {
		return 0, nil
	}
	return n, err
}

// checkKMSToKMS refuses --to a KMS key while the servers' KEK_URI names
// another one: a server opens under its one KMS key (and the master key
// file), so what this rotation re-wraps would open on no replica until
// each restarted on the new key — an outage of MFA, signing and webhooks.
func checkKMSToKMS(current, to string) error {
	if current == "" {
		return nil
	}
	a, errA := awskms.ParseURI(current)
	b, errB := awskms.ParseURI(to)
	if errA != nil || errB != nil || (a.KeyID == b.KeyID && a.Region == b.Region) {
		return nil // checkKEK has said what does not parse; the same key is the To-KMS roll
	}
	return fmt.Errorf("rotate-master-key: --to names KMS key %s while the servers' KEK_URI is KMS key %s: a server opens under one KMS key, so no replica could open what this would re-wrap. Go through a master key file (--new-key-file FILE --stage --kek-uri <current>, KEK_OPEN_ONLY=1, --new-key-file FILE, unset KEK_URI; then --to <new>), or let AWS KMS rotate the key's material (the key id stays). If both name one key (an alias and its ARN), write --to exactly as KEK_URI", b.KeyID, a.KeyID)
}
