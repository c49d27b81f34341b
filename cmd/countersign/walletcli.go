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

func walletCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	usage := errors.New("usage: countersign wallet create|import|list|unlock|derive|export [flags] (-h for each)")
	if isHelp(args) {
		fmt.Fprintln(stdout, walletUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || walletSynopses[args[0]] == "" {
		return usage
	}
	fs := flag.NewFlagSet("wallet "+args[0], flag.ContinueOnError)
	url := fs.String("url", "", "the server (env COUNTERSIGN_URL, default http://127.0.0.1:8555)")
	dataDir := fs.String("data-dir", defaultDataDir(getenv), "the server's data directory, for its wallet.token when WALLET_TOKEN is not set (env COUNTERSIGN_DATA_DIR)")
	name := fs.String("name", "", "wallet name")
	words := fs.Int("words", 24, "mnemonic length: 12 or 24")
	show := fs.Bool("show-mnemonic", false, "print the new mnemonic (once; write it down)")
	mnemonicFile := fs.String("mnemonic-file", "", "import: a file holding the mnemonic")
	keyFile := fs.String("key-file", "", "import: a file holding a hex private key")
	keystoreFile := fs.String("keystore-file", "", "import: an Ethereum v3 keystore (geth, MetaMask, ethers); its password from COUNTERSIGN_KEYSTORE_PASSWORD or the next line of stdin")
	curve := fs.String("curve", "", "ed25519 or secp256k1")
	path := fs.String("path", "", "derivation path (default per curve)")
	wallet := fs.String("wallet", "", "wallet id")
	account := fs.String("account", "", "account id")
	out := fs.String("out", "", "export: write the encrypted keystore here (mode 0600)")
	if err := parseFlags(fs, args[1:], stdout, walletSynopses[args[0]], nil); err != nil {
		return err
	}
	c, from := daemonClient(getenv, *url, *dataDir)
	defer func() { err = daemonError(err, from) }()
	in := bufio.NewReader(stdin)
	var res json.RawMessage
	switch args[0] {
	case "create":
		pw, err := readSecret(in, getenv, "COUNTERSIGN_WALLET_PASSWORD", "Wallet password: ", stderr)
		if err != nil {
			return err
		}
		err = c.post(ctx, "/v1/wallet/create", map[string]any{"name": *name, "password": pw, "mnemonic_len": *words, "show_mnemonic": *show}, &res)
		if err != nil {
			return err
		}
	case "import":
		if *mnemonicFile == "" && *keyFile == "" && *keystoreFile == "" {
			return errors.New("import needs --mnemonic-file, --key-file or --keystore-file (files, so secrets stay out of the shell history)")
		}
		pw, err := readSecret(in, getenv, "COUNTERSIGN_WALLET_PASSWORD", "Wallet password: ", stderr)
		if err != nil {
			return err
		}
		switch {
		case *mnemonicFile != "":
			m, err := os.ReadFile(*mnemonicFile)
			if err != nil {
				return err
			}
			err = c.post(ctx, "/v1/wallet/import-mnemonic", map[string]string{"name": *name, "password": pw, "mnemonic": strings.TrimSpace(string(m))}, &res)
			if err != nil {
				return err
			}
		case *keyFile != "":
			k, err := os.ReadFile(*keyFile)
			if err != nil {
				return err
			}
			err = c.post(ctx, "/v1/wallet/import-key", map[string]string{"name": *name, "password": pw, "curve": *curve, "private_key_hex": strings.TrimSpace(string(k))}, &res)
			if err != nil {
				return err
			}
		case *keystoreFile != "":
			ks, err := os.ReadFile(*keystoreFile)
			if err != nil {
				return err
			}
			kpw, err := readSecret(in, getenv, "COUNTERSIGN_KEYSTORE_PASSWORD", "Keystore password: ", stderr)
			if err != nil {
				return err
			}
			err = c.post(ctx, "/v1/wallet/import-keystore", map[string]any{"name": *name, "password": pw, "keystore_json": string(ks), "keystore_password": kpw}, &res)
			if err != nil {
				return err
			}
		}
	case "list":
		if err := c.get(ctx, "/v1/wallets", &res); err != nil {
			return err
		}
	case "unlock":
		pw, err := readSecret(in, getenv, "COUNTERSIGN_WALLET_PASSWORD", "Wallet password: ", stderr)
		if err != nil {
			return err
		}
		if err := c.post(ctx, "/v1/wallet/unlock", map[string]string{"wallet_id": *wallet, "password": pw}, &res); err != nil {
			return err
		}
	case "derive":
		if err := c.post(ctx, "/v1/account/derive", map[string]string{"wallet_id": *wallet, "curve": *curve, "path": *path}, &res); err != nil {
			return err
		}
	case "export":
		if *out == "" {
			return errors.New("export needs --out FILE")
		}
		if _, err := os.Lstat(*out); err == nil {
			return fmt.Errorf("%s exists; export never overwrites a file", *out)
		}
		pw, err := readSecret(in, getenv, "COUNTERSIGN_EXPORT_PASSWORD", "Export password: ", stderr)
		if err != nil {
			return err
		}
		var ex struct {
			Format string `json:"format"`
			Blob   string `json:"keystore_base64"`
		}
		if err := c.post(ctx, "/v1/wallet/export", map[string]string{"account_id": *account, "export_password": pw}, &ex); err != nil {
			return err
		}
		b, err := base64.StdEncoding.DecodeString(ex.Blob)
		if err != nil {
			return err
		}
		if err := keystore.WriteNewFile(*out, b); err != nil {
			return err
		}
		res, _ = json.Marshal(map[string]string{"format": ex.Format, "file": *out})
	default:
		return usage
	}
	return printJSON(stdout, res)
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
