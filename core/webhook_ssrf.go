package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"

	"github.com/countersign/countersign/netguard"
)

// webhookGuard is the policy of this service's sender (which enforces it
// again at dial time), or, failing closed, the default with no exceptions.
func (s *Service) webhookGuard() *netguard.Guard {
	if g, ok := s.webhooks.(netguard.AddressGuard); ok {
		if wg := g.AddressGuard(); wg != nil {
			return wg
		}
	}
	return &netguard.Guard{}
}

// The delivery log's error classes: what kind of failure, never the raw
// error text (which names internal hosts, ports and addresses).
const (
	DeliveryRefusedAddress = "refused_address"
	DeliveryDNS            = "dns"
	DeliveryConnect        = "connect"
	DeliveryTimeout        = "timeout"
	DeliveryTLS            = "tls"
	DeliveryHTTPStatus     = "http_status"
	DeliveryTransport      = "transport" // anything else on the way
)

var deliveryClasses = []string{DeliveryRefusedAddress, DeliveryDNS, DeliveryConnect, DeliveryTimeout, DeliveryTLS, DeliveryHTTPStatus, DeliveryTransport}

// deliveryErrorClass classifies a failed Post for the delivery log.
func deliveryErrorClass(err error) string {
	var dnsErr *netguard.DNSError
	var netDNS *net.DNSError
	var opErr *net.OpError
	var timeout interface{ Timeout() bool }
	switch {
	case errors.Is(err, netguard.ErrRefusedAddress):
		return DeliveryRefusedAddress
	case errors.As(err, &dnsErr), errors.As(err, &netDNS):
		return DeliveryDNS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &timeout) && timeout.Timeout():
		return DeliveryTimeout
	case isTLSError(err):
		return DeliveryTLS
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return DeliveryConnect
	default:
		return DeliveryTransport
	}
}

// isTLSError recognises handshake and certificate failures: by type where
// crypto/tls and crypto/x509 have one, else by the "tls: " prefix every
// other handshake error of crypto/tls carries.
func isTLSError(err error) bool {
	var rec tls.RecordHeaderError
	var alert tls.AlertError
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &rec) || errors.As(err, &alert) || errors.As(err, &verify) || errors.As(err, &unknown) ||
		errors.As(err, &host) || errors.As(err, &invalid) || strings.Contains(err.Error(), "tls: ")
}
