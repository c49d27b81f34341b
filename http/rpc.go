package http

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/daemon"
)

// The daemon's sign/tx and /about routes, and its JSON-RPC mirror at /rpc
// (the AITBC wallet-daemon design's JSON-RPC API): the same service calls
// as the REST routes, with the design's method names, params by name (an
// object) or by position (an array, in the design's order), batches, and
// application error codes.

type signTxReq struct {
	AccountID     string `json:"account_id"`
	TxBytesBase64 string `json:"tx_bytes_base64"`
	Type          string `json:"type"`
}
type signTxResp struct {
	SignatureBase64 string `json:"signature_base64"`
	PublicKeyHex    string `json:"public_key_hex"`
	Algo            string `json:"algo"`
	SignedBase64    string `json:"signed_tx_base64"`
	TxHash          string `json:"tx_hash,omitempty"`
}

func (s *Server) signTx(ctx context.Context, req signTxReq) (*signTxResp, error) {
	tx, err := base64.StdEncoding.DecodeString(req.TxBytesBase64)
	if err != nil {
		return nil, countersign.Errorf(countersign.BadRequest, "tx_bytes_base64 is not base64")
	}
	st, err := s.Daemon.SignTx(ctx, req.AccountID, tx, req.Type, s.Svc.ChainID())
	if err != nil {
		return nil, err
	}
	return &signTxResp{SignatureBase64: base64.StdEncoding.EncodeToString(st.Signature), PublicKeyHex: hex.EncodeToString(st.PublicKey),
		Algo: st.Algo, SignedBase64: base64.StdEncoding.EncodeToString(st.Signed), TxHash: st.TxHash}, nil
}

func (s *Server) daemonSignTx(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req signTxReq
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.signTx(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, out)
}

type aboutResp struct {
	Service    string            `json:"service"`
	Version    string            `json:"version"`
	Go         string            `json:"go"`
	Algorithms map[string]string `json:"algorithms"`
	Parameters map[string]any    `json:"parameters"`
	Libraries  map[string]string `json:"libraries"`
}

// about lists algorithms, parameters and library versions, for audits.
func (s *Server) about(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	libs := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			for _, want := range []string{"github.com/ethereum/go-ethereum", "golang.org/x/crypto", "github.com/tyler-smith/go-bip39",
				"github.com/decred/dcrd/dcrec/secp256k1/v4", "modernc.org/sqlite", "github.com/golang-jwt/jwt/v5"} {
				if d.Path == want {
					libs[d.Path] = d.Version
				}
			}
		}
	}
	return writeJSON(w, 200, aboutResp{Service: "countersign wallet daemon", Version: s.Version, Go: runtime.Version(),
		Algorithms: map[string]string{
			"keystore":           "v1-kdb: Argon2id (RFC 9106) + XChaCha20-Poly1305, header and metadata as associated data",
			"mnemonic":           "BIP-39 (English, NFKD)",
			"ed25519":            "SLIP-10, hardened derivation only; RFC 8032 signatures",
			"secp256k1":          "BIP-32/BIP-44; EIP-191 message signatures; EIP-155/EIP-1559 transactions",
			"address":            "bech32 (BIP-173) hrp \"ait\" of BLAKE2b-160(public key: 32-byte ed25519, 33-byte compressed secp256k1)",
			"keys at rest (api)": "v1-kdb in the same keystore (Argon2id t=1 m=8MiB p=1) under a random 32-byte secret, sealed in the wallet row under the master key (per-record data key, XChaCha20-Poly1305, record id as AAD)",
		},
		Parameters: s.Daemon.Parameters(),
		Libraries:  libs})
}

// daemonRPCError gives countersign errors the daemon's JSON-RPC codes: the
// RPC column of the one error table (error.go). A code without a row gets
// Internal's, -32603.
func daemonRPCError(err error) error {
	if _, ok := err.(*rpcError); ok {
		return err
	}
	_, row := errorRowOf(err)
	return &rpcError{Code: row.RPC, Message: countersign.ErrorDetail(err), Data: map[string]string{"code": string(countersign.ErrorCode(err))}}
}

