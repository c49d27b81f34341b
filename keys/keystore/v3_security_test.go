package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/crypto/scrypt"
)

// v3Salt, v3IV and v3Priv make the hand-built keystores below
// deterministic; the password is "pw".
var (
	v3Salt = strings.Repeat("ab", 32)
	v3IV   = strings.Repeat("cd", 16)
	v3Priv = "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"
)

// buildV3 writes a keystore whose MAC and ciphertext are right for the
// given derived key, with kdfparams spliced in verbatim, so a test can
// spell the parameters any way it likes.
func buildV3(kdf, kdfparams string, dk []byte) string {
	key, _ := hex.DecodeString(v3Priv)
	iv, _ := hex.DecodeString(v3IV)
	block, _ := aes.NewCipher(dk[:16])
	ct := make([]byte, len(key))
	cipher.NewCTR(block, iv).XORKeyStream(ct, key)
	mac := crypto.Keccak256(dk[16:32], ct)
	return fmt.Sprintf(`{"version":3,"id":"3198bc9c-6672-5ab3-d995-4942343ae5b6","crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":%q},"ciphertext":%q,"kdf":%q,"kdfparams":%s,"mac":%q}}`,
		v3IV, hex.EncodeToString(ct), kdf, kdfparams, hex.EncodeToString(mac))
}

func pbkdf2V3(kdfparams string) string {
	salt, _ := hex.DecodeString(v3Salt)
	dk, _ := pbkdf2.Key(sha256.New, "pw", salt, 2, 32)
	return buildV3("pbkdf2", kdfparams, dk)
}

func scryptV3(kdfparams string) string {
	salt, _ := hex.DecodeString(v3Salt)
	dk, _ := scrypt.Key([]byte("pw"), salt, 2, 1, 1, 32)
	return buildV3("scrypt", kdfparams, dk)
}

// v3Attacks are the inputs of finding 14: each passed the old struct-based
// check (encoding/json matches struct keys ignoring case) while
// go-ethereum's decrypter read different, exact lower-case keys from a map
// and panicked or derived with unchecked costs.
func v3Attacks() map[string]string {
	s := `"salt":"` + v3Salt + `"`
	return map[string]string{
		"Salt":          pbkdf2V3(`{"c":2,"dklen":32,"prf":"hmac-sha256","Salt":"` + v3Salt + `"}`),
		"DKLen":         pbkdf2V3(`{"c":2,"DKLen":32,"prf":"hmac-sha256",` + s + `}`),
		"PRF":           pbkdf2V3(`{"c":2,"dklen":32,"PRF":"hmac-sha256",` + s + `}`),
		"C":             pbkdf2V3(`{"C":2,"dklen":32,"prf":"hmac-sha256",` + s + `}`),
		"long s salt":   pbkdf2V3(`{"c":2,"dklen":32,"prf":"hmac-sha256","\u017falt":"` + v3Salt + `"}`),
		"c and C":       pbkdf2V3(`{"c":20000000,"C":2,"dklen":32,"prf":"hmac-sha256",` + s + `}`),
		"n 2^21 and N":  scryptV3(`{"dklen":32,"n":2097152,"N":2,"r":1,"p":1,` + s + `}`),
		"n 2^30 and N":  scryptV3(`{"dklen":32,"n":1073741824,"N":2,"r":1,"p":1,` + s + `}`),
		"R and r":       scryptV3(`{"dklen":32,"n":2,"r":1,"R":1,"p":1,` + s + `}`),
		"duplicate n":   scryptV3(`{"dklen":32,"n":2,"n":2,"r":1,"p":1,` + s + `}`),
		"Kelvin kdf":    strings.Replace(scryptV3(`{"dklen":32,"n":2,"r":1,"p":1,`+s+`}`), `"kdf"`, `"\u212adf"`, 1),
		"Cipher":        strings.Replace(scryptV3(`{"dklen":32,"n":2,"r":1,"p":1,`+s+`}`), `"cipher"`, `"Cipher"`, 1),
		"crypto twice":  strings.Replace(scryptV3(`{"dklen":32,"n":2,"r":1,"p":1,`+s+`}`), `"crypto":`, `"Crypto":{},"crypto":`, 1),
		"version twice": strings.Replace(scryptV3(`{"dklen":32,"n":2,"r":1,"p":1,`+s+`}`), `"version":3`, `"version":3,"Version":3`, 1),
	}
}

// v3AttackSeeds are v3Attacks as fuzzing seeds.
func v3AttackSeeds() []string {
	var out []string
	for _, s := range v3Attacks() {
		out = append(out, s)
	}
	return out
}

// TestSecurity_V3KeyCaseVariants performs finding 14: keystores whose KDF
// parameters are spelled in another case, or given twice, must be refused
// with ErrV3 (a BadRequest at the daemon), quickly — not panic the
// decrypter and not derive with costs nobody checked. On the old code
// "Salt", "DKLen", "PRF", "C" panicked and "n 2^21 and N" ran scrypt with
// 256 MiB before failing as a wrong password ("n 2^30 and N" asks for
// 128 GiB and kills the process).
func TestSecurity_V3KeyCaseVariants(t *testing.T) {
	for name, raw := range v3Attacks() {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			key, _, err := ImportV3([]byte(raw), "pw")
			if !errors.Is(err, ErrV3) || key != nil {
				t.Fatalf("err = %v, want ErrV3", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("refusal took %v", d)
			}
		})
	}
}

