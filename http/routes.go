package http

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// Routes is the route table: every route, who may call it, and its shapes
// for the OpenAPI document. A test checks each route is in /openapi.json
// and refuses every principal its Access does not name.
func Routes() []Route {
	return []Route{
		{Method: "POST", Path: "/api/register", Access: Anonymous, Summary: "Register a user", Status: 201, Req: registerReq{}, Resp: registerResp{}, h: (*Server).register},
		{Method: "POST", Path: "/api/login", Access: Anonymous, Summary: "Log in and get a session token", Status: 200, Req: loginReq{}, Resp: loginResp{}, h: (*Server).login},
		{Method: "POST", Path: "/api/logout", Access: User, Summary: "Revoke the session token", Status: 200, Resp: okResp{}, h: (*Server).logout},
		{Method: "POST", Path: "/api/setup_mfa", Access: User, Summary: "Set up or replace TOTP MFA", Status: 201, Req: setupMFAReq{}, Resp: setupMFAResp{}, h: (*Server).setupMFA},
		{Method: "POST", Path: "/api/mfa/recovery_codes", Access: UserMFA, Summary: "Replace the recovery codes (shown once) with a current TOTP code", Status: 201, Req: mfaReq{}, Resp: recoveryCodesResp{}, h: (*Server).newRecoveryCodes},
		{Method: "POST", Path: "/api/mfa/recover", Access: User, Summary: "Spend a recovery code to turn MFA off (recovery_code), or replace the recovery codes with a current TOTP code (mfa_code)", Status: 200, Req: mfaRecoverReq{}, Resp: mfaRecoverResp{}, h: (*Server).recoverMFA},
		{Method: "POST", Path: "/api/create_wallet", Access: User, Summary: "Create a wallet with a new key", Status: 201, Req: createWalletReq{}, Resp: createWalletResp{}, h: (*Server).createWallet},
		{Method: "POST", Path: "/api/load_wallet", Access: UserOrAgent, Summary: "Load a wallet: address, chain and balance", Status: 200, Req: loadWalletReq{}, Resp: loadWalletResp{}, h: (*Server).loadWallet},
		{Method: "GET", Path: "/api/wallets", Access: User, Summary: "List the user's wallets", Status: 200, Resp: walletsResp{}, h: (*Server).wallets},
		{Method: "GET", Path: "/api/balance", Access: UserOrAgent, Summary: "Native or ERC-20 balance of an address", Status: 200, Query: []string{"address", "token_address"}, Resp: balanceResp{}, h: (*Server).balance},
		{Method: "POST", Path: "/api/agents", Access: UserMFA, Summary: "Create an agent and its API key (shown once)", Status: 201, Req: createAgentReq{}, Resp: createAgentResp{}, h: (*Server).createAgent},
		{Method: "GET", Path: "/api/agents", Access: User, Summary: "List agents (without keys)", Status: 200, Resp: agentsResp{}, h: (*Server).agents},
		{Method: "DELETE", Path: "/api/agents/{id}", Access: UserMFA, Summary: "Revoke an agent at once", Status: 200, Req: mfaReq{}, Resp: revokeResp{}, h: (*Server).revokeAgent},
		{Method: "POST", Path: "/api/prepare_transaction", Access: Agent, Summary: "Prepare a transaction for human approval", Status: 202, Req: core.PrepareRequest{}, Resp: prepareResp{}, h: (*Server).prepare},
		{Method: "POST", Path: "/api/authorize_transaction", Access: UserMFA, Summary: "Approve or reject pending transactions with a TOTP code", Status: 200, Req: authorizeReq{}, Resp: authorizeResp{}, h: (*Server).authorize},
		{Method: "GET", Path: "/api/transaction_status", Access: UserOrAgent, Summary: "A transaction's status; wait=30s long-polls for a change", Status: 200, Query: []string{"transaction_id", "wait"}, Resp: core.TxView{}, h: (*Server).status},
		{Method: "POST", Path: "/api/execute_transaction", Access: Agent, Summary: "Sign and broadcast an authorized transaction (exactly once)", Status: 201, Req: txIDReq{}, Resp: executeResp{}, h: (*Server).execute},
		{Method: "POST", Path: "/api/cancel_transaction", Access: Agent, Summary: "Cancel the agent's own pending request", Status: 200, Req: txIDReq{}, Resp: statusResp{}, h: (*Server).cancel},
		{Method: "GET", Path: "/api/transactions", Access: UserOrAgent, Summary: "List transactions (the owner's inbox, or an agent's own)", Status: 200, Query: []string{"status", "agent_id", "limit", "before"}, Resp: txListResp{}, h: (*Server).transactions},
		{Method: "GET", Path: "/api/events", Access: User, Summary: "Server-Sent Events: transaction.pending and status changes", Status: 200, Resp: eventResp{}, h: (*Server).events},
		{Method: "POST", Path: "/api/transfer", Access: UserMFA, Summary: "User-initiated native transfer", Status: 201, Req: transferReq{}, Resp: spendResp{}, h: (*Server).transfer},
		{Method: "POST", Path: "/api/transfer_erc20", Access: UserMFA, Summary: "User-initiated ERC-20 transfer", Status: 201, Req: transferERC20Req{}, Resp: spendResp{}, h: (*Server).transferERC20},
		{Method: "POST", Path: "/api/contract_call", Access: UserMFA, Summary: "User-initiated contract call", Status: 201, Req: contractCallReq{}, Resp: spendResp{}, h: (*Server).contractCall},
		{Method: "GET", Path: "/api/audit", Access: User, Summary: "The user's hash-chained audit log", Status: 200, Query: []string{"after", "limit"}, Resp: auditResp{}, h: (*Server).auditLog},
		{Method: "GET", Path: "/api/audit/checkpoint", Access: User, Summary: "The head of the user's audit chain, signed with the server's Ed25519 audit key (keep it elsewhere; audit verify --checkpoint)", Status: 200, Resp: core.AuditCheckpoint{}, h: (*Server).auditCheckpoint},
		{Method: "GET", Path: "/api/dev/info", Access: Anonymous, Summary: "Development chain: chain id, faucet and TEST token", Status: 200, Resp: devInfoResp{}, DevOnly: true, h: (*Server).devInfo},
		{Method: "POST", Path: "/api/dev/faucet", Access: UserOrAgent, Summary: "Development chain: fund an address with ETH or TEST", Status: 200, Req: faucetReq{}, Resp: faucetResp{}, DevOnly: true, h: (*Server).devFaucet},
		{Method: "POST", Path: "/eth", Access: Agent, Summary: "Ethereum JSON-RPC for agents (ethers, viem): reads forwarded, spends and signatures need a human approval", Status: 200, Req: rpcRequest{}, Resp: rpcResponse{}, h: (*Server).eth},
		{Method: "POST", Path: "/mcp", Access: Agent, Summary: "Model Context Protocol (Streamable HTTP, stateless): the countersigned flow as tools", Status: 200, Req: rpcRequest{}, Resp: map[string]any{}, h: (*Server).mcp},
		{Method: "POST", Path: "/dev/derive-address", Access: Service, Summary: "DEV ONLY: the EVM address derived for an omni_account", Status: 200, Req: omniReq{}, Resp: addressResp{}, h: (*Server).deriveAddress},
		{Method: "POST", Path: "/dev/sign-message", Access: Service, Summary: "DEV ONLY: EIP-191 signature by an omni_account's derived key", Status: 200, Req: signMessageReq{}, Resp: signatureResp{}, h: (*Server).signMessageDerived},
		{Method: "POST", Path: "/dev/sign-typed-data", Access: Service, Summary: "DEV ONLY: EIP-712 signature by an omni_account's derived key", Status: 200, Req: signTypedReq{}, Resp: signatureResp{}, h: (*Server).signTypedDerived},
		{Method: "POST", Path: "/v1/auth/wallet/start", Access: Anonymous, Summary: "Sign-In with Ethereum: get an EIP-4361 message to sign", Status: 200, Req: siweStartReq{}, Resp: siweStartResp{}, h: (*Server).siweStart},
		{Method: "POST", Path: "/v1/auth/wallet/verify", Access: Anonymous, Summary: "Sign-In with Ethereum: a signed message → an omni session", Status: 200, Req: siweVerifyReq{}, Resp: sessionResp{}, h: (*Server).siweVerify},
		{Method: "POST", Path: "/v1/auth/email/start", Access: Anonymous, Summary: "Email login: send a one-time code", Status: 202, Req: emailStartReq{}, Resp: okResp{}, h: (*Server).emailStart},
		{Method: "POST", Path: "/v1/auth/email/verify", Access: Anonymous, Summary: "Email login: the code → an omni session", Status: 200, Req: emailVerifyReq{}, Resp: sessionResp{}, h: (*Server).emailVerify},
		{Method: "POST", Path: "/v1/auth/oidc/verify", Access: Anonymous, Summary: "OIDC login: an ID token from the configured issuer → an omni session", Status: 200, Req: oidcLoginReq{}, Resp: sessionResp{}, h: (*Server).oidcLogin},
		{Method: "POST", Path: "/v1/wallet/link", Access: Omni, Summary: "Link another identity (proven) to the session's omni_account", Status: 200, Req: linkReq{}, Resp: linkResp{}, h: (*Server).link},
		{Method: "POST", Path: "/v1/mint-oidc-jwt", Access: Omni, Summary: "Mint an OIDC JWT for cloud role assumption (AWS AssumeRoleWithWebIdentity)", Status: 200, Resp: mintResp{}, h: (*Server).mintOIDC},
		{Method: "GET", Path: "/.well-known/openid-configuration", Access: Anonymous, Summary: "OIDC discovery document of the token issuer", Status: 200, Resp: discoveryResp{}, h: (*Server).openIDConfiguration},
		{Method: "POST", Path: "/v1/wallet/create", Access: Daemon, Summary: "Daemon: create an HD wallet (BIP-39, 12 or 24 words)", Status: 201, Req: daemonCreateReq{}, Resp: daemonCreateResp{}, h: (*Server).daemonCreate},
		{Method: "POST", Path: "/v1/wallet/import-mnemonic", Access: Daemon, Summary: "Daemon: import a BIP-39 mnemonic", Status: 201, Req: daemonImportMnemonicReq{}, Resp: daemonCreateResp{}, h: (*Server).daemonImportMnemonic},
		{Method: "POST", Path: "/v1/wallet/import-key", Access: Daemon, Summary: "Daemon: import a raw ed25519 or secp256k1 key", Status: 201, Req: daemonImportKeyReq{}, Resp: daemonImportKeyResp{}, h: (*Server).daemonImportKey},
		{Method: "POST", Path: "/v1/wallet/import-keystore", Access: Daemon, Summary: "Daemon: import an Ethereum v3 keystore (geth, MetaMask, ethers; scrypt or pbkdf2) as a secp256k1 wallet", Status: 201, Req: daemonImportKeystoreReq{}, Resp: daemonImportKeyResp{}, h: (*Server).daemonImportKeystore},
		{Method: "POST", Path: "/v1/wallet/unlock", Access: Daemon, Summary: "Daemon: unlock a wallet into memory for UNLOCK_TTL_SEC", Status: 200, Req: daemonUnlockReq{}, Resp: daemonUnlockResp{}, h: (*Server).daemonUnlock},
		{Method: "POST", Path: "/v1/wallet/lock", Access: Daemon, Summary: "Daemon: lock (zero) one wallet, or all", Status: 200, Req: daemonLockReq{}, Resp: daemonLockResp{}, h: (*Server).daemonLock},
		{Method: "GET", Path: "/v1/wallets", Access: Daemon, Summary: "Daemon: list wallets (never secrets)", Status: 200, Resp: daemonWalletsResp{}, h: (*Server).daemonWallets},
		{Method: "POST", Path: "/v1/account/derive", Access: Daemon, Summary: "Daemon: derive an account (SLIP-10 ed25519, BIP-32 secp256k1)", Status: 201, Req: daemonDeriveReq{}, Resp: accountJSON{}, h: (*Server).daemonDerive},
		{Method: "POST", Path: "/v1/account/tags", Access: Daemon, Summary: "Daemon: replace an account's tags (labels such as role: payout)", Status: 200, Req: accountTagsReq{}, Resp: accountJSON{}, h: (*Server).daemonAccountTags},
		{Method: "GET", Path: "/v1/accounts", Access: Daemon, Summary: "Daemon: a wallet's accounts (tag=name or tag=name=value to filter)", Status: 200, Query: []string{"wallet_id", "tag"}, Resp: accountsResp{}, h: (*Server).daemonAccounts},
		{Method: "GET", Path: "/v1/address/{account_id}", Access: Daemon, Summary: "Daemon: an account's address", Status: 200, Resp: addressJSON{}, h: (*Server).daemonAddress},
		{Method: "POST", Path: "/v1/sign/message", Access: Daemon, Summary: "Daemon: sign a message (ed25519, or secp256k1 EIP-191)", Status: 200, Req: signMessageDaemonReq{}, Resp: signMessageDaemonResp{}, h: (*Server).daemonSignMessage},
		{Method: "POST", Path: "/v1/sign/tx", Access: Daemon, Summary: "Daemon: sign a transaction (aitbc_v0 with ed25519, evm with secp256k1)", Status: 200, Req: signTxReq{}, Resp: signTxResp{}, h: (*Server).daemonSignTx},
		{Method: "POST", Path: "/v1/sign/receipt", Access: Daemon, Summary: "Daemon: sign a job receipt's RFC 8785 canonical JSON", Status: 200, Req: signReceiptReq{}, Resp: signReceiptResp{}, h: (*Server).daemonSignReceipt},
		{Method: "POST", Path: "/v1/verify/receipt", Access: Anonymous, Summary: "Verify a signed job receipt against a public key (no wallet needed)", Status: 200, Req: verifyReceiptReq{}, Resp: verifyReceiptResp{}, h: (*Server).verifyReceipt},
		{Method: "GET", Path: "/v1/ledger/balance/{address}", Access: Daemon, Summary: "Mock ledger: an address's balance", Status: 200, Resp: ledgerBalanceResp{}, h: (*Server).daemonLedgerBalance},
		{Method: "POST", Path: "/v1/ledger/transfer", Access: Daemon, Summary: "Mock ledger: a transfer signed by a local account", Status: 201, Req: ledgerTransferReq{}, Resp: ledgerTxResp{}, h: (*Server).daemonLedgerTransfer},
		{Method: "GET", Path: "/v1/ledger/tx/{txid}", Access: Daemon, Summary: "Mock ledger: a transfer", Status: 200, Resp: ledgerTxResp{}, h: (*Server).daemonLedgerTx},
		{Method: "POST", Path: "/v1/ledger/faucet", Access: Daemon, Summary: "Mock ledger: credit an address (no chain to pay from)", Status: 200, Req: ledgerFaucetReq{}, Resp: ledgerBalanceResp{}, h: (*Server).daemonLedgerFaucet},
		{Method: "POST", Path: "/v1/webhooks", Access: Daemon, Summary: "Subscribe a URL to events (signed, transfer, transaction.*): HMAC-signed, retried, logged", Status: 201, Req: webhookReq{}, Resp: webhookResp{}, h: (*Server).daemonCreateWebhook},
		{Method: "GET", Path: "/v1/webhooks/{id}/deliveries", Access: Daemon, Summary: "A webhook's delivery log", Status: 200, Resp: deliveriesResp{}, h: (*Server).daemonDeliveries},
		{Method: "POST", Path: "/v1/wallet/export", Access: Daemon, Summary: "Daemon: export an account's key, encrypted (v3 keystore for secp256k1, v1-kdb for ed25519)", Status: 200, Req: exportReq{}, Resp: exportResp{}, h: (*Server).daemonExport},
		{Method: "POST", Path: "/rpc", Access: Daemon, Summary: "Daemon: JSON-RPC 2.0 mirror of the /v1 routes (seed method names, batches)", Status: 200, Req: rpcRequest{}, Resp: rpcResponse{}, h: (*Server).daemonRPC},
		{Method: "GET", Path: "/about", Access: Daemon, Summary: "Daemon: algorithms, parameters and library versions, for audits", Status: 200, Resp: aboutResp{}, h: (*Server).about},
		{Method: "GET", Path: "/.well-known/jwks.json", Access: Anonymous, Summary: "Public keys of session tokens", Status: 200, Resp: jwksResp{}, h: (*Server).jwks},
		{Method: "GET", Path: "/openapi.json", Access: Anonymous, Summary: "This document", Status: 200, Resp: map[string]any{}, h: (*Server).openAPI},
		{Method: "GET", Path: "/healthz", Access: Anonymous, Summary: "Liveness", Status: 200, Resp: okResp{}, h: (*Server).healthz},
		{Method: "GET", Path: "/readyz", Access: Anonymous, Summary: "Readiness: database and chain answer", Status: 200, Resp: readyResp{}, h: (*Server).readyz},
	}
}

