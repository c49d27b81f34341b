package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/term"

	"github.com/countersign/countersign/keys/keystore"
)

// `countersign keygen` is the operator wallet's key generation script: a
// new secp256k1 key written as a Web3 Secret Storage v3 keystore file
// (what geth, MetaMask and ethers read), its address printed. The
// passphrase comes from OPERATOR_WALLET_PASSPHRASE or a prompt — never a
// flag, which other users can read in ps.

const keygenUsage = `Usage: countersign keygen [--out FILE] [--kdf standard|light]

Writes a new encrypted v3 keystore file (mode 0600) and prints its address.
It refuses to overwrite a file. The passphrase is OPERATOR_WALLET_PASSPHRASE,
or is asked for twice on the terminal.`

// keystore KDF strengths: geth's StandardScryptN/P and LightScryptN/P.
var keygenKDF = map[string][2]int{"standard": {1 << 18, 1}, "light": {1 << 12, 6}}

// minKeystorePassphrase is the shortest passphrase keygen accepts.
const minKeystorePassphrase = 12

func keygenCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	out := fs.String("out", getenv("OPERATOR_KEYSTORE_PATH"), "where to write the keystore file (env OPERATOR_KEYSTORE_PATH)")
	kdf := fs.String("kdf", "standard", "scrypt strength: standard (n=2^18, ~1 s and 256 MiB to open) or light (n=2^12)")
	if err := parseFlags(fs, args, stdout, keygenUsage, nil); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("keygen: unexpected argument %q (the passphrase is never a flag or argument)", fs.Arg(0))
	}
	params, ok := keygenKDF[*kdf]
	if !ok {
		return fmt.Errorf("keygen: --kdf must be standard or light, not %q", *kdf)
	}
	if *out == "" {
		return errors.New("keygen: where to? set --out or OPERATOR_KEYSTORE_PATH")
	}
	if _, err := os.Lstat(*out); err == nil {
		return fmt.Errorf("keygen: %s exists: refusing to overwrite a key", *out)
	}
	pass, err := newPassphrase(getenv, "OPERATOR_WALLET_PASSPHRASE", stderr)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	key, err := crypto.GenerateKey()
	if err != nil {
		return err
	}
	defer keystore.ZeroKey(key)
	raw := crypto.FromECDSA(key)
	defer clear(raw)
	file, err := keystore.ExportV3(raw, pass, params[0], params[1])
	if err != nil {
		return err
	}
	// O_EXCL: a file created meanwhile is not overwritten either
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.Write(file); err != nil {
		f.Close()
		os.Remove(*out)
		return fmt.Errorf("keygen: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(*out)
		return fmt.Errorf("keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, crypto.PubkeyToAddress(key.PublicKey).Hex())
	fmt.Fprintf(stderr, "wrote %s (v3 keystore, scrypt n=%d): back it up with its passphrase; without both the key is lost\n", *out, params[0])
	return nil
}

// newPassphrase is env's value, or one typed twice on the terminal.
func newPassphrase(getenv func(string) string, env string, stderr io.Writer) (string, error) {
	pass := getenv(env)
	if pass == "" {
		fd := int(os.Stdin.Fd())
		if !term.IsTerminal(fd) {
			return "", fmt.Errorf("set %s, or run it on a terminal to be asked", env)
		}
		fmt.Fprint(stderr, "passphrase: ")
		a, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "again: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passphrases differ")
		}
		pass = string(a)
	}
	if len([]rune(pass)) < minKeystorePassphrase {
		return "", fmt.Errorf("the passphrase must have at least %d characters", minKeystorePassphrase)
	}
	return pass, nil
}

// `countersign keystore import|export` moves keys in and out of a user's
// countersigned wallets through a running server (POST /api/import_wallet,
// /api/export_wallet), with the user's password and a TOTP code.