func (s *Server) daemonRPC(w http.ResponseWriter, r *http.Request, principal *core.Principal) error {
	return s.serveJSONRPC(w, r, func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
		out, ok, err := s.bridgedRPC(ctx, method, params, principal)
		if !ok {
			return nil, &rpcError{Code: rpcMethodNotFound, Message: "method not found: " + truncateStr(method, 64)}
		}
		return out, err
	})
}

type signReceiptReq struct {
	AccountID string          `json:"account_id"`
	Payload   json.RawMessage `json:"payload"`
}
type signReceiptResp struct {
	SignatureBase64 string `json:"signature_base64"`
	PublicKeyHex    string `json:"public_key_hex"`
	Algo            string `json:"algo"`
	Canonical       string `json:"canonical"`
}

func (s *Server) daemonSignReceipt(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req signReceiptReq
	if err := decode(r, &req); err != nil {
		return err
	}
	rc, err := daemon.ParseReceipt(req.Payload)
	if err != nil {
		return err
	}
	sm, canonical, err := s.Daemon.SignReceipt(r.Context(), req.AccountID, rc)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, signReceiptResp{SignatureBase64: base64.StdEncoding.EncodeToString(sm.Signature), PublicKeyHex: hex.EncodeToString(sm.PublicKey), Algo: sm.Algo, Canonical: string(canonical)})
}

type verifyReceiptReq struct {
	Payload         json.RawMessage `json:"payload"`
	SignatureBase64 string          `json:"signature_base64"`
	PublicKeyHex    string          `json:"public_key_hex"`
}
type verifyReceiptResp struct {
	Valid bool `json:"valid"`
}

func (s *Server) verifyReceipt(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req verifyReceiptReq
	if err := decode(r, &req); err != nil {
		return err
	}
	rc, err := daemon.ParseReceipt(req.Payload)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(req.SignatureBase64)
	if err != nil {
		return countersign.Errorf(countersign.BadRequest, "signature_base64 is not base64")
	}
	pub, err := hex.DecodeString(strings.TrimPrefix(req.PublicKeyHex, "0x"))
	if err != nil || len(pub) == 0 {
		return countersign.Errorf(countersign.BadRequest, "public_key_hex is not hex")
	}
	ok, err := daemon.VerifyReceipt(rc, sig, pub)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, verifyReceiptResp{Valid: ok})
}

type ledgerBalanceResp struct {
	Address      string `json:"address"`
	Balance      string `json:"balance"`
	BalanceUnits string `json:"balance_units"`
	Decimals     int    `json:"decimals"`
}

func ledgerBalance(addr string, units *big.Int) ledgerBalanceResp {
	return ledgerBalanceResp{Address: addr, Balance: daemon.FormatLedgerAmount(units), BalanceUnits: units.String(), Decimals: daemon.LedgerDecimals}
}

func (s *Server) daemonLedgerBalance(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	addr := r.PathValue("address")
	b, err := s.Daemon.LedgerBalance(r.Context(), addr)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, ledgerBalance(addr, b))
}

type ledgerTransferReq struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Amount string `json:"amount"`
	Memo   string `json:"memo,omitempty"`
}
type ledgerTxResp struct {
	TxID            string    `json:"txid"`
	From            string    `json:"from"`
	To              string    `json:"to"`
	Amount          string    `json:"amount"`
	AmountUnits     string    `json:"amount_units"`
	Memo            string    `json:"memo"`
	Signed          string    `json:"signed"`
	SignatureBase64 string    `json:"signature_base64"`
	PublicKeyHex    string    `json:"public_key_hex"`
	CreatedAt       time.Time `json:"created_at"`
}

func ledgerTxJSON(t *countersign.LedgerTx) ledgerTxResp {
	return ledgerTxResp{TxID: t.ID, From: t.From, To: t.To, Amount: daemon.FormatLedgerAmount(t.Units), AmountUnits: t.Units.String(), Memo: t.Memo,
		Signed: t.Canonical, SignatureBase64: base64.StdEncoding.EncodeToString(t.Signature), PublicKeyHex: hex.EncodeToString(t.PublicKey), CreatedAt: t.CreatedAt}
}

func (s *Server) daemonLedgerTransfer(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req ledgerTransferReq
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := s.Daemon.LedgerTransfer(r.Context(), req.From, req.To, req.Amount, req.Memo)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, ledgerTxJSON(t))
}