type okResp struct {
	Status string `json:"status"`
}

type registerReq struct {
	Username string `json:"username"`
	Password string `json:"password"`
}
type registerResp struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
}

func (s *Server) register(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req registerReq
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := s.Svc.Register(r.Context(), req.Username, req.Password)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, registerResp{UserID: u.ID, Username: u.Username})
}

type loginReq = registerReq
type loginResp struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req loginReq
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return countersign.Errorf(countersign.BadRequest, "username and password are required")
	}
	tok, _, err := s.Svc.Login(r.Context(), req.Username, req.Password, clientAddr(r))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, loginResp{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(s.Svc.TokenTTL().Seconds())})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	if err := s.Svc.Logout(r.Context(), p); err != nil {
		return err
	}
	return writeJSON(w, 200, okResp{Status: "logged_out"})
}

type setupMFAReq struct {
	MFACode string `json:"mfa_code,omitempty"`
}
type setupMFAResp struct {
	MFAURI        string   `json:"mfa_uri"`
	Secret        string   `json:"secret"`
	QRPNGBase64   string   `json:"qr_png_base64"`
	RecoveryCodes []string `json:"recovery_codes"` // shown once; each works once
}

type recoveryCodesResp struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

type mfaRecoverReq struct {
	RecoveryCode string `json:"recovery_code,omitempty"`
	MFACode      string `json:"mfa_code,omitempty"`
}
type mfaRecoverResp struct {
	MFAEnabled    bool     `json:"mfa_enabled"`
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
}

