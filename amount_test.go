package countersign

import (
	"math/big"
	"strings"
	"testing"
)

func TestParseAmount(t *testing.T) {
	max := "115792089237316195423570985008687907853269984665640564039457584007913129639935"
	tests := map[string]struct {
		in   string
		want string
		err  string
	}{
		"ok/zero":          {in: "0", want: "0"},
		"ok/one ether":     {in: "1000000000000000000", want: "1000000000000000000"},
		"ok/max uint256":   {in: max, want: max},
		"fail/empty":       {in: "", err: "required"},
		"fail/negative":    {in: "-1", err: "negative"},
		"fail/fraction":    {in: "1.5", err: "no decimals"},
		"fail/exponent":    {in: "1e18", err: "no decimals"},
		"fail/hex":         {in: "0x10", err: "decimal integer"},
		"fail/leading 0":   {in: "01", err: "leading zeros"},
		"fail/space":       {in: " 1", err: "decimal integer"},
		"fail/plus":        {in: "+1", err: "decimal integer"},
		"fail/over max":    {in: "115792089237316195423570985008687907853269984665640564039457584007913129639936", err: "too large"},
		"fail/very long":   {in: strings.Repeat("9", 200), err: "too large"},
		"fail/unicode dig": {in: "١٢", err: "decimal integer"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			v, err := ParseAmount("amount", tt.in)
			if tt.err != "" {
				if err == nil || ErrorCode(err) != BadRequest || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || v.String() != tt.want {
				t.Fatalf("got %v, %v", v, err)
			}
		})
	}
}

func TestFormatUnits(t *testing.T) {
	for _, tt := range []struct {
		v    string
		d    int
		want string
	}{{"1500000000000000000", 18, "1.5"}, {"1", 18, "0.000000000000000001"}, {"0", 18, "0"}, {"100", 2, "1"}, {"123", 0, "123"}, {"-15", 1, "-1.5"}} {
		v, _ := new(big.Int).SetString(tt.v, 10)
		if got := FormatUnits(v, tt.d); got != tt.want {
			t.Errorf("FormatUnits(%s, %d) = %s, want %s", tt.v, tt.d, got, tt.want)
		}
	}
}

func TestStateMachine(t *testing.T) {
	allowed := map[[2]Status]bool{
		{StatusPending, StatusAuthorized}: true, {StatusPending, StatusRejected}: true, {StatusPending, StatusExpired}: true,
		{StatusPending, StatusCancelled}: true, {StatusAuthorized, StatusSubmitted}: true, {StatusAuthorized, StatusFailed}: true, {StatusAuthorized, StatusSigned}: true,
		{StatusSubmitted, StatusConfirmed}: true, {StatusSubmitted, StatusFailed}: true,
		{StatusAuthorized, StatusDropped}: true, {StatusSubmitted, StatusDropped}: true,
		{StatusAuthorized, StatusPending}: true, {StatusAuthorized, StatusExpired}: true, // withdrawn approval, AUTHORIZED_TTL
		{StatusAuthorized, StatusCancelled}: true, // the agent withdrew it before execute
	}
	for _, from := range Statuses {
		for _, to := range Statuses {
			if CanTransition(from, to) != allowed[[2]Status{from, to}] {
				t.Errorf("%s → %s: got %v", from, to, CanTransition(from, to))
			}
		}
	}
	for _, s := range []Status{StatusRejected, StatusExpired, StatusCancelled, StatusConfirmed, StatusFailed, StatusSigned, StatusDropped} {
		if !s.Final() {
			t.Errorf("%s should be final", s)
		}
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"0", "1", "1.5", "-1", "1e18", "0x1", "115792089237316195423570985008687907853269984665640564039457584007913129639935"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseAmount("amount", s)
		if err != nil {
			if ErrorCode(err) != BadRequest {
				t.Fatalf("non-BadRequest error %v", err)
			}
			return
		}
		if v.Sign() < 0 || v.BitLen() > 256 || v.String() != s {
			t.Fatalf("%q parsed to %s", s, v)
		}
	})
}
