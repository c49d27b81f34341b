package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
)

// Receipt is a job receipt a coordinator or miner signs (the AITBC
// wallet-daemon design's receipts).
type Receipt struct {
	JobID      string `json:"job_id"`
	MinerID    string `json:"miner_id"`
	ResultHash string `json:"result_hash"`
	TS         int64  `json:"ts"` // Unix seconds
}

// Canonical is the RFC 8785 (JCS) serialisation of the receipt: members
// sorted by key (job_id, miner_id, result_hash, ts), no whitespace, strings
// escaped as ECMAScript's JSON.stringify escapes them, ts as an integer.
func (r Receipt) Canonical() ([]byte, error) {
	if r.JobID == "" || r.MinerID == "" || r.ResultHash == "" || r.TS <= 0 || r.TS > 1<<53 {
		return nil, countersign.Errorf(countersign.BadRequest, "payload needs job_id, miner_id, result_hash (strings) and ts (positive integer seconds)")
	}
	var b bytes.Buffer
	b.WriteString(`{"job_id":`)
	if err := jcsString(&b, r.JobID); err != nil {
		return nil, err
	}
	b.WriteString(`,"miner_id":`)
	if err := jcsString(&b, r.MinerID); err != nil {
		return nil, err
	}
	b.WriteString(`,"result_hash":`)
	if err := jcsString(&b, r.ResultHash); err != nil {
		return nil, err
	}
	b.WriteString(`,"ts":` + strconv.FormatInt(r.TS, 10) + `}`)
	return b.Bytes(), nil
}

// jcsString writes s as RFC 8785 requires: only ", \ and control
// characters are escaped (the short forms \b \t \n \f \r where they exist,
// else \u00xx in lowercase); everything else is written as UTF-8.
func jcsString(b *bytes.Buffer, s string) error {
	if !utf8.ValidString(s) || len(s) > 1024 {
		return countersign.Errorf(countersign.BadRequest, "receipt strings must be valid UTF-8 of at most 1024 bytes")
	}
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return nil
}

// ParseReceipt reads a receipt payload strictly: one JSON object with only
// the keys job_id, miner_id, result_hash (strings) and ts (an integer),
// each at most once and spelled exactly so, and nothing after it. The
// verifier answers for the receipt it decoded, and a coordinator may read
// the payload with its own JSON parser: encoding/json alone matches keys
// case-insensitively and lets a later duplicate win, so
// {"job_id":"A","JOB_ID":"B",…} would verify a signature over job B while
// the coordinator reads job A.
func ParseReceipt(raw json.RawMessage) (Receipt, error) {
	bad := func(why string) (Receipt, error) {
		return Receipt{}, countersign.Errorf(countersign.BadRequest, "payload must be {job_id, miner_id, result_hash, ts}: %s", why)
	}
	var r Receipt
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad("malformed JSON")
		}
		key, _ := tok.(string)
		var dst any
		switch key {
		case "job_id":
			dst = &r.JobID
		case "miner_id":
			dst = &r.MinerID
		case "result_hash":
			dst = &r.ResultHash
		case "ts":
			dst = &r.TS
		default:
			if len(key) > 32 {
				key = key[:32] + "…"
			}
			return bad(fmt.Sprintf("unknown field %q (keys are case-sensitive)", key))
		}
		if seen[key] {
			return bad(fmt.Sprintf("field %q appears twice", key))
		}
		seen[key] = true
		if err := dec.Decode(dst); err != nil {
			if key == "ts" {
				return bad(`field "ts" must be an integer number of seconds`)
			}
			return bad(fmt.Sprintf("field %q must be a string", key))
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return bad("malformed JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("nothing may follow the object")
	}
	return r, nil
}

// SignReceipt signs a receipt's canonical bytes with an account, as
// SignMessage signs a message (ed25519 over the bytes; secp256k1 EIP-191).
func (d *Service) SignReceipt(ctx context.Context, accountID string, r Receipt) (*SignedMessage, []byte, error) {
	c, err := r.Canonical()
	if err != nil {
		return nil, nil, err
	}
	sm, err := d.SignMessage(ctx, accountID, c)
	return sm, c, err
}

// VerifyReceipt checks a receipt signature against a public key (32-byte
// ed25519, or 33/65-byte secp256k1). It needs no wallet: coordinators use it.
func VerifyReceipt(r Receipt, sig, pub []byte) (bool, error) {
	c, err := r.Canonical()
	if err != nil {
		return false, err
	}
	switch len(pub) {
	case ed25519.PublicKeySize:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, c, sig), nil
	case 33, 65:
		if len(sig) != 65 {
			return false, nil
		}
		s := append([]byte(nil), sig...)
		if s[64] >= 27 {
			s[64] -= 27
		}
		got, err := crypto.SigToPub(accounts.TextHash(c), s)
		if err != nil {
			return false, nil
		}
		want := pub
		if len(pub) == 33 {
			k, err := crypto.DecompressPubkey(pub)
			if err != nil {
				return false, countersign.Errorf(countersign.BadRequest, "public_key_hex is not a secp256k1 key")
			}
			want = crypto.FromECDSAPub(k)
		}
		return bytes.Equal(crypto.FromECDSAPub(got), want), nil
	default:
		return false, countersign.Errorf(countersign.BadRequest, "public_key_hex must be a 32-byte ed25519 or a 33/65-byte secp256k1 key, not %d bytes (%s…)", len(pub), hex.EncodeToString(pub[:min(len(pub), 4)]))
	}
}
