package evm

import (
	"strings"
	"testing"
)

// FuzzBroadcastClassification: no node message is both "the node has it"
// and "the node refused it", a refusal always has a public reason, and a
// message naming another transaction at the nonce is never a refusal.
func FuzzBroadcastClassification(f *testing.F) {
	for _, s := range []string{"already known", "nonce too low", "insufficient funds for gas * price + value", "request timed out",
		"replacement transaction underpriced", "transaction underpriced", "max fee per gas less than block base fee", "ALREADY KNOWN: insufficient funds",
		"Replacement Transaction Underpriced: intrinsic gas too low", "", "tx fee (2.00 ether) exceeds the configured cap (1.00 ether)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		reason, isRefused := refused(msg)
		if isRefused && reason == "" {
			t.Fatalf("refusal without a reason: %q", msg)
		}
		if isRefused && isAccepted(msg) {
			// "already known" wins in SendRawTransaction: the node has the bytes.
			return
		}
		if isRefused && containsFold(msg, "replacement transaction underpriced") {
			t.Fatalf("another transaction at the nonce classified as a refusal: %q", msg)
		}
	})
}

func containsFold(s, sub string) bool { return strings.Contains(strings.ToLower(s), sub) }
