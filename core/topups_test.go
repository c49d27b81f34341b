package core

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign"
)

var testIntent = countersign.TransferIntent{RecipientAmount: "3000000000000000", Deadline: "1893456000",
	Recipient: "0x1111111111111111111111111111111111111111", RecipientCurrency: "0x0000000000000000000000000000000000000000",
	RefundDestination: "0x2222222222222222222222222222222222222222", FeeAmount: "30000000000000", ID: "0x0123456789abcdef0123456789abcdef",
	Operator: "0x3333333333333333333333333333333333333333", Signature: "0x" + strings.Repeat("ab", 65), Prefix: ""}

// The payment request's calldata — encoded from the ABI and the JSON
// arguments the approver is shown — is exactly go-ethereum's encoding of
// the TransferIntent struct, for both functions.
func TestTransferCallEncoding(t *testing.T) {
	a, _, err := ParseABI(json.RawMessage(TransfersABIJSON))
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"transferNative", "transferTokenPreApproved"} {
		m, err := FindMethod(a, fn, 1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := EncodeCall(m, transferIntentArgs(testIntent))
		if err != nil {
			t.Fatal(err)
		}
		want, err := PackTransfer(fn, testIntent)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the two encodings differ", fn)
		}
	}
	// the selectors docs/OPERATOR.md's policy example names
	if n, tk := hex.EncodeToString(transfersABI.Methods["transferNative"].ID), hex.EncodeToString(transfersABI.Methods["transferTokenPreApproved"].ID); n != "fc8f31e0" || tk != "04e0fc36" {
		t.Fatalf("selectors %s %s", n, tk)
	}
}

// checkCharge refuses every charge that is not exactly for this wallet,
// this chain and the configured contract, or that sends refunds
// elsewhere, or is malformed: such a charge is never paid.
func TestSecurity_CheckChargeRefusesForeignCharges(t *testing.T) {
	const contract = "0x131642c019AF815Ae5F9926272A70C84AE5C37ab"
	s := &Service{chainID: big.NewInt(8453), clock: topupClock(time.Unix(1800000000, 0))}
	s.topups.contract = mustAddr(contract)
	w := &countersign.Wallet{Address: "0x2222222222222222222222222222222222222222"}
	good := func() *countersign.TopupCharge {
		return &countersign.TopupCharge{ID: "c", Contract: contract, Sender: w.Address, ChainID: 8453, Intent: testIntent}
	}
	if err := s.checkCharge(good(), w); err != nil {
		t.Fatalf("the good charge: %v", err)
	}
	for name, mutate := range map[string]func(c *countersign.TopupCharge){
		"fail/other chain":    func(c *countersign.TopupCharge) { c.ChainID = 1 },
		"fail/other sender":   func(c *countersign.TopupCharge) { c.Sender = "0x4444444444444444444444444444444444444444" },
		"fail/other contract": func(c *countersign.TopupCharge) { c.Contract = "0x5555555555555555555555555555555555555555" },
		"fail/refunds elsewhere": func(c *countersign.TopupCharge) {
			c.Intent.RefundDestination = "0x6666666666666666666666666666666666666666"
		},
		"fail/zero recipient":  func(c *countersign.TopupCharge) { c.Intent.Recipient = "0x0000000000000000000000000000000000000000" },
		"fail/zero amount":     func(c *countersign.TopupCharge) { c.Intent.RecipientAmount = "0" },
		"fail/negative fee":    func(c *countersign.TopupCharge) { c.Intent.FeeAmount = "-1" },
		"fail/huge amount":     func(c *countersign.TopupCharge) { c.Intent.RecipientAmount = "1" + strings.Repeat("0", 60) },
		"fail/deadline passed": func(c *countersign.TopupCharge) { c.Intent.Deadline = "1700000000" },
		"fail/short id":        func(c *countersign.TopupCharge) { c.Intent.ID = "0x01" },
		"fail/short signature": func(c *countersign.TopupCharge) { c.Intent.Signature = "0xabcd" },
		"fail/bad checksum": func(c *countersign.TopupCharge) {
			c.Intent.Recipient = "0x1111111111111111111111111111111111111111"[:40] + "aA"
		},
		"fail/overlong prefix":      func(c *countersign.TopupCharge) { c.Intent.Prefix = "0x" + strings.Repeat("00", 65) },
		"fail/contract not address": func(c *countersign.TopupCharge) { c.Contract = "base" },
	} {
		t.Run(name, func(t *testing.T) {
			c := good()
			mutate(c)
			if err := s.checkCharge(c, w); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

type topupClock time.Time

func (c topupClock) Now() time.Time { return time.Time(c) }

func mustAddr(s string) common.Address {
	b, _ := ParseAddress("x", s)
	return b
}

func TestTopupBackoff(t *testing.T) {
	var total time.Duration
	for n := 1; n < 10; n++ {
		d := topupBackoff(n)
		if d < 5*time.Second || d > 10*time.Minute || (n > 1 && d < topupBackoff(n-1)) {
			t.Fatalf("backoff(%d) = %v", n, d)
		}
		total += d
	}
	if total < 20*time.Minute {
		t.Fatalf("ten attempts span only %v", total)
	}
}
