package sqlite

import (
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/countersign/countersign"
)

// anyRow is a row scanned into the values the driver returns, through *any
// destinations (database/sql's conversion without reflection), converted
// by position with database/sql's rules for the types the store reads.
// scanTx reads 47 columns a row: converting each into its typed field
// through database/sql — reflection for the named string types, an int
// formatted and parsed again — was about a seventh of a status poll's CPU.
type anyRow struct {
	v    []any
	ptrs []any // &v[i]
	err  error // the first conversion that failed
}

// txRows are the anyRows of scanTx, reused: a status poll reads one row.
var txRows = sync.Pool{New: func() any {
	r := &anyRow{v: make([]any, txColN), ptrs: make([]any, txColN)}
	for i := range r.v {
		r.ptrs[i] = &r.v[i]
	}
	return r
}}

// release clears r (it holds the row's strings and bytes) and gives it back.
func (r *anyRow) release() {
	clear(r.v)
	r.err = nil
	txRows.Put(r)
}

func (r *anyRow) fail(i int, to string) {
	if r.err == nil {
		from := fmt.Sprintf("%T", r.v[i])
		if r.v[i] == nil {
			from = "NULL"
		}
		r.err = fmt.Errorf("sql: Scan error on column index %d: converting %s to %s is unsupported", i, from, to)
	}
}

// str is column i as text; NULL is an error, as database/sql has it.
func (r *anyRow) str(i int) string {
	switch x := r.v[i].(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	r.fail(i, "string")
	return ""
}

// i64 is column i as an integer; NULL is an error.
func (r *anyRow) i64(i int) int64 {
	var s string
	switch x := r.v[i].(type) {
	case int64:
		return x
	case string:
		s = x
	case []byte:
		s = string(x)
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	default:
		r.fail(i, "int64")
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		r.fail(i, "int64")
	}
	return n
}

// blob is column i as bytes: nil for NULL, a copy of the driver's bytes
// (database/sql made it for the *any destination), text as its bytes.
func (r *anyRow) blob(i int) []byte {
	switch x := r.v[i].(type) {
	case nil:
		return nil
	case []byte:
		return x
	case string:
		return []byte(x)
	case int64:
		return strconv.AppendInt(nil, x, 10)
	}
	r.fail(i, "[]byte")
	return nil
}

// nullI64 is column i as an integer that may be NULL.
func (r *anyRow) nullI64(i int) sql.NullInt64 {
	if r.v[i] == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: r.i64(i), Valid: true}
}

// txColN is the number of columns in txCols.
const txColN = 47

func scanTx(row interface{ Scan(...any) error }) (*countersign.Transaction, error) {
	r := txRows.Get().(*anyRow)
	defer r.release()
	if err := row.Scan(r.ptrs...); err != nil {
		return nil, err
	}
	t := &countersign.Transaction{
		ID: r.str(0), OwnerID: r.str(1), AgentID: r.str(2), WalletID: r.str(3), ChainID: r.i64(4),
		Type: countersign.TxType(r.str(5)), From: r.str(6), To: r.str(7), Amount: r.str(8), TokenAddress: r.str(9),
		ContractAddress: r.str(10), ContractABI: r.str(11), FunctionName: r.str(12), FunctionArgs: r.str(13), Value: r.str(14),
		Memo: r.str(15), TxTo: r.str(16), TxValue: r.str(17), TxData: r.blob(18), Digest: r.blob(19),
		ApprovedDigest: r.blob(20), DecidedBy: r.str(21), DecidedAt: fromTS(r.i64(22)), Reason: r.str(23),
		Status: countersign.Status(r.str(24)), RawTx: r.blob(26), TxHash: r.str(27), Error: r.str(29),
		IdempotencyKey: r.str(30), RequestHash: r.blob(31), ExpiresAt: fromTS(r.i64(32)), CreatedAt: fromTS(r.i64(33)),
		UpdatedAt: fromTS(r.i64(34)), Message: r.str(35), Signature: r.blob(36),
		GasLimit: uint64(r.i64(37)), MaxFeePerGas: r.str(38), CheckedAt: fromTS(r.i64(39)), Broadcasts: int(r.i64(40)),
		NextBroadcastAt: fromTS(r.i64(41)), Decision: r.str(42), RuleID: r.str(43), PolicyWarnings: policyWarnings(r.str(44)), // policy.go
		AuthorizeAt: fromTS(r.i64(45)), ApprovalsNeeded: int(r.i64(46)),
	}
	if n := r.nullI64(25); n.Valid {
		v := uint64(n.Int64)
		t.Nonce = &v
	}
	if b := r.nullI64(28); b.Valid {
		v := uint64(b.Int64)
		t.BlockNumber = &v
	}
	if r.err != nil {
		return nil, r.err
	}
	return t, nil
}
