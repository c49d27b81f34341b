package core

import (
	"bytes"
	"encoding/json"
	"math/big"
	"testing"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
)

func typedData(chainID string) string {
	domainType, domain := `{"name":"name","type":"string"}`, `"name":"test"`
	if chainID != "" {
		domainType += `,{"name":"chainId","type":"uint256"}`
		domain += `,"chainId":` + chainID
	}
	return `{"types":{"EIP712Domain":[` + domainType + `],"Mail":[{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{` + domain + `},"message":{"contents":"hi"}}`
}

// TestSecurity_TypedDataChainTruncation: the chain id is compared as a big
// integer (2^64+1337 is not 1337, nor is 2^63+1337 as an int64 would wrap),
// and typed data without one is refused unless the caller is chain-free.
func TestSecurity_TypedDataChainTruncation(t *testing.T) {
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	tests := map[string]struct {
		chainID string
		want    int64
		ok      bool
	}{
		"ok/1337":                 {"1337", 1337, true},
		"ok/hex":                  {`"0x539"`, 1337, true},
		"ok/any chain":            {"18446744073709552953", ethsig.AnyChain, true},
		"ok/chain-free caller":    {"", ethsig.AnyChain, true},
		"fail/2^64+1337":          {new(big.Int).Add(two64, big.NewInt(1337)).String(), 1337, false},
		"fail/2^65+1337":          {new(big.Int).Add(new(big.Int).Lsh(two64, 1), big.NewInt(1337)).String(), 1337, false},
		"fail/-2^64+1337":         {new(big.Int).Sub(big.NewInt(1337), two64).String(), 1337, false},
		"fail/no chainId":         {"", 1337, false},
		"fail/another chain":      {"1", 1337, false},
		"fail/zero vs no chainId": {"", 0, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, hash, err := ethsig.ParseTypedData([]byte(typedData(tt.chainID)), tt.want)
			if tt.ok && (err != nil || len(hash) != 32) {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("accepted (%v)", err)
			}
		})
	}
	if _, _, err := ethsig.ParseTypedData([]byte(typedData("1337")+` {}`), 1337); err == nil {
		t.Fatal("trailing data after the typed data accepted")
	}
}

// FuzzParseTypedData: whatever is accepted for a chain names exactly that
// chain in its domain, hashes the same when parsed again (what the human
// approved is what is signed), and survives the compact form buildMessage
// stores.
func FuzzParseTypedData(f *testing.F) {
	for _, s := range []string{typedData("1337"), typedData(""), typedData("18446744073709552953"), typedData(`"0x539"`), typedData("-1"),
		`{}`, `null`, `{"types":{},"primaryType":"X"}`, typedData("1337") + "x", `{"types":{"EIP712Domain":[]},"primaryType":"EIP712Domain","domain":{},"message":{}}`} {
		f.Add([]byte(s), int64(1337))
		f.Add([]byte(s), int64(ethsig.AnyChain))
	}
	f.Fuzz(func(t *testing.T, raw []byte, chainID int64) {
		if len(raw) > ethsig.MaxMessage {
			return
		}
		td, hash, err := ethsig.ParseTypedData(raw, chainID)
		if err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("%v is not BAD_REQUEST", err)
			}
			return
		}
		if len(hash) != 32 {
			t.Fatalf("hash of %d bytes", len(hash))
		}
		if chainID >= 0 && (td.Domain.ChainId == nil || (*big.Int)(td.Domain.ChainId).Cmp(big.NewInt(chainID)) != 0) {
			t.Fatalf("accepted for chain %d with domain.chainId %v", chainID, td.Domain.ChainId)
		}
		var c bytes.Buffer
		if err := json.Compact(&c, raw); err != nil {
			return // buildMessage refuses what does not compact
		}
		_, again, err := ethsig.ParseTypedData(c.Bytes(), chainID)
		if err != nil || !bytes.Equal(again, hash) {
			t.Fatalf("the stored form parses differently: %v", err)
		}
		if want, _, err := apitypes.TypedDataAndHash(td); err != nil || !bytes.Equal(want, hash) {
			t.Fatalf("hash differs from go-ethereum's: %v", err)
		}
	})
}

// FuzzParsePersonalMessage: 0x-hex is the bytes it spells, anything else
// accepted is valid UTF-8 taken verbatim, and the stored 0x-hex form reads
// back to the same bytes.
func FuzzParsePersonalMessage(f *testing.F) {
	for _, s := range []string{"", "0x", "0X", "0x00ff", "0xABCDEF", "0xabc", "0xzz", "hello", "log in to example.com", "\xff\xfe", "0x\xff", "héllo"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ethsig.ParsePersonalMessage(s)
		if err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest || utf8.ValidString(s) {
				t.Fatalf("%q refused: %v", s, err)
			}
			return
		}
		if h, herr := hexutil.Decode(s); herr == nil {
			if !bytes.Equal(h, b) {
				t.Fatalf("%q: hex decoded to %x, want %x", s, b, h)
			}
		} else if s != "0x" && (!utf8.ValidString(s) || string(b) != s) {
			t.Fatalf("%q taken as %q", s, b)
		}
		stored := hexutil.Encode(b)
		back, err := ethsig.ParsePersonalMessage(stored)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("%q: the stored form %s reads back as %x (%v)", s, stored, back, err)
		}
	})
}
