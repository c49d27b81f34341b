package core

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/keys/keystore"
)

// TestSecurity_ImportKeystoreCaseVariants performs finding 14 through the
// daemon's import, the function behind POST /v1/wallet/import-keystore:
// KDF parameters spelled in another case (or given twice) are a clear
// BadRequest, returned at once, and nothing is stored. On the old code the
// "Salt" and "DKLen" files panicked go-ethereum's decrypter (a 500) and
// "n and N" passed the n ≤ 2^20 bound with N = 2 while go-ethereum derived
// with n = 2^30 (128·r·n bytes: a terabyte here), killing the process.
func TestSecurity_ImportKeystoreCaseVariants(t *testing.T) {
	d, ctx := newTestDaemon(t)
	priv, _ := crypto.GenerateKey()
	good, err := keystore.ExportV3(crypto.FromECDSA(priv), "ks-pw", 2, 1) // go-ethereum's writer: {"dklen":32,"n":2,"p":1,"r":8,"salt":…}
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string][2]string{
		"Salt":        {`"salt":`, `"Salt":`},
		"DKLen":       {`"dklen":`, `"DKLen":`},
		"n and N":     {`"n":2,`, `"n":1073741824,"N":2,`},
		"duplicate r": {`"r":8,`, `"r":8,"r":8,`},
	} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(string(good), mutate[0]) {
				t.Fatalf("go-ethereum's output changed shape: %s", good)
			}
			raw := []byte(strings.Replace(string(good), mutate[0], mutate[1], 1))
			start := time.Now()
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						err = errors.New("panic") // a 500
					}
				}()
				_, _, err = d.ImportKeystore(ctx, "imported", "wallet-pw", raw, "ks-pw")
			}()
			if countersign.ErrorCode(err) != countersign.BadRequest || !strings.Contains(countersign.ErrorDetail(err), "keystore_json") {
				t.Fatalf("err = %v, want BAD_REQUEST about keystore_json", err)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Fatalf("refusal took %v", el)
			}
		})
	}
	if ws, err := d.Wallets(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("refused imports stored %d wallets (%v)", len(ws), err)
	}
	// the unaltered file still imports
	if _, a, err := d.ImportKeystore(ctx, "imported", "wallet-pw", good, "ks-pw"); err != nil || a == nil {
		t.Fatalf("the genuine keystore: %v", err)
	}
}
