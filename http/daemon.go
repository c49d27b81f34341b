package http

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/daemon"
)

// The local wallet daemon's REST routes (the AITBC wallet-daemon design's
// REST API), served by package daemon. They act as the
// operator, so every request passes checkDaemon: the browser-shaped
// refusals of daemonguard.go, no agent credential, a permitted client
// address, and the wallet token in X-Auth-Token (WALLET_TOKEN, or the one
// generated into the data directory). Agents go through the countersigned
// flow instead.

func (s *Server) checkDaemon(r *http.Request) error {
	if s.Daemon == nil {
		return countersign.Errorf(countersign.NotFound, "the wallet daemon is not enabled")
	}
	if err := s.checkBrowserShape(r); err != nil {
		return err
	}
	if err := checkAgentCredential(r); err != nil {
		return err
	}
	ip, _ := netip.ParseAddr(clientAddr(r))
	ip = ip.Unmap()
	if !ip.IsLoopback() {
		// beyond this machine: listed in WALLET_ALLOW, or, without a list,
		// only when the operator chose WALLET_TOKEN for remote clients
		if len(s.WalletAllow) > 0 && !allowed(s.WalletAllow, ip) {
			return countersign.Errorf(countersign.Forbidden, "this client's address is not in WALLET_ALLOW")
		}
		if len(s.WalletAllow) == 0 && !s.WalletRemote {
			return countersign.Errorf(countersign.Forbidden, "the wallet daemon answers local clients only (set WALLET_TOKEN or WALLET_ALLOW to allow others)")
		}
	}
	if s.WalletToken == "" {
		// fail closed: a wiring without a token answers no one
		return countersign.Errorf(countersign.Forbidden, "the wallet daemon has no token configured")
	}
	toks := r.Header.Values("X-Auth-Token")
	if len(toks) > 1 {
		return countersign.Errorf(countersign.BadRequest, "send one X-Auth-Token header")
	}
	if len(toks) == 0 || strings.TrimSpace(toks[0]) == "" {
		return countersign.Errorf(countersign.Unauthorized, "X-Auth-Token is required: the wallet token (WALLET_TOKEN, or the file wallet.token in the data directory)")
	}
	good := subtle.ConstantTimeCompare([]byte(strings.TrimSpace(toks[0])), []byte(s.WalletToken)) == 1
	if err := s.walletLimiter.check(limiterKey(r), s.now(), good, "X-Auth-Token"); err != nil {
		return err
	}
	// Last: only a caller with the token learns which replica holds the
	// daemon (DAEMON_MODE, daemonguard.go).
	return s.daemonGate()
}

func allowed(nets []netip.Prefix, ip netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseAllowList reads WALLET_ALLOW: comma-separated addresses or CIDR
// prefixes ("10.0.0.0/8, 192.168.1.7, fd00::/8").
func ParseAllowList(v string) ([]netip.Prefix, error) { return parsePrefixes("WALLET_ALLOW", v) }

// parsePrefixes parses a comma-separated list of addresses and CIDR
// prefixes; setting names the setting in errors.
func parsePrefixes(setting, v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is neither an address nor a CIDR prefix", setting, f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

type daemonCreateReq struct {
	Name         string `json:"name"`
	Password     string `json:"password"`
	MnemonicLen  int    `json:"mnemonic_len,omitempty"`
	ShowMnemonic bool   `json:"show_mnemonic,omitempty"`
}
type daemonCreateResp struct {
	WalletID string `json:"wallet_id"`
	Mnemonic string `json:"mnemonic,omitempty"`
}

func (s *Server) daemonCreate(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req daemonCreateReq
	if err := decode(r, &req); err != nil {
		return err
	}
	id, m, err := s.Daemon.CreateWallet(r.Context(), req.Name, req.Password, req.MnemonicLen)
	if err != nil {
		return err
	}
	out := daemonCreateResp{WalletID: id}
	if req.ShowMnemonic {
		out.Mnemonic = m // shown this once; never stored in clear
	}
	return writeJSON(w, 201, out)
}

type daemonImportMnemonicReq struct {
	Name       string `json:"name"`
	Password   string `json:"password"`
	Mnemonic   string `json:"mnemonic"`
	Passphrase string `json:"passphrase,omitempty"`
}

func (s *Server) daemonImportMnemonic(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req daemonImportMnemonicReq
	if err := decode(r, &req); err != nil {
		return err
	}
	id, err := s.Daemon.ImportMnemonic(r.Context(), req.Name, req.Password, req.Mnemonic, req.Passphrase)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, daemonCreateResp{WalletID: id})
}

type daemonImportKeyReq struct {
	Name          string `json:"name"`
	Password      string `json:"password"`
	Curve         string `json:"curve"`
	PrivateKeyHex string `json:"private_key_hex"`
}
type daemonImportKeyResp struct {
	WalletID   string `json:"wallet_id"`
	AccountID  string `json:"account_id"`
	Address    string `json:"address"`
	EVMAddress string `json:"evm_address,omitempty"`
}

func (s *Server) daemonImportKey(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req daemonImportKeyReq
	if err := decode(r, &req); err != nil {
		return err
	}
	id, a, err := s.Daemon.ImportKey(r.Context(), req.Name, req.Password, req.Curve, req.PrivateKeyHex)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, daemonImportKeyResp{WalletID: id, AccountID: a.ID, Address: a.Address, EVMAddress: a.EVMAddress})
}

