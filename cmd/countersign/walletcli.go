package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/countersign/countersign/keys/keystore"
)

// The wallet daemon's CLI: `countersign wallet …` and `countersign sign …`
// talk to a running server (COUNTERSIGN_URL) with the wallet token:
// WALLET_TOKEN when it is set, else the server's generated DATA_DIR/wallet.token
// (--data-dir, env COUNTERSIGN_DATA_DIR, default ./data as for serve).
// Passwords come from COUNTERSIGN_WALLET_PASSWORD or the first line of
// standard input — never from flags, which other users can see in ps.

// daemonClient returns a client for the daemon's routes and where its token
// came from (for error messages; never the token).
func daemonClient(getenv func(string) string, base, dataDir string) (*apiClient, string) {
	if base == "" {
		base = or(getenv("COUNTERSIGN_URL"), "http://127.0.0.1:8555")
	}
	tok, from := cliWalletToken(getenv, dataDir)
	return &apiClient{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 5 * time.Minute}, authToken: tok}, from
}

// readSecret returns the env value, or the next line of stdin.
func readSecret(r *bufio.Reader, getenv func(string) string, env, prompt string, stderr io.Writer) (string, error) {
	if v := getenv(env); v != "" {
		return v, nil
	}
	fmt.Fprint(stderr, prompt)
	line, err := r.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err == nil {
			err = errors.New("empty")
		}
		return "", fmt.Errorf("%s: %w", strings.TrimSuffix(prompt, ": "), err)
	}
	return line, nil
}

func (c *apiClient) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return err
	}
	return c.do(req, out)
}

func printJSON(w io.Writer, raw json.RawMessage) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, b.String())
	return err
}

// walletSynopses is each wallet subcommand's usage: they share one flag
// set, so each says which flags it reads.
var walletSynopses = map[string]string{
	"create": "Usage: countersign wallet create [--name N] [--words 12|24] [--show-mnemonic]\n\nCreates an HD wallet; the password from COUNTERSIGN_WALLET_PASSWORD or the first line of stdin.",
	"import": "Usage: countersign wallet import [--name N] (--mnemonic-file F | --key-file F --curve C | --keystore-file F)\n\nImports a wallet; the password from COUNTERSIGN_WALLET_PASSWORD or the first line of stdin.",
	"list":   "Usage: countersign wallet list\n\nLists the daemon's wallets (never secrets).",
	"unlock": "Usage: countersign wallet unlock --wallet ID\n\nUnlocks a wallet for UNLOCK_TTL_SEC; the password from COUNTERSIGN_WALLET_PASSWORD or the first line of stdin.",
	"derive": "Usage: countersign wallet derive --wallet ID [--curve C] [--path P]\n\nDerives an account of an unlocked HD wallet.",
	"export": "Usage: countersign wallet export --account ID --out FILE\n\nExports an account's key as an encrypted keystore; the export password from COUNTERSIGN_EXPORT_PASSWORD or the first line of stdin.",
}

const walletUsage = `Usage: countersign wallet create|import|list|unlock|derive|export [flags]

The local wallet daemon's wallets, on a running server (--url, env COUNTERSIGN_URL).
The token is WALLET_TOKEN, else DATA_DIR/wallet.token (--data-dir, env COUNTERSIGN_DATA_DIR).
Run "countersign wallet SUBCOMMAND -h" for each.`

// walletFlags are the wallet subcommands' shared flags.
type walletFlags struct {
	url, dataDir, name                  *string
	words                               *int
	show                                *bool
	mnemonicFile, keyFile, keystoreFile *string
	curve, path, wallet, account, out   *string
}

