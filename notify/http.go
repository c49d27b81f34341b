// Package notify delivers webhooks over HTTP (core.WebhookSender).
package notify

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/countersign/countersign/core"
)

// HTTP posts deliveries; redirects are not followed (a webhook URL is
// exactly what was registered).
type HTTP struct{ Client *http.Client }

var _ core.WebhookSender = HTTP{}

// New returns a sender with a 10 s timeout and no redirects.
func New() HTTP {
	return HTTP{Client: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Post sends one delivery and returns the status code.
func (h HTTP) Post(ctx context.Context, url string, headers map[string]string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, err
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
