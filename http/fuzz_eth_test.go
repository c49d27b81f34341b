package http

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/keys/envelope"
)

// A minimal /eth: the real Server, handler and core.Service, over a store
// that holds one wallet and captures the transaction Prepare would create
// (then refuses it, so nothing waits for a human), and a chain on which
// every address has code and no simulation succeeds. Anything else the code under test touches
// panics through the nil embedded interfaces, which the fuzzer reports.

var errEthCaptured = errors.New("fuzz: transaction captured")

type ethFuzzStore struct {
	countersign.Store
	wallet *countersign.Wallet
	got    *countersign.Transaction
	keys   []*countersign.SigningKey
}

func (s *ethFuzzStore) WalletByID(_ context.Context, id string) (*countersign.Wallet, error) {
	if id != s.wallet.ID {
		return nil, countersign.Errorf(countersign.NotFound, "wallet not found")
	}
	return s.wallet, nil
}
func (s *ethFuzzStore) SigningKeys(context.Context) ([]*countersign.SigningKey, error) {
	return s.keys, nil
}
func (s *ethFuzzStore) AddSigningKey(_ context.Context, k *countersign.SigningKey) error {
	s.keys = append(s.keys, k)
	return nil
}
func (s *ethFuzzStore) InTx(ctx context.Context, fn func(context.Context) error) error {
	return fn(ctx)
}
func (s *ethFuzzStore) CreateTransaction(_ context.Context, t *countersign.Transaction) error {
	s.got = t
	return errEthCaptured
}

// Policy: no policy is set, so prepare decides as it always did.
func (s *ethFuzzStore) Policy(context.Context, countersign.PolicyLevel, string) (*countersign.PolicyRecord, error) {
	return nil, countersign.Errorf(countersign.NotFound, "policy not found")
}

// Freezes: nothing is frozen (the kill switch, core/freeze.go).
func (s *ethFuzzStore) Freezes(context.Context, string) ([]*countersign.Freeze, error) {
	return nil, nil
}

type ethFuzzChain struct{ countersign.Chain }

func (ethFuzzChain) ChainID(context.Context) (*big.Int, error) { return big.NewInt(1337), nil }

func (ethFuzzChain) CodeAt(context.Context, string) ([]byte, error) { return []byte{0x60, 0x00}, nil }

// BlockNumber is the head the simulations are remembered at (core/review_cache.go).
func (ethFuzzChain) BlockNumber(context.Context) (uint64, error) { return 1, nil }

// EstimateGas fails, as a simulation may: Prepare then binds no fees and
// asks the chain nothing more.
func (ethFuzzChain) EstimateGas(context.Context, countersign.CallMsg) (uint64, error) {
	return 0, countersign.Errorf(countersign.ChainError, "fuzz: no simulation")
}

const ethFuzzWallet = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

func newEthFuzzServer() (*Server, *ethFuzzStore, *core.Principal) {
	st := &ethFuzzStore{wallet: &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: ethFuzzWallet}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sealer, err := envelope.New(make([]byte, 32))
	if err != nil {
		panic(err)
	}
	svc, err := core.New(context.Background(), st, ethFuzzChain{}, nil, sealer, nil, log, core.Config{})
	if err != nil {
		panic(err)
	}
	p := &core.Principal{User: &countersign.User{ID: "u1"}, Agent: &countersign.Agent{ID: "a1", OwnerID: "u1", WalletID: "w1"}}
	return &Server{Svc: svc, Log: log}, st, p
}

// strictQuantity is the Ethereum JSON-RPC QUANTITY encoding: 0x and hex
// digits, nothing else (no sign, no spaces); "" means absent.
var strictQuantity = regexp.MustCompile(`^0[xX][0-9a-fA-F]{1,64}$`)

func quantity(s string) (*big.Int, bool) {
	if s == "" {
		return new(big.Int), true
	}
	if !strictQuantity.MatchString(s) {
		return nil, false
	}
	v, _ := new(big.Int).SetString(s[2:], 16)
	return v, true
}

