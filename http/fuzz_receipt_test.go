package http

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/daemon"
)

// receiptFixture is one receipt signed by a fixed ed25519 key and a fixed
// secp256k1 key: the only signatures the fuzzer's inputs can hold.
type receiptFixture struct {
	payload   string
	canonical []byte
	edPub     []byte
	edSig     []byte
	kPub      []byte // uncompressed, 65 bytes
	kPubC     []byte // compressed, 33 bytes
	kSig      []byte // r ‖ s ‖ v, v in {27, 28}
}

func newReceiptFixture(t testing.TB) receiptFixture {
	var fx receiptFixture
	fx.payload = `{"job_id":"job-7","miner_id":"miner-3","result_hash":"0x9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","ts":1700000000}`
	r, err := daemon.ParseReceipt(json.RawMessage(fx.payload))
	if err != nil {
		t.Fatal(err)
	}
	if fx.canonical, err = r.Canonical(); err != nil {
		t.Fatal(err)
	}
	seed := sha256.Sum256([]byte("countersign fuzz: receipt ed25519 key (test only)"))
	ed := ed25519.NewKeyFromSeed(seed[:])
	fx.edPub, fx.edSig = ed.Public().(ed25519.PublicKey), ed25519.Sign(ed, fx.canonical)
	scalar := sha256.Sum256([]byte("countersign fuzz: receipt secp256k1 key (test only)"))
	k, err := crypto.ToECDSA(scalar[:])
	if err != nil {
		t.Fatal(err)
	}
	fx.kPub, fx.kPubC = crypto.FromECDSAPub(&k.PublicKey), crypto.CompressPubkey(&k.PublicKey)
	if fx.kSig, err = crypto.Sign(accounts.TextHash(fx.canonical), k); err != nil {
		t.Fatal(err)
	}
	fx.kSig[64] += 27
	return fx
}

func (fx receiptFixture) body(payload string, sig, pub []byte) []byte {
	return []byte(`{"payload":` + payload + `,"signature_base64":"` + base64.StdEncoding.EncodeToString(sig) + `","public_key_hex":"` + hex.EncodeToString(pub) + `"}`)
}

