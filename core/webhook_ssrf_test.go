package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/netguard"
)

// TestSecurity_WebhookEventNames: only known event types, or "*" patterns
// that match one, are subscribed to.
func TestSecurity_WebhookEventNames(t *testing.T) {
	for _, ok := range [][]string{{"signed"}, {"transfer", "transaction.*"}, {"*"}, {"transaction.pending", "transaction.confirmed"}, {"trans*"}} {
		if err := ValidateWebhookEvents(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range [][]string{nil, {}, {""}, {"sgined"}, {"transaction.paid"}, {"foo*"}, {"*.*"}, {"trans**"}, {"signed\n"},
		{strings.Repeat("a", 100)}, make([]string, 33)} {
		if err := ValidateWebhookEvents(bad); countersign.ErrorCode(err) != countersign.BadRequest {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}

// TestWebhookDeliveryErrorClass: the delivery log's classes.
func TestWebhookDeliveryErrorClass(t *testing.T) {
	for want, err := range map[string]error{
		DeliveryRefusedAddress: &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Err: netguard.ErrRefusedAddress}},
		DeliveryDNS:            &url.Error{Op: "Post", URL: "http://x", Err: &netguard.DNSError{Err: errors.New("nx")}},
		DeliveryTimeout:        fmt.Errorf("post: %w", context.DeadlineExceeded),
		DeliveryConnect:        &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}},
		DeliveryTLS:            &url.Error{Op: "Post", URL: "https://x", Err: errors.New("tls: handshake failure")},
		DeliveryTransport:      errors.New("EOF"),
	} {
		if got := deliveryErrorClass(err); got != want {
			t.Errorf("%v: %s, want %s", err, got, want)
		}
	}
}

// FuzzWebhookEvents: an accepted event list holds only names that match a
// known event type.
func FuzzWebhookEvents(f *testing.F) {
	for _, s := range []string{"signed", "transaction.*", "*", "sgined", "foo*", "**", "transaction.pending", "\x00", "transfer"} {
		f.Add(s, "signed")
	}
	known := EventTypes()
	f.Fuzz(func(t *testing.T, a, b string) {
		if ValidateWebhookEvents([]string{a, b}) != nil {
			return
		}
		for _, e := range []string{a, b} {
			w := &countersign.Webhook{Events: []string{e}}
			n := 0
			for _, k := range known {
				if subscribed(w, k) {
					n++
				}
			}
			if n == 0 {
				t.Fatalf("accepted %q, which matches no event type", e)
			}
		}
	})
}