func newWalletFlags(fs *flag.FlagSet, getenv func(string) string) *walletFlags {
	return &walletFlags{
		url:          fs.String("url", "", "the server (env COUNTERSIGN_URL, default http://127.0.0.1:8555)"),
		dataDir:      fs.String("data-dir", defaultDataDir(getenv), "the server's data directory, for its wallet.token when WALLET_TOKEN is not set (env COUNTERSIGN_DATA_DIR)"),
		name:         fs.String("name", "", "wallet name"),
		words:        fs.Int("words", 24, "mnemonic length: 12 or 24"),
		show:         fs.Bool("show-mnemonic", false, "print the new mnemonic (once; write it down)"),
		mnemonicFile: fs.String("mnemonic-file", "", "import: a file holding the mnemonic"),
		keyFile:      fs.String("key-file", "", "import: a file holding a hex private key"),
		keystoreFile: fs.String("keystore-file", "", "import: an Ethereum v3 keystore (geth, MetaMask, ethers); its password from COUNTERSIGN_KEYSTORE_PASSWORD or the next line of stdin"),
		curve:        fs.String("curve", "", "ed25519 or secp256k1"),
		path:         fs.String("path", "", "derivation path (default per curve)"),
		wallet:       fs.String("wallet", "", "wallet id"),
		account:      fs.String("account", "", "account id"),
		out:          fs.String("out", "", "export: write the encrypted keystore here (mode 0600)"),
	}
}

var errWalletUsage = errors.New("usage: countersign wallet create|import|list|unlock|derive|export [flags] (-h for each)")

func walletCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	if isHelp(args) {
		fmt.Fprintln(stdout, walletUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || walletSynopses[args[0]] == "" {
		return errWalletUsage
	}
	fs := flag.NewFlagSet("wallet "+args[0], flag.ContinueOnError)
	f := newWalletFlags(fs, getenv)
	if err := parseFlags(fs, args[1:], stdout, walletSynopses[args[0]], nil); err != nil {
		return err
	}
	c, from := daemonClient(getenv, *f.url, *f.dataDir)
	defer func() { err = daemonError(err, from) }()
	w := &walletRun{ctx: ctx, c: c, f: f, in: bufio.NewReader(stdin), getenv: getenv, stderr: stderr}
	res, err := w.run(args[0])
	if err != nil {
		return err
	}
	return printJSON(stdout, res)
}

// walletRun is one wallet subcommand's call to the daemon.
type walletRun struct {
	ctx    context.Context
	c      *apiClient
	f      *walletFlags
	in     *bufio.Reader
	getenv func(string) string
	stderr io.Writer
}

func (w *walletRun) password() (string, error) {
	return readSecret(w.in, w.getenv, "COUNTERSIGN_WALLET_PASSWORD", "Wallet password: ", w.stderr)
}

// post and get call a daemon route and return its answer as it came.
func (w *walletRun) post(path string, body any) (json.RawMessage, error) {
	var res json.RawMessage
	err := w.c.post(w.ctx, path, body, &res)
	return res, err
}

func (w *walletRun) get(path string) (json.RawMessage, error) {
	var res json.RawMessage
	err := w.c.get(w.ctx, path, &res)
	return res, err
}

// run calls the daemon route of subcommand sub and returns its answer.
func (w *walletRun) run(sub string) (json.RawMessage, error) {
	f := w.f
	switch sub {
	case "create":
		pw, err := w.password()
		if err != nil {
			return nil, err
		}
		return w.post("/v1/wallet/create", map[string]any{"name": *f.name, "password": pw, "mnemonic_len": *f.words, "show_mnemonic": *f.show})
	case "import":
		return w.importWallet()
	case "list":
		return w.get("/v1/wallets")
	case "unlock":
		pw, err := w.password()
		if err != nil {
			return nil, err
		}
		return w.post("/v1/wallet/unlock", map[string]string{"wallet_id": *f.wallet, "password": pw})
	case "derive":
		return w.post("/v1/account/derive", map[string]string{"wallet_id": *f.wallet, "curve": *f.curve, "path": *f.path})
	case "export":
		return w.export()
	}
	return nil, errWalletUsage
}

// importWallet imports from the one file given: a mnemonic, a hex key or
// a v3 keystore (files, so secrets stay out of the shell history).
func (w *walletRun) importWallet() (json.RawMessage, error) {
	f := w.f
	if *f.mnemonicFile == "" && *f.keyFile == "" && *f.keystoreFile == "" {
		return nil, errors.New("import needs --mnemonic-file, --key-file or --keystore-file (files, so secrets stay out of the shell history)")
	}
	pw, err := w.password()
	if err != nil {
		return nil, err
	}
	switch {
	case *f.mnemonicFile != "":
		m, err := os.ReadFile(*f.mnemonicFile)
		if err != nil {
			return nil, err
		}
		return w.post("/v1/wallet/import-mnemonic", map[string]string{"name": *f.name, "password": pw, "mnemonic": strings.TrimSpace(string(m))})
	case *f.keyFile != "":
		k, err := os.ReadFile(*f.keyFile)
		if err != nil {
			return nil, err
		}
		return w.post("/v1/wallet/import-key", map[string]string{"name": *f.name, "password": pw, "curve": *f.curve, "private_key_hex": strings.TrimSpace(string(k))})
	default:
		ks, err := os.ReadFile(*f.keystoreFile)
		if err != nil {
			return nil, err
		}
		kpw, err := readSecret(w.in, w.getenv, "COUNTERSIGN_KEYSTORE_PASSWORD", "Keystore password: ", w.stderr)
		if err != nil {
			return nil, err
		}
		return w.post("/v1/wallet/import-keystore", map[string]any{"name": *f.name, "password": pw, "keystore_json": string(ks), "keystore_password": kpw})
	}
}

// export writes an account's key as an encrypted keystore to a new file
// (never overwriting one) and answers where it went.
func (w *walletRun) export() (json.RawMessage, error) {
	out := *w.f.out
	if out == "" {
		return nil, errors.New("export needs --out FILE")
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, fmt.Errorf("%s exists; export never overwrites a file", out)
	}
	pw, err := readSecret(w.in, w.getenv, "COUNTERSIGN_EXPORT_PASSWORD", "Export password: ", w.stderr)
	if err != nil {
		return nil, err
	}
	var ex struct {
		Format string `json:"format"`
		Blob   string `json:"keystore_base64"`
	}
	if err := w.c.post(w.ctx, "/v1/wallet/export", map[string]string{"account_id": *w.f.account, "export_password": pw}, &ex); err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(ex.Blob)
	if err != nil {
		return nil, err
	}
	if err := keystore.WriteNewFile(out, b); err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{"format": ex.Format, "file": out})
}