func (s *Server) newRecoveryCodes(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req mfaReq
	if err := decode(r, &req); err != nil {
		return err
	}
	codes, err := s.Svc.NewRecoveryCodes(r.Context(), p, req.MFACode)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, recoveryCodesResp{RecoveryCodes: codes})
}

// recoverMFA spends a recovery code (MFA goes off, to enrol again with
// setup_mfa), or, given a current TOTP code instead, issues new recovery
// codes like /api/mfa/recovery_codes.
func (s *Server) recoverMFA(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req mfaRecoverReq
	if err := decode(r, &req); err != nil {
		return err
	}
	switch {
	case (req.RecoveryCode == "") == (req.MFACode == ""):
		return countersign.Errorf(countersign.BadRequest, "send exactly one of recovery_code (to turn MFA off) or mfa_code (to get new recovery codes)")
	case req.RecoveryCode != "":
		if err := s.Svc.RecoverMFA(r.Context(), p, req.RecoveryCode); err != nil {
			return err
		}
		return writeJSON(w, 200, mfaRecoverResp{MFAEnabled: false})
	default:
		codes, err := s.Svc.NewRecoveryCodes(r.Context(), p, req.MFACode)
		if err != nil {
			return err
		}
		return writeJSON(w, 200, mfaRecoverResp{MFAEnabled: true, RecoveryCodes: codes})
	}
}

