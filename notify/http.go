// Package notify delivers webhooks over HTTP (countersign.WebhookSender)
// and relays the event stream to a local socket.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/netguard"
)

// HTTP posts deliveries to the addresses its guard allows. Redirects are
// not followed (a webhook URL is exactly what was registered, and a
// redirect could point anywhere), no proxy is taken from the environment
// (the guard must see the real destination), and every connection is
// checked against the guard twice: the resolved addresses before dialing,
// and the socket's actual address in the dialer's Control function, after
// DNS, so a name that resolves inward at delivery time (DNS rebinding, a
// changed record) is refused however it got there.
type HTTP struct {
	Client *http.Client
	guard  *netguard.Guard
}

var (
	_ countersign.WebhookSender = (*HTTP)(nil)
	_ netguard.AddressGuard     = (*HTTP)(nil)
)

// New returns a sender held to guard (nil: no exceptions to the policy,
// system resolver) with a 10 s timeout and no redirects.
func New(guard *netguard.Guard) *HTTP {
	if guard == nil {
		guard = &netguard.Guard{}
	}
	h := &HTTP{guard: guard}
	dialer := Dialer(guard)
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dial(ctx, dialer, guard, network, addr)
		},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  10 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           16,
		IdleConnTimeout:        90 * time.Second,
	}
	h.Client = &http.Client{Timeout: 10 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return h
}

// Dialer returns a dialer that refuses, in its Control function, any
// socket whose destination guard refuses: the last check, on the address
// the kernel is asked to connect to, whatever resolved it.
func Dialer(guard *netguard.Guard) *net.Dialer {
	return &net.Dialer{
		Timeout:   5 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			return guard.CheckDialAddr(address)
		},
	}
}

// AddressGuard is the policy CreateWebhook checks registrations against:
// the same one this sender dials under.
func (h *HTTP) AddressGuard() *netguard.Guard { return h.guard }

// dial resolves addr's host with the guard (refusing it if any address is
// internal), then connects to the addresses themselves, so the name is not
// resolved a second time behind the guard's back; Control checks again.
func dial(ctx context.Context, d *net.Dialer, guard *netguard.Guard, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := guard.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// Post sends one delivery and returns the status code.
func (h *HTTP) Post(ctx context.Context, url string, headers map[string]string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("webhook request: %w", err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "countersign-webhooks/1")
	res, err := h.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, nil
}