// The hand-built files themselves are valid when spelled properly, so the
// refusals above are about the spelling and nothing else.
func TestV3HandBuilt(t *testing.T) {
	s := `"salt":"` + v3Salt + `"`
	for name, raw := range map[string]string{
		"ok/pbkdf2":       pbkdf2V3(`{"c":2,"dklen":32,"prf":"hmac-sha256",` + s + `}`),
		"ok/scrypt":       scryptV3(`{"dklen":32,"n":2,"r":1,"p":1,` + s + `}`),
		"ok/Crypto":       strings.Replace(scryptV3(`{"dklen":32,"n":2,"r":1,"p":1,`+s+`}`), `"crypto"`, `"Crypto"`, 1),
		"ok/extra fields": pbkdf2V3(`{"c":2,"dklen":32,"prf":"hmac-sha256","x-note":"hi",` + s + `}`),
	} {
		t.Run(name, func(t *testing.T) {
			key, _, err := ImportV3([]byte(raw), "pw")
			if err != nil || hex.EncodeToString(key) != v3Priv {
				t.Fatalf("%x %v", key, err)
			}
			if _, _, err := ImportV3([]byte(raw), "other"); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("wrong password: %v", err)
			}
		})
	}
}

// TestSecurity_V3Bounds: every KDF parameter is bounded before any work,
// including scrypt's memory (128·r·n bytes), which the old per-parameter
// bounds let reach 2 GiB (n = 2^20, r = 16).
func TestSecurity_V3Bounds(t *testing.T) {
	s := `"salt":"` + v3Salt + `"`
	for name, kp := range map[string]string{
		"fail/scrypt 2 GiB":      `{"dklen":32,"n":1048576,"r":16,"p":1,` + s + `}`,
		"fail/scrypt 512 MiB":    `{"dklen":32,"n":262144,"r":16,"p":1,` + s + `}`,
		"fail/scrypt work":       `{"dklen":32,"n":262144,"r":2,"p":16,` + s + `}`,
		"fail/n not power of 2":  `{"dklen":32,"n":1000,"r":1,"p":1,` + s + `}`,
		"fail/n 1":               `{"dklen":32,"n":1,"r":1,"p":1,` + s + `}`,
		"fail/n 2^30":            `{"dklen":32,"n":1073741824,"r":1,"p":1,` + s + `}`,
		"fail/n as string":       `{"dklen":32,"n":"2","r":1,"p":1,` + s + `}`,
		"fail/n fraction":        `{"dklen":32,"n":2.5,"r":1,"p":1,` + s + `}`,
		"fail/n exponent":        `{"dklen":32,"n":2e0,"r":1,"p":1,` + s + `}`,
		"fail/n huge":            `{"dklen":32,"n":1e400,"r":1,"p":1,` + s + `}`,
		"fail/r 0":               `{"dklen":32,"n":2,"r":0,"p":1,` + s + `}`,
		"fail/p 17":              `{"dklen":32,"n":2,"r":1,"p":17,` + s + `}`,
		"fail/dklen 16":          `{"dklen":16,"n":2,"r":1,"p":1,` + s + `}`,
		"fail/dklen 1000000":     `{"dklen":1000000,"n":2,"r":1,"p":1,` + s + `}`,
		"fail/no dklen":          `{"n":2,"r":1,"p":1,` + s + `}`,
		"fail/no salt":           `{"dklen":32,"n":2,"r":1,"p":1}`,
		"fail/short salt":        `{"dklen":32,"n":2,"r":1,"p":1,"salt":"abcd"}`,
		"fail/salt not a string": `{"dklen":32,"n":2,"r":1,"p":1,"salt":12}`,
		"fail/kdfparams array":   `[]`,
		"fail/kdfparams null":    `null`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := ImportV3([]byte(scryptV3(kp)), "pw"); !errors.Is(err, ErrV3) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	for name, kp := range map[string]string{
		"fail/c 0":        `{"c":0,"dklen":32,"prf":"hmac-sha256",` + s + `}`,
		"fail/c too high": `{"c":10000001,"dklen":32,"prf":"hmac-sha256",` + s + `}`,
		"fail/prf sha512": `{"c":2,"dklen":32,"prf":"hmac-sha512",` + s + `}`,
		"fail/no prf":     `{"c":2,"dklen":32,` + s + `}`,
		"fail/prf number": `{"c":2,"dklen":32,"prf":1,` + s + `}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := ImportV3([]byte(pbkdf2V3(kp)), "pw"); !errors.Is(err, ErrV3) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	good := scryptV3(`{"dklen":32,"n":2,"r":1,"p":1,` + s + `}`)
	for name, raw := range map[string]string{
		"fail/trailing data": good + "{}",
		"fail/truncated":     good[:len(good)-1],
		"fail/top array":     "[" + good + "]",
		"fail/version 2":     strings.Replace(good, `"version":3`, `"version":2`, 1),
		"fail/version str":   strings.Replace(good, `"version":3`, `"version":"3"`, 1),
		"fail/no version":    strings.Replace(good, `"version":3,`, ``, 1),
		"fail/aes-256":       strings.Replace(good, `aes-128-ctr`, `aes-256-ctr`, 1),
		"fail/unknown kdf":   strings.Replace(good, `"scrypt"`, `"argon2"`, 1),
		"fail/no crypto":     `{"version":3}`,
		"fail/CRYPTO":        strings.Replace(good, `"crypto"`, `"CRYPTO"`, 1),
		"fail/too large":     good[:len(good)-1] + `,"pad":"` + strings.Repeat("x", 64<<10) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := ImportV3([]byte(raw), "pw"); !errors.Is(err, ErrV3) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