// decodeOptional decodes a body that may be absent.
func decodeOptional(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil || len(strings.TrimSpace(string(body))) == 0 {
		return err
	}
	return DecodeJSON(body, v)
}

func (s *Server) setupMFA(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req setupMFAReq
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	e, err := s.Svc.SetupMFA(r.Context(), p, req.MFACode)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, setupMFAResp{MFAURI: e.URI, Secret: e.Secret, QRPNGBase64: e.QRPNGBase64, RecoveryCodes: e.RecoveryCodes})
}

type createWalletReq struct {
	Password string `json:"password"`
	Name     string `json:"name,omitempty"`
}
type createWalletResp struct {
	WalletID string `json:"wallet_id"`
	Address  string `json:"address"`
	Name     string `json:"name"`
}

func (s *Server) createWallet(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req createWalletReq
	if err := decode(r, &req); err != nil {
		return err
	}
	wl, err := s.Svc.CreateWallet(r.Context(), p, req.Password, req.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, createWalletResp{WalletID: wl.ID, Address: wl.Address, Name: wl.Name})
}

type loadWalletReq struct {
	Address  string `json:"address"`
	Password string `json:"password,omitempty"`
	MFACode  string `json:"mfa_code,omitempty"`
}
type loadWalletResp struct {
	Address string `json:"address"`
	ChainID int64  `json:"chain_id"`
	Balance string `json:"balance"`
}

