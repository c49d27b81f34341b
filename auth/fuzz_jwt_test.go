package auth

import (
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The fuzz key and clock are fixed so the tokens below (issued once with
// them, by Issue) stay valid: the oracle needs to know every token the key
// ever issued.
var (
	fuzzJWTNow    = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	fuzzJWTScalar = sha256.Sum256([]byte("countersign fuzz: session token key (test only)"))
)

const (
	// session tokens for user-1 at fuzzJWTNow (low-s signatures)
	fuzzJWTIssued1 = "eyJhbGciOiJFUzI1NiIsImtpZCI6IjVST2YtVlcyanllVVgwdzNBUzRUWFFrOTdPLUFKMzdUcFY2Z3otQW5vQ2ciLCJ0eXAiOiJKV1QifQ.eyJuYW1lIjoiYWxpY2UiLCJpc3MiOiJjb3VudGVyc2lnbiIsInN1YiI6InVzZXItMSIsImF1ZCI6WyJjb3VudGVyc2lnbiJdLCJleHAiOjE4OTM1NTcwNDUsIm5iZiI6MTg5MzU1MzQ0NSwiaWF0IjoxODkzNTUzNDQ1LCJqdGkiOiI1NkNfb1VfQmFVSmU3R2Z4X2JKUzNnIn0.fwTCEOjURlerslIsovsxMicEwqIAvJrFZI75alOsVbMFuefbYu5mpldcpVqD59XGwVGZl8HI36d7kF67i9rs8A"
	fuzzJWTIssued2 = "eyJhbGciOiJFUzI1NiIsImtpZCI6IjVST2YtVlcyanllVVgwdzNBUzRUWFFrOTdPLUFKMzdUcFY2Z3otQW5vQ2ciLCJ0eXAiOiJKV1QifQ.eyJuYW1lIjoiYWxpY2UiLCJpc3MiOiJjb3VudGVyc2lnbiIsInN1YiI6InVzZXItMSIsImF1ZCI6WyJjb3VudGVyc2lnbiJdLCJleHAiOjE4OTM1NTcwNDUsIm5iZiI6MTg5MzU1MzQ0NSwiaWF0IjoxODkzNTUzNDQ1LCJqdGkiOiJwUFJZcm5VRHRqdE9lMm5BR3ZJaGVRIn0.Xrw-CrjPR217Uka6VD-M9MdIyClYE3agYu1F_N1LFMpKpZJegUpy2PRggBwjGVstL9D3IY0WhjVBV5SQpNvNWg"
	// the same key, audience countersign-omni: never a user session
	fuzzJWTOmni = "eyJhbGciOiJFUzI1NiIsImtpZCI6IjVST2YtVlcyanllVVgwdzNBUzRUWFFrOTdPLUFKMzdUcFY2Z3otQW5vQ2ciLCJ0eXAiOiJKV1QifQ.eyJuYW1lIjoiYWxpY2UiLCJpc3MiOiJjb3VudGVyc2lnbiIsInN1YiI6InVzZXItMSIsImF1ZCI6WyJjb3VudGVyc2lnbi1vbW5pIl0sImV4cCI6MTg5MzU1NzA0NSwibmJmIjoxODkzNTUzNDQ1LCJpYXQiOjE4OTM1NTM0NDUsImp0aSI6Im12bHRxbWlDQnZSTDI1eXA5UGlzU2cifQ.hGaoNNWwzF_sSbTnKMV3C8Mm8HvwQrs-34iy2TX-Vykz-WvaAFJP79DWCZS8Q1fAT5cOcNWoV5bm1UaY7L2KiA"
	// issued two hours before fuzzJWTNow with a one-hour lifetime
	fuzzJWTExpired = "eyJhbGciOiJFUzI1NiIsImtpZCI6IjVST2YtVlcyanllVVgwdzNBUzRUWFFrOTdPLUFKMzdUcFY2Z3otQW5vQ2ciLCJ0eXAiOiJKV1QifQ.eyJuYW1lIjoiYWxpY2UiLCJpc3MiOiJjb3VudGVyc2lnbiIsInN1YiI6InVzZXItMSIsImF1ZCI6WyJjb3VudGVyc2lnbiJdLCJleHAiOjE4OTM1NDk4NDUsIm5iZiI6MTg5MzU0NjI0NSwiaWF0IjoxODkzNTQ2MjQ1LCJqdGkiOiJXRXRBcXBnTFU3bkJxMUdvZDlNUm13In0.lvfEkeQEiiUkf-K70DjsUpfCt0WJor-RJZ710oCu8MFwMIieFGF7hAuDFKx6g-2y7qEd2RCPFoO-6ciw5BvhRA"
)

func fuzzJWTTokens(t testing.TB) (*Tokens, TokenKey) {
	k, err := ParseTokenKey(fuzzJWTScalar[:])
	if err != nil {
		t.Fatal(err)
	}
	tk, err := NewTokens([]TokenKey{k}, time.Hour, func() time.Time { return fuzzJWTNow })
	if err != nil {
		t.Fatal(err)
	}
	return tk, k
}

// highS returns tok with its ECDSA signature (r, s) replaced by (r, n−s),
// which verifies under the same key: a token the server never issued.
func highS(t testing.TB, tok string) string {
	parts := strings.Split(tok, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature of %q: %v", tok, err)
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	s.FillBytes(sig[32:])
	return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// aliasBits returns tok with the unused low bits of its signature's last
// base64 character set: the same bytes, a different token string.
func aliasBits(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[last|0x0f])
}

// TestSecurity_JWTOneSpellingPerToken: a session token verifies only in the
// exact form the server issued. Before the fix, a second spelling of any
// token (the unused base64 bits of the signature set, or the signature's s
// replaced by n−s) verified too, so anything keyed on the token string
// (logs, caches, a deny list of leaked tokens) could be bypassed.
func TestSecurity_JWTOneSpellingPerToken(t *testing.T) {
	tk, _ := fuzzJWTTokens(t)
	for _, tok := range []string{fuzzJWTIssued1, fuzzJWTIssued2} {
		if _, err := tk.Verify(tok); err != nil {
			t.Fatalf("issued token refused: %v", err)
		}
		for name, forged := range map[string]string{"alias bits": aliasBits(tok), "high s": highS(t, tok), "padded": tok + "=",
			"alias bits of high s": aliasBits(highS(t, tok))} {
			if forged == tok {
				t.Fatalf("%s: no change", name)
			}
			if _, err := tk.Verify(forged); err == nil {
				t.Errorf("%s: %q accepted", name, forged)
			}
		}
	}
	// fresh tokens are issued in the one accepted spelling
	n := elliptic.P256().Params().N
	for range 32 {
		tok, _, _, err := tk.Issue("user-2", "bob")
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := base64.RawURLEncoding.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
		if new(big.Int).SetBytes(sig[32:]).Cmp(new(big.Int).Rsh(n, 1)) > 0 {
			t.Fatalf("issued a high-s signature: %s", tok)
		}
		if _, err := tk.Verify(tok); err != nil {
			t.Fatalf("fresh token refused: %v", err)
		}
	}
}

// FuzzVerifyJWT fuzzes session token verification with arbitrary strings
// against a real key: it must never panic, and every token it accepts must
// be one the key issued (byte for byte).
func FuzzVerifyJWT(f *testing.F) {
	tk, k := fuzzJWTTokens(f)
	issued := map[string]bool{fuzzJWTIssued1: true, fuzzJWTIssued2: true}
	for tok := range issued {
		if _, err := tk.Verify(tok); err != nil {
			f.Fatalf("control: issued token refused: %v", err)
		}
	}
	sign := func(m jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
		tt := jwt.NewWithClaims(m, claims)
		for h, v := range header {
			tt.Header[h] = v
		}
		s, err := tt.SignedString(key)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	claims := jwt.MapClaims{"iss": Issuer, "aud": Issuer, "sub": "user-1", "jti": "x", "iat": fuzzJWTNow.Unix(), "exp": fuzzJWTNow.Add(time.Hour).Unix()}
	pub, _ := k.Private.PublicKey.Bytes()
	kid := map[string]any{"kid": k.KID}
	parts := strings.Split(fuzzJWTIssued1, ".")
	for _, s := range []string{
		fuzzJWTIssued1, fuzzJWTIssued2, fuzzJWTOmni, fuzzJWTExpired,
		aliasBits(fuzzJWTIssued1), highS(f, fuzzJWTIssued1), fuzzJWTIssued1 + "=", " " + fuzzJWTIssued1, "Bearer " + fuzzJWTIssued1,
		sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, claims),
		sign(jwt.SigningMethodHS256, pub, kid, claims),
		sign(jwt.SigningMethodHS256, []byte(k.KID), kid, claims),
		sign(jwt.SigningMethodES256, k.Private, map[string]any{"kid": []string{k.KID}}, claims),
		sign(jwt.SigningMethodES256, k.Private, map[string]any{"kid": k.KID, "crit": []string{"exp"}}, jwt.MapClaims{"iss": Issuer, "aud": Issuer, "sub": "", "jti": "x", "exp": fuzzJWTNow.Add(time.Hour).Unix()}),
		parts[0] + "." + parts[1] + ".", parts[0] + ".." + parts[2], parts[0] + "." + parts[1], parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[2],
		"e30.e30.", "..", ".", "", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTEifQ.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := tk.Verify(tok)
		if err != nil {
			if err != ErrToken {
				t.Fatalf("Verify returned %v, not ErrToken", err)
			}
			return
		}
		if !issued[tok] {
			t.Fatalf("accepted a token the key never issued: %q (claims %+v)", tok, c)
		}
		if c.Subject != "user-1" || c.Issuer != Issuer || c.ID == "" {
			t.Fatalf("claims %+v", c)
		}
	})
}