func (s *Server) daemonLedgerTx(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	t, err := s.Daemon.LedgerTx(r.Context(), r.PathValue("txid"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, ledgerTxJSON(t))
}

type ledgerFaucetReq struct {
	Address string `json:"address"`
	Amount  string `json:"amount"`
}

func (s *Server) daemonLedgerFaucet(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req ledgerFaucetReq
	if err := decode(r, &req); err != nil {
		return err
	}
	b, err := s.Daemon.LedgerFaucet(r.Context(), req.Address, req.Amount)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, ledgerBalance(req.Address, b))
}

type webhookReq struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}
type webhookResp struct {
	WebhookID string   `json:"webhook_id"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	Secret    string   `json:"secret"`
}

func (s *Server) daemonCreateWebhook(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req webhookReq
	if err := decode(r, &req); err != nil {
		return err
	}
	wh, secret, err := s.Svc.CreateWebhook(r.Context(), daemon.Owner, req.URL, req.Events)
	if err != nil {
		return err
	}
	// The secret is shown once: receivers check X-Countersign-Signature with it.
	return writeJSON(w, 201, webhookResp{WebhookID: wh.ID, URL: wh.URL, Events: wh.Events, Secret: secret})
}

type deliveryJSON struct {
	DeliveryID    string    `json:"delivery_id"`
	EventID       int64     `json:"event_id"`
	EventType     string    `json:"event_type"`
	Status        string    `json:"status"`
	Attempts      int       `json:"attempts"`
	LastStatus    int       `json:"last_status,omitempty"`
	LastError     string    `json:"last_error,omitempty"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	CreatedAt     time.Time `json:"created_at"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`
}
type deliveriesResp struct {
	Deliveries []deliveryJSON `json:"deliveries"`
}

func (s *Server) daemonDeliveries(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	list, err := s.Svc.Deliveries(r.Context(), daemon.Owner, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := deliveriesResp{Deliveries: []deliveryJSON{}}
	for _, d := range list {
		out.Deliveries = append(out.Deliveries, deliveryJSON{DeliveryID: d.ID, EventID: d.EventID, EventType: d.EventType, Status: d.Status,
			Attempts: d.Attempts, LastStatus: d.LastStatus, LastError: d.LastError, NextAttemptAt: d.NextAttemptAt, CreatedAt: d.CreatedAt, DeliveredAt: d.DeliveredAt})
	}
	return writeJSON(w, 200, out)
}

type exportReq struct {
	AccountID      string `json:"account_id"`
	ExportPassword string `json:"export_password"`
}
type exportResp struct {
	Format string `json:"format"`
	Blob   string `json:"keystore_base64"`
}

func (s *Server) daemonExport(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req exportReq
	if err := decode(r, &req); err != nil {
		return err
	}
	format, blob, err := s.Daemon.Export(r.Context(), req.AccountID, req.ExportPassword, s.ExportScryptN)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, exportResp{Format: format, Blob: base64.StdEncoding.EncodeToString(blob)})
}

// rpcBridge gives every daemon route its JSON-RPC method (the names of
// the AITBC wallet-daemon design), from the route table's RPC column. A
// call runs the route's own handler on an in-memory request, under the
// route's own Access, so the REST and RPC surfaces cannot drift apart.
// params names the positional order; a name in the route's path ({txid})
// is taken from the params, and the rest form the JSON body (POST) or the
// query (GET).
var rpcBridge map[string]bridge

// set in init: the table's handlers reach rpcBridge, so a variable
// initialiser would be a cycle
func init() { rpcBridge = bridgeFromRoutes() }

type bridge struct {
	method, path string
	params       []string
}

func bridgeFromRoutes() map[string]bridge {
	m := map[string]bridge{}
	for _, rt := range Routes() {
		if rt.RPC != "" {
			m[rt.RPC] = bridge{rt.Method, rt.Path, rt.RPCParams}
		}
	}
	return m
}

// memResponse is the ResponseWriter of a bridged call.
type memResponse struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (m *memResponse) Header() http.Header         { return m.h }
func (m *memResponse) WriteHeader(code int)        { m.status = code }
func (m *memResponse) Write(b []byte) (int, error) { return m.body.Write(b) }