type daemonImportKeystoreReq struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	// KeystoreJSON is the keystore file's JSON object (or that JSON as a string).
	KeystoreJSON     json.RawMessage `json:"keystore_json"`
	KeystorePassword string          `json:"keystore_password"`
}

func (s *Server) daemonImportKeystore(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req daemonImportKeystoreReq
	if err := decode(r, &req); err != nil {
		return err
	}
	raw := []byte(req.KeystoreJSON)
	var str string
	if json.Unmarshal(raw, &str) == nil {
		raw = []byte(str)
	}
	id, a, err := s.Daemon.ImportKeystore(r.Context(), req.Name, req.Password, raw, req.KeystorePassword)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, daemonImportKeyResp{WalletID: id, AccountID: a.ID, Address: a.Address, EVMAddress: a.EVMAddress})
}

type daemonUnlockReq struct {
	WalletID string `json:"wallet_id"`
	Password string `json:"password"`
}
type daemonUnlockResp struct {
	WalletID      string    `json:"wallet_id"`
	UnlockedUntil time.Time `json:"unlocked_until"`
}

func (s *Server) daemonUnlock(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req daemonUnlockReq
	if err := decode(r, &req); err != nil {
		return err
	}
	until, err := s.Daemon.Unlock(r.Context(), req.WalletID, req.Password)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, daemonUnlockResp{WalletID: req.WalletID, UnlockedUntil: until})
}

type daemonLockReq struct {
	WalletID string `json:"wallet_id,omitempty"`
}
type daemonLockResp struct {
	Locked int `json:"locked"`
}

func (s *Server) daemonLock(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req daemonLockReq
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	n, err := s.Daemon.Lock(r.Context(), req.WalletID)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, daemonLockResp{Locked: n})
}

type daemonWalletsResp struct {
	Wallets []daemon.WalletInfo `json:"wallets"`
}

func (s *Server) daemonWallets(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	list, err := s.Daemon.Wallets(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, daemonWalletsResp{Wallets: list})
}

type daemonDeriveReq struct {
	WalletID string            `json:"wallet_id"`
	Curve    string            `json:"curve,omitempty"`
	Path     string            `json:"path,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
}
type accountJSON struct {
	AccountID    string            `json:"account_id"`
	WalletID     string            `json:"wallet_id"`
	Curve        string            `json:"curve"`
	Path         string            `json:"path,omitempty"`
	Address      string            `json:"address"`
	PublicKeyHex string            `json:"public_key_hex"`
	EVMAddress   string            `json:"evm_address,omitempty"`
	Tags         map[string]string `json:"tags"`
}

func toAccountJSON(a *countersign.DaemonAccount) accountJSON {
	tags := a.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return accountJSON{AccountID: a.ID, WalletID: a.WalletID, Curve: a.Curve, Path: a.Path, Address: a.Address,
		PublicKeyHex: hex.EncodeToString(a.PublicKey), EVMAddress: a.EVMAddress, Tags: tags}
}

type accountTagsReq struct {
	AccountID string            `json:"account_id"`
	Tags      map[string]string `json:"tags"`
}

func (s *Server) daemonAccountTags(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req accountTagsReq
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.Daemon.SetAccountTags(r.Context(), req.AccountID, req.Tags)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, toAccountJSON(a))
}

func (s *Server) daemonDerive(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req daemonDeriveReq
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.Daemon.Derive(r.Context(), req.WalletID, req.Curve, req.Path, req.Tags)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, toAccountJSON(a))
}

type accountsResp struct {
	Accounts []accountJSON `json:"accounts"`
}

func (s *Server) daemonAccounts(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	list, err := s.Daemon.Accounts(r.Context(), r.URL.Query().Get("wallet_id"), r.URL.Query().Get("tag"))
	if err != nil {
		return err
	}
	out := accountsResp{Accounts: []accountJSON{}}
	for _, a := range list {
		out.Accounts = append(out.Accounts, toAccountJSON(a))
	}
	return writeJSON(w, 200, out)
}

type addressJSON struct {
	Address    string `json:"address"`
	Curve      string `json:"curve"`
	EVMAddress string `json:"evm_address,omitempty"`
}

func (s *Server) daemonAddress(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	a, err := s.Daemon.Account(r.Context(), r.PathValue("account_id"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, addressJSON{Address: a.Address, Curve: a.Curve, EVMAddress: a.EVMAddress})
}

type signMessageDaemonReq struct {
	AccountID     string `json:"account_id"`
	MessageBase64 string `json:"message_base64"`
}
type signMessageDaemonResp struct {
	SignatureBase64 string `json:"signature_base64"`
	PublicKeyHex    string `json:"public_key_hex"`
	Algo            string `json:"algo"`
}

func (s *Server) daemonSignMessage(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req signMessageDaemonReq
	if err := decode(r, &req); err != nil {
		return err
	}
	msg, err := base64.StdEncoding.DecodeString(req.MessageBase64)
	if err != nil {
		return countersign.Errorf(countersign.BadRequest, "message_base64 is not base64")
	}
	sm, err := s.Daemon.SignMessage(r.Context(), req.AccountID, msg)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, signMessageDaemonResp{SignatureBase64: base64.StdEncoding.EncodeToString(sm.Signature), PublicKeyHex: hex.EncodeToString(sm.PublicKey), Algo: sm.Algo})
}