func (s *Server) loadWallet(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req loadWalletReq
	if err := decode(r, &req); err != nil {
		return err
	}
	if p.IsAgent() && (req.Password != "" || req.MFACode != "") {
		return countersign.Errorf(countersign.BadRequest, "agents load their wallet with {address} only; never send a user's password or code")
	}
	wl, bal, err := s.Svc.LoadWallet(r.Context(), p, req.Address, req.Password, req.MFACode)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, loadWalletResp{Address: wl.Address, ChainID: s.Svc.ChainID().Int64(), Balance: bal.String()})
}

type walletJSON struct {
	WalletID  string    `json:"wallet_id"`
	Name      string    `json:"name"`
	Address   string    `json:"address"`
	CreatedAt time.Time `json:"created_at"`
}
type walletsResp struct {
	Wallets []walletJSON `json:"wallets"`
}

func (s *Server) wallets(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.Wallets(r.Context(), p)
	if err != nil {
		return err
	}
	out := walletsResp{Wallets: []walletJSON{}}
	for _, wl := range list {
		out.Wallets = append(out.Wallets, walletJSON{WalletID: wl.ID, Name: wl.Name, Address: wl.Address, CreatedAt: wl.CreatedAt})
	}
	return writeJSON(w, 200, out)
}

type balanceResp struct {
	Address      string `json:"address"`
	TokenAddress string `json:"token_address,omitempty"`
	Balance      string `json:"balance"`
	Decimals     uint8  `json:"decimals"`
	Symbol       string `json:"symbol"`
}

