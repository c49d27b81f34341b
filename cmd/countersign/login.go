package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	csaws "github.com/countersign/countersign/cloud/aws"
)

// stdin is where `countersign login --email` reads the code (tests swap it).
var stdin io.Reader = os.Stdin

// loginCmd is the seed's daemon flow as one command:
//  1. log in by email code (or an OIDC ID token) → a session for omni_email;
//  2. ask the signer for the wallet derived for that omni_account;
//  3. link the wallet to the account (proven by a SIWE signature);
//     4–6. SIWE start → the signer signs → verify → a session for the wallet;
//  7. mint an OIDC JWT and, with --role-arn, assume an AWS role with it,
//     printing the credentials in the AWS CLI's credential_process format.
func loginCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	base := fs.String("url", or(getenv("COUNTERSIGN_URL"), "http://127.0.0.1:8555"), "the countersign server (env COUNTERSIGN_URL)")
	email := fs.String("email", "", "log in with a code sent to this address")
	idToken := fs.String("oidc-token", "", "log in with an ID token from the server's OIDC login issuer")
	nonce := fs.String("nonce", "", "the nonce the ID token carries")
	signerURL := fs.String("signer-url", getenv("SIGNER_URL"), "the derived-key signer (env SIGNER_URL; default: the server)")
	roleARN := fs.String("role-arn", "", "assume this AWS role and print credential_process JSON")
	stsEndpoint := fs.String("sts-endpoint", getenv("AWS_STS_ENDPOINT"), "STS endpoint (env AWS_STS_ENDPOINT; default AWS's)")
	region := fs.String("region", or(getenv("AWS_REGION"), "us-east-1"), "AWS region")
	chainID := fs.Int64("chain-id", 1337, "the server's chain id, for SIWE")
	if err := parseFlags(fs, args, stdout, `Usage: countersign login (--email E | --oidc-token T [--nonce N]) [--role-arn ARN] [flags]

Signs in, links the derived wallet, signs in with it (SIWE) and mints an OIDC JWT;
with --role-arn, assumes that AWS role and prints credential_process JSON.
The signer's credential comes from SIGNER_TOKEN (required).`, nil); err != nil {
		return err
	}
	if (*email == "") == (*idToken == "") {
		return errors.New("give exactly one of --email and --oidc-token")
	}
	token := getenv("SIGNER_TOKEN")
	if token == "" {
		return errors.New("SIGNER_TOKEN is not set: the signer's /dev routes need it")
	}
	if *signerURL == "" {
		*signerURL = *base
	}
	c := &apiClient{base: strings.TrimRight(*base, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	signer := &apiClient{base: strings.TrimRight(*signerURL, "/"), http: c.http, bearer: token}

	// 1. the user-facing identity
	var sess struct {
		SessionJWT  string `json:"session_jwt"`
		OmniAccount string `json:"omni_account"`
	}
	if *email != "" {
		if err := c.post(ctx, "/v1/auth/email/start", map[string]string{"email": *email}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "Enter the code sent to %s: ", *email)
		code, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && code == "" {
			return fmt.Errorf("reading the code: %w", err)
		}
		if err := c.post(ctx, "/v1/auth/email/verify", map[string]string{"email": *email, "code": strings.TrimSpace(code)}, &sess); err != nil {
			return err
		}
	} else if err := c.post(ctx, "/v1/auth/oidc/verify", map[string]string{"id_token": *idToken, "nonce": *nonce}, &sess); err != nil {
		return err
	}
	// 2. the derived wallet
	var derivedAddr struct{ Address string }
	if err := signer.post(ctx, "/dev/derive-address", map[string]string{"omni_account": sess.OmniAccount}, &derivedAddr); err != nil {
		return err
	}
	siwe := func() (requestID, signature string, err error) {
		var ch struct {
			RequestID   string `json:"request_id"`
			SIWEMessage string `json:"siwe_message"`
		}
		if err := c.post(ctx, "/v1/auth/wallet/start", map[string]any{"address": derivedAddr.Address, "chain_id": *chainID}, &ch); err != nil {
			return "", "", err
		}
		var sig struct{ Signature string }
		if err := signer.post(ctx, "/dev/sign-message", map[string]string{"omni_account": sess.OmniAccount, "message_hex": "0x" + hex.EncodeToString([]byte(ch.SIWEMessage))}, &sig); err != nil {
			return "", "", err
		}
		return ch.RequestID, sig.Signature, nil
	}
	// 3. link it (already linked to this account is fine)
	rid, sig, err := siwe()
	if err != nil {
		return err
	}
	link := &apiClient{base: c.base, http: c.http, bearer: sess.SessionJWT}
	if err := link.post(ctx, "/v1/wallet/link", map[string]string{"identity_type": "evm", "identity_value": derivedAddr.Address, "request_id": rid, "signature": sig}, nil); err != nil {
		return err
	}
	// 4–6. sign in with the wallet
	if rid, sig, err = siwe(); err != nil {
		return err
	}
	var evm struct {
		SessionJWT    string `json:"session_jwt"`
		OmniAccount   string `json:"omni_account"`
		WalletAddress string `json:"wallet_address"`
	}
	if err := c.post(ctx, "/v1/auth/wallet/verify", map[string]string{"request_id": rid, "signature": sig}, &evm); err != nil {
		return err
	}
	// 7. an OIDC JWT, and optionally AWS credentials
	var minted struct {
		JWT        string    `json:"jwt"`
		Expiration time.Time `json:"expiration"`
	}
	if err := (&apiClient{base: c.base, http: c.http, bearer: evm.SessionJWT}).post(ctx, "/v1/mint-oidc-jwt", nil, &minted); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	if *roleARN == "" {
		return enc.Encode(map[string]any{"omni_account": evm.OmniAccount, "wallet_address": evm.WalletAddress,
			"session_jwt": evm.SessionJWT, "oidc_jwt": minted.JWT, "expiration": minted.Expiration})
	}
	creds, err := csaws.STS{Region: *region, Endpoint: *stsEndpoint}.AssumeRole(ctx, *roleARN, "countersign-"+evm.OmniAccount[:16], minted.JWT)
	if err != nil {
		return err
	}
	// The AWS CLI's credential_process format.
	return enc.Encode(map[string]any{"Version": 1, "AccessKeyId": creds.AccessKeyID, "SecretAccessKey": creds.SecretAccessKey,
		"SessionToken": creds.SessionToken, "Expiration": creds.Expiration.UTC().Format(time.RFC3339)})
}

// apiClient is a small JSON client for the CLI.
type apiClient struct {
	base, bearer string
	authToken    string // X-Auth-Token for the wallet daemon
	http         *http.Client
}

func (c *apiClient) post(ctx context.Context, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.do(req, out)
}

func (c *apiClient) do(req *http.Request, out any) error {
	path := req.URL.Path
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.authToken != "" {
		req.Header.Set("X-Auth-Token", c.authToken)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Detail string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s %s: %s: %s", req.Method, path, e.Error.Code, e.Error.Detail)
		}
		return fmt.Errorf("%s %s: HTTP %d", req.Method, path, res.StatusCode)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}
