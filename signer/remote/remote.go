// Package remote is the client of a separate signer process (`countersign
// signer`, later a TEE worker): the same /dev/* wire shape as the
// in-process derived signer, over HTTP with a service bearer token.
package remote

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/countersign/countersign"
)

// Client calls a signer at BaseURL.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

var _ countersign.DerivedSigner = (*Client)(nil)

// New returns a client for the signer at baseURL.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

func (c *Client) call(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	res, err := c.HTTP.Do(req)
	if err != nil {
		return countersign.Wrap(countersign.Internal, fmt.Errorf("%w: %v", countersign.ErrUnavailable, err), "the signer is unreachable")
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Detail string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			return countersign.Errorf(countersign.Code(e.Error.Code), "signer: %s", e.Error.Detail)
		}
		return countersign.Errorf(countersign.Internal, "signer answered %d", res.StatusCode)
	}
	return json.Unmarshal(raw, out)
}

// DeriveAddress asks the signer for omni's address.
func (c *Client) DeriveAddress(ctx context.Context, omni string) (string, error) {
	var out struct {
		Address string `json:"address"`
	}
	if err := c.call(ctx, "/dev/derive-address", map[string]string{"omni_account": omni}, &out); err != nil {
		return "", err
	}
	// Fail closed: a 200 without a well-formed address ("{}", "null", a
	// proxy's page) must not become a wallet address.
	if len(out.Address) != 42 || !strings.HasPrefix(out.Address, "0x") || !common.IsHexAddress(out.Address) {
		return "", countersign.Errorf(countersign.Internal, "signer returned a malformed address")
	}
	return out.Address, nil
}

func decodeSig(s string) ([]byte, error) {
	b, err := hexutil.Decode(s)
	if err != nil || len(b) != 65 {
		return nil, countersign.Errorf(countersign.Internal, "signer returned a malformed signature")
	}
	return b, nil
}

// SignMessage asks the signer for an EIP-191 signature.
func (c *Client) SignMessage(ctx context.Context, omni string, message []byte) ([]byte, error) {
	var out struct {
		Signature string `json:"signature"`
	}
	if err := c.call(ctx, "/dev/sign-message", map[string]string{"omni_account": omni, "message_hex": "0x" + hex.EncodeToString(message)}, &out); err != nil {
		return nil, err
	}
	return decodeSig(out.Signature)
}

// SignDigest asks the signer to sign a 32-byte digest (a countersigned
// wallet's approved transaction).
func (c *Client) SignDigest(ctx context.Context, omni string, digest []byte) ([]byte, error) {
	var out struct {
		Signature string `json:"signature"`
	}
	if err := c.call(ctx, "/dev/sign-digest", map[string]string{"omni_account": omni, "digest": "0x" + hex.EncodeToString(digest)}, &out); err != nil {
		return nil, err
	}
	return decodeSig(out.Signature)
}

var _ countersign.DerivedDigestSigner = (*Client)(nil)

// SignTypedData asks the signer for an EIP-712 signature.
func (c *Client) SignTypedData(ctx context.Context, omni string, typedData []byte) ([]byte, error) {
	var out struct {
		Signature string `json:"signature"`
	}
	if err := c.call(ctx, "/dev/sign-typed-data", map[string]any{"omni_account": omni, "typed_data": json.RawMessage(typedData)}, &out); err != nil {
		return nil, err
	}
	return decodeSig(out.Signature)
}