const signUsage = "Usage: countersign sign message --account ID (--text T | --base64 B)\n\nSigns a message with a daemon account (ed25519: the bytes; secp256k1: EIP-191)."

func signCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if isHelp(args) {
		fmt.Fprintln(stdout, signUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "message" {
		return errors.New("usage: countersign sign message --account ID (--text T | --base64 B)")
	}
	fs := flag.NewFlagSet("sign message", flag.ContinueOnError)
	url := fs.String("url", "", "the server (env COUNTERSIGN_URL)")
	dataDir := fs.String("data-dir", defaultDataDir(getenv), "the server's data directory, for its wallet.token when WALLET_TOKEN is not set (env COUNTERSIGN_DATA_DIR)")
	account := fs.String("account", "", "account id")
	text := fs.String("text", "", "the message as text")
	b64 := fs.String("base64", "", "the message as base64")
	if err := parseFlags(fs, args[1:], stdout, signUsage, nil); err != nil {
		return err
	}
	if (*text == "") == (*b64 == "") {
		return errors.New("give exactly one of --text and --base64")
	}
	if *text != "" {
		*b64 = base64.StdEncoding.EncodeToString([]byte(*text))
	}
	var res json.RawMessage
	c, from := daemonClient(getenv, *url, *dataDir)
	if err := c.post(ctx, "/v1/sign/message", map[string]string{"account_id": *account, "message_base64": *b64}, &res); err != nil {
		return daemonError(err, from)
	}
	return printJSON(stdout, res)
}