// FuzzEthParams fuzzes the agents' /eth JSON-RPC endpoint: a method name
// and its raw params. It must never panic or fail internally, refuse bad
// params with a JSON-RPC error, and when eth_sendTransaction becomes a
// request for the human, that request must be exactly the object sent:
// the same recipient, the value as the strict hex quantity written, the
// same calldata, the agent's own account, this chain.
func FuzzEthParams(f *testing.F) {
	to := "0x000000000000000000000000000000000000dEaD"
	for _, s := range []struct{ method, params string }{
		{"eth_sendTransaction", `[{"from":"` + ethFuzzWallet + `","to":"` + to + `","value":"0xde0b6b3a7640000"}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","value":"0x1","data":"0xa9059cbb","gas":"0x5208","chainId":"0x539"}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","input":"0x01","data":"0x01","nonce":"0x0","type":"0x2","accessList":[]}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","value":"0x-1","data":"0x01"}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","value":"0x+1"}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","value":"0X00ff"}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","value":"0x"}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","value":"1000"}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","chainId":"0x1"}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","chainId":"0x-539"}]`},
		{"eth_sendTransaction", `[{"to":"` + strings.ToLower(to) + `","from":"` + strings.ToUpper(ethFuzzWallet[2:]) + `"}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","from":"0x000000000000000000000000000000000000bEEF"}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","data":"0x01","input":"0x02"}]`},
		{"eth_sendTransaction", `[{"to":null,"data":"0x6000"}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","Value":"0x5","value":"0x6"}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `","extra":1}]`},
		{"eth_sendTransaction", `[{"to":"` + to + `"},{"to":"` + to + `"}]`},
		{"eth_sendTransaction", `{"to":"` + to + `"}`},
		{"eth_sendTransaction", `[]`}, {"eth_sendTransaction", `null`}, {"eth_sendTransaction", ``}, {"eth_sendTransaction", `[1]`},
		{"personal_sign", `["0x68656c6c6f","` + ethFuzzWallet + `"]`},
		{"eth_signTypedData_v4", `["` + ethFuzzWallet + `","{}"]`},
		{"eth_accounts", `[]`}, {"eth_requestAccounts", ``}, {"eth_sign", `["` + ethFuzzWallet + `","0x00"]`},
		{"eth_chainId", `[]`}, {"eth_unknown", `[]`}, {"", `[]`},
	} {
		f.Add(s.method, []byte(s.params))
	}
	f.Fuzz(func(t *testing.T, method string, params []byte) {
		s, st, p := newEthFuzzServer()
		_, err := s.ethCall(context.Background(), p, method, json.RawMessage(params))
		got := st.got
		switch {
		case errors.Is(err, errEthCaptured):
		case err == nil:
		default:
			var re *rpcError
			if !errors.As(err, &re) && countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("%s %q: error %v is neither a JSON-RPC error nor a BadRequest", method, params, err)
			}
			if re != nil && re.Code == rpcInternal && !ethMethods[method].Read {
				t.Fatalf("%s %q: internal error %v", method, params, err)
			}
		}
		if method == "eth_sendTransaction" {
			checkEthSend(t, params, got)
		}

		// The same call through the handler: a JSON-RPC response, never a panic.
		name, _ := json.Marshal(method)
		body := []byte(`{"jsonrpc":"2.0","id":1,"method":` + string(name) + `,"params":` + string(params) + `}`)
		if len(bytes.TrimSpace(params)) == 0 {
			body = []byte(`{"jsonrpc":"2.0","id":1,"method":` + string(name) + `}`)
		}
		s, _, p = newEthFuzzServer()
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/eth", bytes.NewReader(body))
		if err := s.eth(w, r, p); err != nil {
			t.Fatalf("handler error %v", err)
		}
		var resp rpcResponse
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &resp) != nil || resp.JSONRPC != "2.0" || (resp.Error == nil) == (resp.Result == nil) {
			t.Fatalf("response %d %q", w.Code, w.Body.String())
		}
	})
}