var (
	bridgeOnce     sync.Once
	bridgeHandlers map[string]handlerFunc // rpcBridge method → its route's handler
)

func bridgeHandler(method string) handlerFunc {
	bridgeOnce.Do(func() {
		byRoute := map[string]handlerFunc{}
		for _, rt := range Routes() {
			byRoute[rt.Method+" "+rt.Path] = rt.h
		}
		bridgeHandlers = map[string]handlerFunc{}
		for m, b := range rpcBridge {
			bridgeHandlers[m] = byRoute[b.method+" "+b.path]
		}
	})
	return bridgeHandlers[method]
}

// paramsObject returns params as a JSON object: as given when by name;
// by position (an array, at most len(names) long), as {names[i]: value}.
func paramsObject(params json.RawMessage, names []string) ([]byte, error) {
	raw := bytes.TrimSpace(params)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return []byte("{}"), nil
	case raw[0] == '{':
		return raw, nil
	case raw[0] != '[':
		return nil, &rpcError{Code: rpcInvalidParams, Message: "params must be an object or an array"}
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || len(list) > len(names) {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "params: at most " + strings.Join(names, ", ")}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, v := range list {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(names[i]) + ":")
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (s *Server) bridgedRPC(ctx context.Context, method string, params json.RawMessage, p *core.Principal) (json.RawMessage, bool, error) {
	if _, ok := rpcBridge[method]; !ok {
		return nil, false, nil
	}
	req, err := bridgeRequest(ctx, method, params)
	if err != nil {
		return nil, true, err
	}
	res := &memResponse{h: http.Header{}, status: 200}
	if err := bridgeHandler(method)(s, res, req, p); err != nil {
		return nil, true, daemonRPCError(err)
	}
	return json.RawMessage(bytes.TrimSpace(res.body.Bytes())), true, nil
}

// bridgeRequest maps a bridged method's params onto the in-memory request
// its route's handler reads: the route's method and path, path values
// taken from the params, and the other params as the JSON body (POST) or
// the query (GET). method must be in rpcBridge. Errors are *rpcError
// (invalid params). It is a fuzz target.
func bridgeRequest(ctx context.Context, method string, params json.RawMessage) (*http.Request, error) {
	b := rpcBridge[method]
	var body io.Reader = http.NoBody
	query := url.Values{}
	pathValues := map[string]string{}
	obj, err := paramsObject(params, b.params)
	if err != nil {
		return nil, err
	}
	if b.method == "POST" && !strings.Contains(b.path, "{") {
		// the params object is the body as it is: the handler's strict
		// decoding refuses unknown or mistyped fields
		body = bytes.NewReader(obj)
	} else {
		args := map[string]json.RawMessage{}
		if err := DecodeJSON(obj, &args); err != nil {
			return nil, &rpcError{Code: rpcInvalidParams, Message: countersign.ErrorDetail(err)}
		}
		for name := range args {
			if !slices.Contains(b.params, name) {
				return nil, &rpcError{Code: rpcInvalidParams, Message: "unknown param " + truncateStr(name, 64) + "; params: " + strings.Join(b.params, ", ")}
			}
		}
		for _, name := range b.params {
			if !strings.Contains(b.path, "{"+name+"}") {
				continue
			}
			var str string
			if json.Unmarshal(args[name], &str) != nil || str == "" {
				return nil, &rpcError{Code: rpcInvalidParams, Message: name + " must be a non-empty string"}
			}
			pathValues[name] = str
			delete(args, name)
		}
		if b.method == "POST" {
			raw, _ := json.Marshal(args)
			body = bytes.NewReader(raw)
		} else {
			for name, v := range args {
				var str string
				if json.Unmarshal(v, &str) != nil {
					return nil, &rpcError{Code: rpcInvalidParams, Message: name + " must be a string"}
				}
				query.Set(name, str)
			}
		}
	}
	req, err := http.NewRequestWithContext(ctx, b.method, b.path+"?"+query.Encode(), body)
	if err != nil {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "params: " + strings.Join(b.params, ", ")}
	}
	if b.method == "POST" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range pathValues {
		req.SetPathValue(k, v)
	}
	return req, nil
}