func (s *Server) balance(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	q := r.URL.Query()
	b, err := s.Svc.Balance(r.Context(), q.Get("address"), q.Get("token_address"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, balanceResp{Address: b.Address, TokenAddress: b.Token, Balance: b.Balance.String(), Decimals: b.Decimals, Symbol: b.Symbol})
}

type createAgentReq struct {
	Name          string `json:"name"`
	WalletAddress string `json:"wallet_address"`
	MFACode       string `json:"mfa_code"`
}
type createAgentResp struct {
	AgentID       string `json:"agent_id"`
	Name          string `json:"name"`
	WalletAddress string `json:"wallet_address"`
	APIKey        string `json:"api_key"`
}

func (s *Server) createAgent(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req createAgentReq
	if err := decode(r, &req); err != nil {
		return err
	}
	a, key, err := s.Svc.CreateAgent(r.Context(), p, req.Name, req.WalletAddress, req.MFACode)
	if err != nil {
		return err
	}
	wl, err := s.Svc.AgentWallet(r.Context(), a)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, createAgentResp{AgentID: a.ID, Name: a.Name, WalletAddress: wl.Address, APIKey: key})
}

type agentJSON struct {
	AgentID       string     `json:"agent_id"`
	Name          string     `json:"name"`
	WalletAddress string     `json:"wallet_address"`
	KeyPrefix     string     `json:"key_prefix"`
	CreatedAt     time.Time  `json:"created_at"`
	LastUsedAt    *time.Time `json:"last_used_at"`
	RevokedAt     *time.Time `json:"revoked_at"`
}
type agentsResp struct {
	Agents []agentJSON `json:"agents"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) agents(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.Agents(r.Context(), p)
	if err != nil {
		return err
	}
	wallets, err := s.Svc.Wallets(r.Context(), p)
	if err != nil {
		return err
	}
	addr := map[string]string{}
	for _, wl := range wallets {
		addr[wl.ID] = wl.Address
	}
	out := agentsResp{Agents: []agentJSON{}}
	for _, a := range list {
		out.Agents = append(out.Agents, agentJSON{AgentID: a.ID, Name: a.Name, WalletAddress: addr[a.WalletID], KeyPrefix: a.KeyPrefix,
			CreatedAt: a.CreatedAt, LastUsedAt: timePtr(a.LastUsedAt), RevokedAt: timePtr(a.RevokedAt)})
	}
	return writeJSON(w, 200, out)
}

type mfaReq struct {
	MFACode string `json:"mfa_code"`
}
type revokeResp struct {
	AgentID string `json:"agent_id"`
	Revoked bool   `json:"revoked"`
}

func (s *Server) revokeAgent(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req mfaReq
	if err := decode(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.Svc.RevokeAgent(r.Context(), p, id, req.MFACode); err != nil {
		return err
	}
	return writeJSON(w, 200, revokeResp{AgentID: id, Revoked: true})
}

type prepareResp struct {
	TransactionID  string    `json:"transaction_id"`
	Status         string    `json:"status"`
	ExpiresAt      time.Time `json:"expires_at"`
	ApprovalDigest string    `json:"approval_digest"`
}

func (s *Server) prepare(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req core.PrepareRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := s.Svc.Prepare(r.Context(), p, &req, r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	return writeJSON(w, 202, prepareResp{TransactionID: t.ID, Status: string(t.Status), ExpiresAt: t.ExpiresAt, ApprovalDigest: "0x" + hex.EncodeToString(t.Digest)})
}

type authorizeReq struct {
	TransactionID  string   `json:"transaction_id,omitempty"`
	TransactionIDs []string `json:"transaction_ids,omitempty"`
	MFACode        string   `json:"mfa_code"`
	Decision       string   `json:"decision,omitempty"`
	Reason         string   `json:"reason,omitempty"`
}
type statusResp struct {
	TransactionID string `json:"transaction_id"`
	Status        string `json:"status"`
}
type authorizeResp struct {
	TransactionID string       `json:"transaction_id,omitempty"`
	Status        string       `json:"status,omitempty"`
	Results       []statusResp `json:"results,omitempty"`
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req authorizeReq
	if err := decode(r, &req); err != nil {
		return err
	}
	batch := req.TransactionIDs != nil
	if batch == (req.TransactionID != "") {
		return countersign.Errorf(countersign.BadRequest, "give exactly one of transaction_id and transaction_ids")
	}
	ids := req.TransactionIDs
	if !batch {
		ids = []string{req.TransactionID}
	}
	txs, err := s.Svc.Authorize(r.Context(), p, ids, req.MFACode, core.Decision(req.Decision), req.Reason)
	if err != nil {
		return err
	}
	if !batch {
		return writeJSON(w, 200, authorizeResp{TransactionID: txs[0].ID, Status: string(txs[0].Status)})
	}
	out := authorizeResp{Results: []statusResp{}}
	for _, t := range txs {
		out.Results = append(out.Results, statusResp{TransactionID: t.ID, Status: string(t.Status)})
	}
	return writeJSON(w, 200, out)
}

// MaxWait bounds a long poll.
const MaxWait = 60 * time.Second

func (s *Server) status(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	q := r.URL.Query()
	var wait time.Duration
	if ws := q.Get("wait"); ws != "" {
		d, err := parseWait(ws) // queryparse.go
		if err != nil {
			return err
		}
		wait = d
	}
	t, err := s.Svc.Status(r.Context(), p, q.Get("transaction_id"), wait)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, core.View(t))
}

type txIDReq struct {
	TransactionID string `json:"transaction_id"`
}
type executeResp struct {
	TransactionID string `json:"transaction_id"`
	TxHash        string `json:"tx_hash"`
	Status        string `json:"status"`
}

func (s *Server) execute(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req txIDReq
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := s.Svc.Execute(r.Context(), p, req.TransactionID)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, executeResp{TransactionID: t.ID, TxHash: t.TxHash, Status: string(t.Status)})
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req txIDReq
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := s.Svc.Cancel(r.Context(), p, req.TransactionID)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, statusResp{TransactionID: t.ID, Status: string(t.Status)})
}

type txListResp struct {
	Transactions []core.TxView `json:"transactions"`
	NextBefore   *time.Time    `json:"next_before"`
}

func (s *Server) transactions(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	q := r.URL.Query()
	f := countersign.TxFilter{Status: countersign.Status(q.Get("status")), AgentID: q.Get("agent_id"), Limit: 100}
	if l := q.Get("limit"); l != "" {
		n, err := parseLimit(l, 1000)
		if err != nil {
			return err
		}
		f.Limit = n
	}
	if b := q.Get("before"); b != "" {
		t, err := parseBefore(b)
		if err != nil {
			return err
		}
		f.Before = t
	}
	list, err := s.Svc.Transactions(r.Context(), p, f)
	if err != nil {
		return err
	}
	out := txListResp{Transactions: []core.TxView{}}
	for _, t := range list {
		out.Transactions = append(out.Transactions, core.View(t))
	}
	if len(list) == f.Limit {
		out.NextBefore = &list[len(list)-1].CreatedAt
	}
	return writeJSON(w, 200, out)
}

type spendBase struct {
	Password string `json:"password"`
	MFACode  string `json:"mfa_code"`
	Address  string `json:"address"`
}
type transferReq struct {
	spendBase
	ToAddress string `json:"to_address"`
	Amount    string `json:"amount"`
}
type transferERC20Req struct {
	transferReq
	TokenAddress string `json:"token_address"`
}
type contractCallReq struct {
	spendBase
	ContractAddress string          `json:"contract_address"`
	ContractABI     json.RawMessage `json:"contract_abi"`
	FunctionName    string          `json:"function_name"`
	FunctionArgs    json.RawMessage `json:"function_args,omitempty"`
	Value           string          `json:"value,omitempty"`
	Memo            string          `json:"memo,omitempty"`
}
type spendResp struct {
	TxHash        string `json:"tx_hash"`
	TransactionID string `json:"transaction_id"`
	Status        string `json:"status"`
}

func (s *Server) spend(w http.ResponseWriter, r *http.Request, p *core.Principal, base spendBase, req *core.PrepareRequest) error {
	t, err := s.Svc.UserSpend(r.Context(), p, base.Password, base.MFACode, base.Address, req)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, spendResp{TxHash: t.TxHash, TransactionID: t.ID, Status: string(t.Status)})
}

func (s *Server) transfer(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req transferReq
	if err := decode(r, &req); err != nil {
		return err
	}
	return s.spend(w, r, p, req.spendBase, &core.PrepareRequest{Type: "native", ToAddress: req.ToAddress, Amount: req.Amount})
}

func (s *Server) transferERC20(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req transferERC20Req
	if err := decode(r, &req); err != nil {
		return err
	}
	return s.spend(w, r, p, req.spendBase, &core.PrepareRequest{Type: "erc20", ToAddress: req.ToAddress, Amount: req.Amount, TokenAddress: req.TokenAddress})
}

func (s *Server) contractCall(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req contractCallReq
	if err := decode(r, &req); err != nil {
		return err
	}
	return s.spend(w, r, p, req.spendBase, &core.PrepareRequest{Type: "contract_call", ContractAddress: req.ContractAddress,
		ContractABI: []byte(req.ContractABI), FunctionName: req.FunctionName, FunctionArgs: []byte(req.FunctionArgs), Value: req.Value, Memo: req.Memo})
}

type auditJSON struct {
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Subject  string          `json:"subject"`
	Details  json.RawMessage `json:"details"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}