// checkEthSend reads params as the JSON-RPC spec defines them and checks
// that got (the request created, or nil) is exactly what they say.
func checkEthSend(t *testing.T, params []byte, got *countersign.Transaction) {
	t.Helper()
	var ps []json.RawMessage
	var tx struct {
		From, Value, Data, Input, ChainID string
		To                                *string
	}
	ok := json.Unmarshal(params, &ps) == nil && len(ps) == 1 && json.Unmarshal(ps[0], &tx) == nil && tx.To != nil
	value, okValue := quantity(tx.Value)
	chainID, okChain := quantity(tx.ChainID)
	data := tx.Data
	if data == "" {
		data = tx.Input
	}
	ok = ok && okValue && okChain && (tx.ChainID == "" || chainID.Int64() == 1337 && chainID.IsInt64()) &&
		(tx.From == "" || strings.EqualFold(tx.From, ethFuzzWallet)) &&
		(tx.Data == "" || tx.Input == "" || strings.EqualFold(tx.Data, tx.Input))
	if got == nil {
		return // refused (or refused later, by the shared validation)
	}
	if !ok {
		t.Fatalf("%q became a request (to %s, value %s, data %x) though it is not a valid transaction object", params, got.TxTo, got.TxValue, got.TxData)
	}
	if !strings.EqualFold(got.TxTo, *tx.To) || got.From != ethFuzzWallet || got.ChainID != 1337 || got.Status != countersign.StatusPending {
		t.Fatalf("%q became a request to %s from %s on chain %d", params, got.TxTo, got.From, got.ChainID)
	}
	if got.TxValue != value.String() {
		t.Fatalf("%q: the human would approve value %s, the agent sent %s", params, got.TxValue, value)
	}
	want := []byte{}
	if data != "" && data != "0x" {
		var err error
		if !strings.HasPrefix(strings.ToLower(data), "0x") {
			t.Fatalf("%q: calldata without 0x accepted", params)
		}
		if want, err = hex.DecodeString(data[2:]); err != nil {
			t.Fatalf("%q: undecodable data %q accepted", params, data)
		}
	}
	if !bytes.Equal(got.TxData, want) {
		t.Fatalf("%q: calldata %x, want %x", params, got.TxData, want)
	}
}

// TestMoney_EthSendTransactionValueIsAQuantity: eth_sendTransaction's
// value is a hex QUANTITY. Before the fix "0x-1" was read as −1, which a
// contract call dropped to value 0 and turned into a request for the
// human (what the agent sent is not what gets approved), and "0x+1" was
// read as 1. Both must be refused with invalid params and create nothing.
func TestMoney_EthSendTransactionValueIsAQuantity(t *testing.T) {
	const to = "0x000000000000000000000000000000000000dEaD"
	for name, tx := range map[string]string{
		"fail/negative, contract call": `{"to":"` + to + `","value":"0x-1","data":"0x01"}`,
		"fail/negative, native":        `{"to":"` + to + `","value":"0x-de0b6b3a7640000"}`,
		"fail/plus sign":               `{"to":"` + to + `","value":"0x+1"}`,
		"fail/negative chainId":        `{"to":"` + to + `","chainId":"0x-539"}`,
		"fail/space":                   `{"to":"` + to + `","value":"0x 1"}`,
	} {
		t.Run(name, func(t *testing.T) {
			s, st, p := newEthFuzzServer()
			_, err := s.ethCall(context.Background(), p, "eth_sendTransaction", json.RawMessage("["+tx+"]"))
			var re *rpcError
			if !errors.As(err, &re) || re.Code != rpcInvalidParams || st.got != nil {
				t.Fatalf("err = %v, request created: %v (value %v)", err, st.got != nil, st.got)
			}
		})
	}
	// control: a valid value reaches the human as written
	s, st, p := newEthFuzzServer()
	_, err := s.ethCall(context.Background(), p, "eth_sendTransaction", json.RawMessage(`[{"to":"`+to+`","value":"0xff","data":"0x01"}]`))
	if !errors.Is(err, errEthCaptured) || st.got.TxValue != "255" {
		t.Fatalf("control: %v %+v", err, st.got)
	}
}