const keystoreUsage = `Usage:
  countersign keystore import FILE [--name NAME] [--url URL]
  countersign keystore export ADDRESS --out FILE [--url URL]

Logs in as COUNTERSIGN_USERNAME with COUNTERSIGN_PASSWORD (or the first line of
standard input) and a TOTP code (COUNTERSIGN_MFA_CODE, or the next line).
import: the file's passphrase is OPERATOR_WALLET_PASSPHRASE or the next line.
export: the new file's passphrase is COUNTERSIGN_EXPORT_PASSPHRASE or the next
line (at least 12 characters); FILE is written 0600 and never overwritten.
URL defaults to COUNTERSIGN_URL or http://127.0.0.1:8555.`

func keystoreCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "import" && args[0] != "export") {
		if isHelp(args) {
			fmt.Fprintln(stdout, keystoreUsage)
			return nil
		}
		return errors.New("keystore: import FILE or export ADDRESS --out FILE (run \"countersign keystore -h\")")
	}
	verb := args[0]
	fs := flag.NewFlagSet("keystore "+verb, flag.ContinueOnError)
	url := fs.String("url", or(getenv("COUNTERSIGN_URL"), "http://127.0.0.1:8555"), "the server")
	name := fs.String("name", "", "import: the new wallet's name")
	out := fs.String("out", "", "export: where to write the keystore file")
	// flags may come after the positional argument
	var pos []string
	rest := args[1:]
	for {
		if err := parseFlags(fs, rest, stdout, keystoreUsage, nil); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != 1 {
		return fmt.Errorf("keystore %s: one %s is required (run \"countersign keystore -h\")", verb, map[string]string{"import": "FILE", "export": "ADDRESS"}[verb])
	}
	in := bufio.NewReader(stdin)
	c := &apiClient{base: strings.TrimRight(*url, "/"), http: &http.Client{Timeout: 2 * time.Minute}}
	user := getenv("COUNTERSIGN_USERNAME")
	if user == "" {
		return errors.New("set COUNTERSIGN_USERNAME")
	}
	password, err := readSecret(in, getenv, "COUNTERSIGN_PASSWORD", "password: ", stderr)
	if err != nil {
		return err
	}
	var sess struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.post(ctx, "/api/login", map[string]string{"username": user, "password": password}, &sess); err != nil {
		return err
	}
	c.bearer = sess.AccessToken
	code, err := readSecret(in, getenv, "COUNTERSIGN_MFA_CODE", "TOTP code: ", stderr)
	if err != nil {
		return err
	}
	if verb == "import" {
		file, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		pass, err := readSecret(in, getenv, "OPERATOR_WALLET_PASSPHRASE", "keystore passphrase: ", stderr)
		if err != nil {
			return err
		}
		var w createWalletOut
		if err := c.post(ctx, "/api/import_wallet", map[string]any{"password": password, "mfa_code": code, "name": *name,
			"keystore": json.RawMessage(file), "keystore_passphrase": pass}, &w); err != nil {
			return err
		}
		fmt.Fprintln(stdout, w.Address)
		fmt.Fprintf(stderr, "imported as wallet %s (%q)\n", w.WalletID, w.Name)
		return nil
	}
	if *out == "" {
		return errors.New("keystore export: --out FILE is required")
	}
	if _, err := os.Lstat(*out); err == nil {
		return fmt.Errorf("keystore export: %s exists: refusing to overwrite it", *out)
	}
	pass, err := readSecret(in, getenv, "COUNTERSIGN_EXPORT_PASSPHRASE", "new file's passphrase: ", stderr)
	if err != nil {
		return err
	}
	var resp struct {
		Address  string          `json:"address"`
		Keystore json.RawMessage `json:"keystore"`
	}
	if err := c.post(ctx, "/api/export_wallet", map[string]string{"address": pos[0], "password": password, "mfa_code": code, "export_passphrase": pass}, &resp); err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(resp.Keystore); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s: the key of %s under the new passphrase\n", *out, resp.Address)
	return nil
}

type createWalletOut struct {
	WalletID string `json:"wallet_id"`
	Address  string `json:"address"`
	Name     string `json:"name"`
}