type auditResp struct {
	Entries []auditJSON `json:"entries"`
}

func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	q := r.URL.Query()
	after, limit := int64(0), 100
	if a := q.Get("after"); a != "" {
		n, err := parseSeq("after", a)
		if err != nil {
			return err
		}
		after = n
	}
	if l := q.Get("limit"); l != "" {
		n, err := parseLimit(l, 1000)
		if err != nil {
			return err
		}
		limit = n
	}
	list, err := s.Svc.AuditLog(r.Context(), p.User.ID, after, limit)
	if err != nil {
		return err
	}
	out := auditResp{Entries: []auditJSON{}}
	for _, e := range list {
		out.Entries = append(out.Entries, auditJSON{Seq: e.Seq, At: e.At, Actor: e.Actor, Action: e.Action, Subject: e.Subject,
			Details: json.RawMessage(e.Details), PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)})
	}
	return writeJSON(w, 200, out)
}

type devInfoResp struct {
	ChainID          int64  `json:"chain_id"`
	FaucetAddress    string `json:"faucet_address"`
	TestTokenAddress string `json:"test_token_address"`
	CounterAddress   string `json:"counter_address"`
}

func (s *Server) devInfo(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	f, t, c := s.Dev.Info()
	return writeJSON(w, 200, devInfoResp{ChainID: s.Svc.ChainID().Int64(), FaucetAddress: f, TestTokenAddress: t, CounterAddress: c})
}