// verifyReceiptBody runs POST /v1/verify/receipt's handler on body.
func verifyReceiptBody(body []byte) (valid bool, err error) {
	r := httptest.NewRequest("POST", "/v1/verify/receipt", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	if err := (&Server{}).verifyReceipt(w, r, nil); err != nil {
		return false, err
	}
	var resp verifyReceiptResp
	if w.Code != 200 || DecodeJSON(w.Body.Bytes(), &resp) != nil {
		return false, countersign.Errorf(countersign.Internal, "status %d, body %q", w.Code, w.Body.String())
	}
	return resp.Valid, nil
}

// FuzzVerifyReceiptRoute fuzzes the anonymous POST /v1/verify/receipt with
// arbitrary bodies: it answers {"valid":…} or a client error, never panics
// or fails internally, and says valid only for a receipt the fixture keys
// really signed (whatever the spelling of its payload, signature or key).
func FuzzVerifyReceiptRoute(f *testing.F) {
	fx := newReceiptFixture(f)
	v0 := append([]byte(nil), fx.kSig...)
	v0[64] -= 27
	flipped := append([]byte(nil), fx.edSig...)
	flipped[0] ^= 1
	valid := [][]byte{fx.body(fx.payload, fx.edSig, fx.edPub), fx.body(fx.payload, fx.kSig, fx.kPub), fx.body(fx.payload, fx.kSig, fx.kPubC),
		fx.body(fx.payload, v0, fx.kPubC), fx.body(" "+strings.ReplaceAll(fx.payload, ",", " , "), fx.edSig, fx.edPub)}
	for _, b := range valid {
		if ok, err := verifyReceiptBody(b); !ok || err != nil {
			f.Fatalf("control: a good signature does not verify: %s: %v", b, err)
		}
		f.Add(b)
	}
	other := strings.Replace(fx.payload, "job-7", "job-8", 1)
	for _, b := range [][]byte{
		fx.body(other, fx.edSig, fx.edPub), fx.body(other, fx.kSig, fx.kPub), fx.body(fx.payload, flipped, fx.edPub),
		fx.body(fx.payload, fx.edSig, fx.kPubC), fx.body(fx.payload, fx.kSig, fx.edPub), fx.body(fx.payload, fx.kSig[:64], fx.kPub),
		fx.body(fx.payload, fx.kSig, append([]byte{0x02}, fx.kPub[1:33]...)), fx.body(fx.payload, fx.kSig, bytes.Repeat([]byte{0xff}, 33)),
		fx.body(fx.payload, fx.kSig, append([]byte{0x05}, fx.kPub[1:]...)), fx.body(fx.payload, fx.edSig, nil),
		fx.body(`{"job_id":"job-8","JOB_ID":"job-7","miner_id":"miner-3","result_hash":"0x9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","ts":1700000000}`, fx.edSig, fx.edPub),
		fx.body(`{"job_id":"job-8","job_id":"job-7","miner_id":"miner-3","result_hash":"0x9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","ts":1700000000}`, fx.edSig, fx.edPub),
		fx.body(`"x"`, fx.edSig, fx.edPub), fx.body(`null`, fx.edSig, fx.edPub), fx.body(`[]`, fx.edSig, fx.edPub),
		[]byte(`{"payload":{},"signature_base64":"!!","public_key_hex":"zz"}`), []byte(`{"payload":{"ts":1e400}}`),
		[]byte(`{}`), []byte(``), []byte(`{`), []byte(`[]`),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ok, err := verifyReceiptBody(body)
		if err != nil {
			if c := countersign.ErrorCode(err); c != countersign.BadRequest && c != countersign.TooLarge {
				t.Fatalf("%q: %v", body, err)
			}
			return
		}
		if !ok {
			return
		}
		var req verifyReceiptReq
		if err := DecodeJSON(body, &req); err != nil {
			t.Fatalf("valid for a body that does not decode: %v", err)
		}
		r, err := daemon.ParseReceipt(req.Payload)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := r.Canonical()
		pub, _ := hex.DecodeString(strings.TrimPrefix(req.PublicKeyHex, "0x"))
		known := bytes.Equal(pub, fx.edPub) || bytes.Equal(pub, fx.kPub) || bytes.Equal(pub, fx.kPubC)
		if !bytes.Equal(c, fx.canonical) || !known {
			t.Fatalf("valid for a receipt no fixture key signed: %q", body)
		}
	})
}

// TestSecurity_ReceiptPayloadMeansOneThing: a payload that a plain JSON
// reader (a coordinator's JSON.parse) reads as job-8 must not verify with a
// signature over job-7. Before the fix ParseReceipt let a differently-cased
// or repeated key override job_id, so the route answered valid:true.
func TestSecurity_ReceiptPayloadMeansOneThing(t *testing.T) {
	fx := newReceiptFixture(t)
	const rest = `"miner_id":"miner-3","result_hash":"0x9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","ts":1700000000`
	for name, payload := range map[string]string{
		"fail/case-folded key":  `{"job_id":"job-8","Job_Id":"job-7",` + rest + `}`,
		"fail/duplicate key":    `{"job_id":"job-8",` + rest + `,"job_id":"job-7"}`,
		"fail/only other case":  `{"JOB_ID":"job-7",` + rest + `}`,
		"fail/duplicate ts":     `{"job_id":"job-7",` + rest + `,"ts":1700000001}`,
		"fail/unknown field":    `{"job_id":"job-7",` + rest + `,"amount":"1"}`,
		"fail/trailing garbage": `{"job_id":"job-7",` + rest + `} x`,
	} {
		t.Run(name, func(t *testing.T) {
			ok, err := verifyReceiptBody(fx.body(payload, fx.edSig, fx.edPub))
			if ok || countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("valid=%v err=%v, want a BadRequest", ok, err)
			}
			if _, err := daemon.ParseReceipt(json.RawMessage(payload)); countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("ParseReceipt: %v", err)
			}
		})
	}
	if ok, err := verifyReceiptBody(fx.body(`{"job_id":"job-7",`+rest+`}`, fx.edSig, fx.edPub)); !ok || err != nil {
		t.Fatalf("control: %v %v", ok, err)
	}
}
