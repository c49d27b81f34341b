package daemon

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/countersign/countersign"
)

// plainReading is how any other JSON reader (JavaScript's JSON.parse, a
// map) sees a payload: case-sensitive keys, the last duplicate wins.
func plainReading(raw []byte) (map[string]any, bool) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return nil, false
	}
	return m, true
}

// FuzzParseReceipt fuzzes the receipt decoder of /v1/sign/receipt and the
// anonymous /v1/verify/receipt. A receipt it accepts must mean the same to
// every JSON reader (else a coordinator reading the payload itself sees job
// A while the signature covers job B), and its canonical form must be JSON
// that decodes back to the same receipt and canonicalises to itself.
func FuzzParseReceipt(f *testing.F) {
	for _, s := range []string{
		`{"job_id":"j1","miner_id":"m1","result_hash":"0xabc","ts":1700000000}`,
		`{"ts":1,"result_hash":"r","miner_id":"m","job_id":"j"}`,
		`{"job_id":"j\u0000\"\\\n\u001f\u007f\u2028é😀","miner_id":"m","result_hash":"r","ts":9007199254740992}`,
		`{"job_id":"A","JOB_ID":"B","miner_id":"m","result_hash":"r","ts":1}`,
		`{"job_id":"A","job_id":"B","miner_id":"m","result_hash":"r","ts":1}`,
		`{"Job_Id":"A","miner_id":"m","result_hash":"r","ts":1}`,
		`{"job_id":"j","miner_id":"m","result_hash":"r","ts":1} {"job_id":"x"}`,
		`{"job_id":"j","miner_id":"m","result_hash":"r","ts":1.5}`,
		`{"job_id":"j","miner_id":"m","result_hash":"r","ts":1e3}`,
		`{"job_id":"j","miner_id":"m","result_hash":"r","ts":-1}`,
		`{"job_id":"j","miner_id":"m","result_hash":"r","ts":1,"extra":1}`,
		`{"job_id":null,"miner_id":"m","result_hash":"r","ts":1}`,
		`{"job_id":"\ud800","miner_id":"m","result_hash":"r","ts":1}`,
		"{\"job_id\":\"\xff\",\"miner_id\":\"m\",\"result_hash\":\"r\",\"ts\":1}",
		`[]`, `null`, `{`, ``, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := ParseReceipt(raw)
		if err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("non-BadRequest error %v", err)
			}
			return
		}
		c, err := r.Canonical()
		if err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("non-BadRequest error %v", err)
			}
			return
		}
		// The payload as another reader sees it is the receipt that is signed.
		m, ok := plainReading(raw)
		if !ok {
			t.Fatalf("accepted %q, which is not one JSON object", raw)
		}
		if len(m) != 4 || m["job_id"] != r.JobID || m["miner_id"] != r.MinerID || m["result_hash"] != r.ResultHash {
			t.Fatalf("accepted %q as %+v, but a plain JSON reader sees %v", raw, r, m)
		}
		if n, ok := m["ts"].(json.Number); !ok || n.String() != strconv.FormatInt(r.TS, 10) {
			t.Fatalf("accepted %q with ts %d, but a plain JSON reader sees %v", raw, r.TS, m["ts"])
		}
		// Canonical form: valid JSON, same receipt, a fixed point.
		if !json.Valid(c) {
			t.Fatalf("canonical form %q is not JSON", c)
		}
		back, err := ParseReceipt(c)
		if err != nil || back != r {
			t.Fatalf("canonical %q decodes to %+v (%v), want %+v", c, back, err, r)
		}
		if c2, err := back.Canonical(); err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("canonical form is not stable: %q → %q", c, c2)
		}
		if strings.ContainsAny(string(c), "\n\t ") && !strings.ContainsAny(r.JobID+r.MinerID+r.ResultHash, " ") {
			t.Fatalf("canonical form has whitespace: %q", c)
		}
	})
}