type faucetReq struct {
	Address string `json:"address"`
	Amount  string `json:"amount"`
	Token   string `json:"token,omitempty"`
}
type faucetResp struct {
	TxHash string `json:"tx_hash"`
}

// MaxFaucet bounds one faucet request: 1000 ETH or 1000 TEST.
var maxFaucet, _ = countersign.ParseAmount("max", "1000000000000000000000")

func (s *Server) devFaucet(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req faucetReq
	if err := decode(r, &req); err != nil {
		return err
	}
	addr, err := core.ParseAddress("address", req.Address)
	if err != nil {
		return err
	}
	amount, err := countersign.ParseAmount("amount", req.Amount)
	if err != nil {
		return err
	}
	if amount.Cmp(maxFaucet) > 0 {
		return countersign.Errorf(countersign.BadRequest, "amount must be at most %s base units", maxFaucet)
	}
	var hash string
	switch req.Token {
	case "":
		hash, err = s.Dev.Fund(r.Context(), addr.Hex(), amount)
	case "TEST":
		hash, err = s.Dev.Mint(r.Context(), addr.Hex(), amount)
	default:
		return countersign.Errorf(countersign.BadRequest, "token must be omitted (ETH) or \"TEST\"")
	}
	if err != nil {
		return countersign.Wrap(countersign.ChainError, err, "faucet transaction failed")
	}
	return writeJSON(w, 200, faucetResp{TxHash: hash})
}

type jwksResp struct {
	Keys []map[string]string `json:"keys"`
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	set, err := s.Svc.JWKS(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	return writeJSON(w, 200, set)
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(s.openapi)
	return err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	return writeJSON(w, 200, okResp{Status: "ok"})
}

type readyResp struct {
	Status      string `json:"status"`
	ChainID     int64  `json:"chain_id"`
	BlockNumber uint64 `json:"block_number"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	n, err := s.Svc.Ready(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, readyResp{Status: "ready", ChainID: s.Svc.ChainID().Int64(), BlockNumber: n})
}
