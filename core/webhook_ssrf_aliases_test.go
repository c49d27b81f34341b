package core

import "github.com/countersign/countersign/netguard"

// The webhook address policy moved to netguard; the tests of this package
// still speak of its old unexported names.

const maxWebhookURL = netguard.MaxURL

var refusedNets = netguard.RefusedNets()

// dnsError stands for netguard.DNSError in table literals (an unkeyed
// literal of another package's type is what vet refuses); As hands
// deliveryErrorClass the netguard error it looks for.
type dnsError struct{ err error }

func (e *dnsError) Error() string { return "dns: " + e.err.Error() }
func (e *dnsError) Unwrap() error { return e.err }

func (e *dnsError) As(target any) bool {
	t, ok := target.(**netguard.DNSError)
	if ok {
		*t = &netguard.DNSError{Err: e.err}
	}
	return ok
}
