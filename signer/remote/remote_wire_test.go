package remote_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
	"github.com/countersign/countersign/signer/derived"
	"github.com/countersign/countersign/signer/remote"
)

const (
	master = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	token  = "service-token-0123456789"
)

var omni = strings.Repeat("ab", 32)

// signerServer speaks the wire shape of `countersign signer` (http/derived.go):
// POST /dev/derive-address {omni_account} → {address}; POST /dev/sign-message
// {omni_account, message_hex} → {signature}; POST /dev/sign-typed-data
// {omni_account, typed_data (a JSON object)} → {signature}; errors as
// {"error":{"code","detail"}}; a bearer service token. Unknown fields are
// refused, as the real server's strict decoder does, so a renamed field on
// the client side fails here. The signatures come from the real derived
// signer.
type signerServer struct {
	t  *testing.T
	d  *derived.Signer
	mu sync.Mutex
	// last request seen, for the assertions
	path, auth, contentType string
	body                    map[string]json.RawMessage
}

func (s *signerServer) fail(w http.ResponseWriter, status int, code countersign.Code, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": string(code), "detail": detail}})
}

func (s *signerServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.path, s.auth, s.contentType = r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type")
	s.mu.Unlock()
	if r.Method != "POST" {
		s.fail(w, 405, countersign.BadRequest, "POST only")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+token {
		s.fail(w, 401, countersign.Unauthorized, "a valid service token is required")
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		s.fail(w, 400, countersign.BadRequest, "request body is not JSON")
		return
	}
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
	allowed := map[string][]string{"/dev/derive-address": {"omni_account"}, "/dev/sign-message": {"omni_account", "message_hex"},
		"/dev/sign-typed-data": {"omni_account", "typed_data"}}[r.URL.Path]
	if allowed == nil {
		s.fail(w, 404, countersign.NotFound, "no route")
		return
	}
	for k := range body {
		if !contains(allowed, k) {
			s.fail(w, 400, countersign.BadRequest, "unknown field "+k)
			return
		}
	}
	var o string
	if err := json.Unmarshal(body["omni_account"], &o); err != nil || !countersign.ValidOmniAccount(o) {
		s.fail(w, 400, countersign.BadRequest, "omni_account must be 64 lowercase hex digits")
		return
	}
	ctx := r.Context()
	var out any
	switch r.URL.Path {
	case "/dev/derive-address":
		a, err := s.d.DeriveAddress(ctx, o)
		if err != nil {
			s.fail(w, 500, countersign.Internal, "internal error")
			return
		}
		out = map[string]string{"address": a}
	case "/dev/sign-message":
		var mh string
		if err := json.Unmarshal(body["message_hex"], &mh); err != nil {
			s.fail(w, 400, countersign.BadRequest, "message_hex must be 0x-prefixed hex")
			return
		}
		msg, err := hexutil.Decode(mh)
		if err != nil && mh != "0x" {
			s.fail(w, 400, countersign.BadRequest, "message_hex must be 0x-prefixed hex")
			return
		}
		sig, err := s.d.SignMessage(ctx, o, msg)
		if err != nil {
			s.fail(w, 400, countersign.ErrorCode(err), countersign.ErrorDetail(err))
			return
		}
		out = map[string]string{"signature": hexutil.Encode(sig)}
	case "/dev/sign-typed-data":
		td := body["typed_data"]
		if len(td) == 0 || td[0] != '{' {
			s.fail(w, 400, countersign.BadRequest, "typed_data must be a JSON object")
			return
		}
		sig, err := s.d.SignTypedData(ctx, o, td)
		if err != nil {
			s.fail(w, 400, countersign.ErrorCode(err), countersign.ErrorDetail(err))
			return
		}
		out = map[string]string{"signature": hexutil.Encode(sig)}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func newSigner(t *testing.T) (*signerServer, *httptest.Server) {
	t.Helper()
	d, err := derived.New(master)
	if err != nil {
		t.Fatal(err)
	}
	s := &signerServer{t: t, d: d}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// recoverAddr returns who made sig (65 bytes, v 27/28) over hash.
func recoverAddr(t *testing.T, hash, sig []byte) string {
	t.Helper()
	if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
		t.Fatalf("signature %x: want 65 bytes with v 27 or 28", sig)
	}
	s := bytes.Clone(sig)
	s[64] -= 27
	pub, err := crypto.SigToPub(hash, s)
	if err != nil {
		t.Fatal(err)
	}
	return crypto.PubkeyToAddress(*pub).Hex()
}

const typedData = `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"Mail":[{"name":"contents","type":"string"}]},
"primaryType":"Mail","domain":{"name":"test"},"message":{"contents":"hello"}}`

// The client round-trips with a server of the real wire shape: the right
// paths, the bearer token, the field names, typed data as a JSON object;
// the signatures are the derived key's, over EIP-191 and EIP-712 hashes.
func TestRemoteRoundTrip(t *testing.T) {
	s, srv := newSigner(t)
	ctx := context.Background()
	c := remote.New(srv.URL+"/", token) // a trailing slash is dropped
	want, _ := s.d.DeriveAddress(ctx, omni)

	t.Run("ok/derive address", func(t *testing.T) {
		a, err := c.DeriveAddress(ctx, omni)
		if err != nil || a != want {
			t.Fatalf("address %q %v, want %s", a, err, want)
		}
		if s.path != "/dev/derive-address" || s.auth != "Bearer "+token || s.contentType != "application/json" {
			t.Fatalf("request %s %q %q", s.path, s.auth, s.contentType)
		}
	})
	t.Run("ok/sign message", func(t *testing.T) {
		msg := []byte("hello \x00 world")
		sig, err := c.SignMessage(ctx, omni, msg)
		if err != nil {
			t.Fatal(err)
		}
		if got := recoverAddr(t, accounts.TextHash(msg), sig); got != want {
			t.Fatalf("signed by %s, want %s", got, want)
		}
		if string(s.body["message_hex"]) != `"0x68656c6c6f200020776f726c64"` {
			t.Fatalf("message_hex %s", s.body["message_hex"])
		}
	})
	t.Run("ok/sign empty message", func(t *testing.T) {
		sig, err := c.SignMessage(ctx, omni, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := recoverAddr(t, accounts.TextHash(nil), sig); got != want {
			t.Fatalf("signed by %s, want %s", got, want)
		}
	})
	t.Run("ok/sign typed data", func(t *testing.T) {
		sig, err := c.SignTypedData(ctx, omni, []byte(typedData))
		if err != nil {
			t.Fatal(err)
		}
		_, hash, err := ethsig.ParseTypedData([]byte(typedData), ethsig.AnyChain)
		if err != nil {
			t.Fatal(err)
		}
		if got := recoverAddr(t, hash, sig); got != want {
			t.Fatalf("signed by %s, want %s", got, want)
		}
		if s.path != "/dev/sign-typed-data" || !bytes.HasPrefix(s.body["typed_data"], []byte("{")) {
			t.Fatalf("typed data sent as %s to %s, want a JSON object", s.body["typed_data"], s.path)
		}
	})
}

// The signer's error code and detail pass through (marked as the
// signer's); the service token never appears in an error.
func TestRemoteErrorPassthrough(t *testing.T) {
	_, srv := newSigner(t)
	ctx := context.Background()
	tests := map[string]struct {
		c      *remote.Client
		call   func(*remote.Client) error
		code   countersign.Code
		detail string
	}{
		"fail/bad omni account": {remote.New(srv.URL, token), func(c *remote.Client) error { _, err := c.DeriveAddress(ctx, "ABC"); return err },
			countersign.BadRequest, "signer: omni_account must be 64 lowercase hex digits"},
		"fail/bad typed data": {remote.New(srv.URL, token), func(c *remote.Client) error {
			_, err := c.SignTypedData(ctx, omni, []byte(`{"types":{}}`))
			return err
		}, countersign.BadRequest, "signer: "},
		"fail/message too large": {remote.New(srv.URL, token), func(c *remote.Client) error {
			_, err := c.SignMessage(ctx, omni, make([]byte, ethsig.MaxMessage+1))
			return err
		}, countersign.BadRequest, "signer: message is too large"},
		"fail/wrong token": {remote.New(srv.URL, "wrong-token-0123456789"), func(c *remote.Client) error { _, err := c.DeriveAddress(ctx, omni); return err },
			countersign.Unauthorized, "signer: a valid service token is required"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := tt.call(tt.c)
			if countersign.ErrorCode(err) != tt.code || !strings.HasPrefix(countersign.ErrorDetail(err), tt.detail) {
				t.Fatalf("%v: want %s %q", err, tt.code, tt.detail)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "wrong-token") {
				t.Fatalf("the token is in the error: %v", err)
			}
		})
	}
}

// TestSecurity_RemoteSignerBadAnswersFailClosed: whatever a signer (or
// something in its place) answers that is not a well-formed result is an
// error, never a value the server would use: no empty or malformed
// address, no signature of the wrong length. On the old code a 200 answer
// without an address gave DeriveAddress "" and no error.
func TestSecurity_RemoteSignerBadAnswersFailClosed(t *testing.T) {
	ctx := context.Background()
	answers := map[string]struct {
		status int
		body   string
		code   countersign.Code
	}{
		"fail/500 without envelope":   {500, "boom", countersign.Internal},
		"fail/502 HTML":               {502, "<html>bad gateway</html>", countersign.Internal},
		"fail/302 redirect":           {302, "", countersign.Internal},
		"fail/200 not JSON":           {200, "<html>", countersign.Internal},
		"fail/200 empty object":       {200, "{}", countersign.Internal},
		"fail/200 empty body":         {200, "", countersign.Internal},
		"fail/200 null":               {200, "null", countersign.Internal},
		"fail/200 wrong types":        {200, `{"address":1,"signature":2}`, countersign.Internal},
		"fail/200 short signature":    {200, `{"address":"0x12","signature":"0x1234"}`, countersign.Internal},
		"fail/200 not hex":            {200, `{"address":"not an address","signature":"0xzz"}`, countersign.Internal},
		"fail/200 signature 66 bytes": {200, `{"address":"0x` + strings.Repeat("00", 21) + `","signature":"0x` + strings.Repeat("11", 66) + `"}`, countersign.Internal},
		"fail/error envelope, 4xx":    {409, `{"error":{"code":"CONFLICT","detail":"busy"}}`, countersign.Conflict},
	}
	for name, tt := range answers {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c := remote.New(srv.URL, token)
			if a, err := c.DeriveAddress(ctx, omni); err == nil || countersign.ErrorCode(err) != tt.code {
				t.Fatalf("DeriveAddress: %q, %v: want %s", a, err, tt.code)
			}
			if sig, err := c.SignMessage(ctx, omni, []byte("x")); err == nil || sig != nil || countersign.ErrorCode(err) != tt.code {
				t.Fatalf("SignMessage: %x, %v: want %s", sig, err, tt.code)
			}
			if sig, err := c.SignTypedData(ctx, omni, []byte(typedData)); err == nil || sig != nil || countersign.ErrorCode(err) != tt.code {
				t.Fatalf("SignTypedData: %x, %v: want %s", sig, err, tt.code)
			}
		})
	}
	t.Run("fail/address not checksummed hex of 20 bytes", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"address":"0x`+strings.Repeat("00", 19)+`"}`)
		}))
		defer srv.Close()
		if a, err := remote.New(srv.URL, token).DeriveAddress(ctx, omni); err == nil {
			t.Fatalf("a 19-byte address was taken: %q", a)
		}
	})
	t.Run("ok/a well-formed address passes", func(t *testing.T) {
		addr := common.HexToAddress("0x00000000000000000000000000000000000000A1").Hex()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"address":"`+addr+`"}`)
		}))
		defer srv.Close()
		if a, err := remote.New(srv.URL, token).DeriveAddress(ctx, omni); err != nil || a != addr {
			t.Fatalf("%q %v", a, err)
		}
	})
}

// An unreachable or hung signer is ErrUnavailable (the caller may retry),
// and the caller's deadline bounds the wait.
func TestRemoteUnreachable(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := remote.New(url, token).DeriveAddress(ctx, omni)
	if !errors.Is(err, countersign.ErrUnavailable) || countersign.ErrorDetail(err) != "the signer is unreachable" {
		t.Fatalf("a closed port: %v", err)
	}

	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = remote.New(hung.URL, token).SignMessage(dctx, omni, []byte("x"))
	if !errors.Is(err, countersign.ErrUnavailable) || time.Since(start) > 5*time.Second {
		t.Fatalf("a hung signer: %v after %v", err, time.Since(start))
	}
}
