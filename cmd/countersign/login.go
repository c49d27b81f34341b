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

// loginCmd is the identity design's flow as one command:
//  1. log in by email code (or an OIDC ID token) → a session for omni_email;
//  2. ask the signer for the wallet derived for that omni_account;
//  3. link the wallet to the account (proven by a SIWE signature);
//     4–6. SIWE start → the signer signs → verify → a session for the wallet;
//  7. mint an OIDC JWT and, with --role-arn, assume an AWS role with it,
//     printing the credentials in the AWS CLI's credential_process format.
func loginCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseLoginFlags(args, getenv, stdout)
	if err != nil {
		return err
	}
	c := &apiClient{base: strings.TrimRight(o.base, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	l := &loginFlow{ctx: ctx, o: o, c: c, signer: &apiClient{base: strings.TrimRight(o.signerURL, "/"), http: c.http, bearer: o.signerToken}}
	sess, err := l.identity(stderr) // 1
	if err != nil {
		return err
	}
	var derivedAddr struct{ Address string } // 2
	if err := l.signer.post(ctx, "/dev/derive-address", map[string]string{"omni_account": sess.OmniAccount}, &derivedAddr); err != nil {
		return err
	}
	evm, err := l.linkAndSignIn(sess, derivedAddr.Address) // 3–6
	if err != nil {
		return err
	}
	return l.mintAndPrint(evm, stdout) // 7
}

// loginOpts are login's flags, and the signer's token.
type loginOpts struct {
	base, email, idToken, nonce, signerURL string
	roleARN, stsEndpoint, region           string
	chainID                                int64
	signerToken                            string
}

// parseLoginFlags reads and checks login's flags and SIGNER_TOKEN.
func parseLoginFlags(args []string, getenv func(string) string, stdout io.Writer) (*loginOpts, error) {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	o := &loginOpts{}
	fs.StringVar(&o.base, "url", or(getenv("COUNTERSIGN_URL"), "http://127.0.0.1:8555"), "the countersign server (env COUNTERSIGN_URL)")
	fs.StringVar(&o.email, "email", "", "log in with a code sent to this address")
	fs.StringVar(&o.idToken, "oidc-token", "", "log in with an ID token from the server's OIDC login issuer")
	fs.StringVar(&o.nonce, "nonce", "", "the nonce the ID token carries")
	fs.StringVar(&o.signerURL, "signer-url", getenv("SIGNER_URL"), "the derived-key signer (env SIGNER_URL; default: the server)")
	fs.StringVar(&o.roleARN, "role-arn", "", "assume this AWS role and print credential_process JSON")
	fs.StringVar(&o.stsEndpoint, "sts-endpoint", getenv("AWS_STS_ENDPOINT"), "STS endpoint (env AWS_STS_ENDPOINT; default AWS's)")
	fs.StringVar(&o.region, "region", or(getenv("AWS_REGION"), "us-east-1"), "AWS region")
	fs.Int64Var(&o.chainID, "chain-id", 1337, "the server's chain id, for SIWE")
	if err := parseFlags(fs, args, stdout, `Usage: countersign login (--email E | --oidc-token T [--nonce N]) [--role-arn ARN] [flags]

Signs in, links the derived wallet, signs in with it (SIWE) and mints an OIDC JWT;
with --role-arn, assumes that AWS role and prints credential_process JSON.
The signer's credential comes from SIGNER_TOKEN (required).`, nil); err != nil {
		return nil, err
	}
	if (o.email == "") == (o.idToken == "") {
		return nil, errors.New("give exactly one of --email and --oidc-token")
	}
	if o.signerToken = getenv("SIGNER_TOKEN"); o.signerToken == "" {
		return nil, errors.New("SIGNER_TOKEN is not set: the signer's /dev routes need it")
	}
	if o.signerURL == "" {
		o.signerURL = o.base
	}
	return o, nil
}

// loginFlow is one run of login: the server and the signer.
type loginFlow struct {
	ctx       context.Context
	o         *loginOpts
	c, signer *apiClient
}

type loginSession struct {
	SessionJWT  string `json:"session_jwt"`
	OmniAccount string `json:"omni_account"`
}

type walletSession struct {
	SessionJWT    string `json:"session_jwt"`
	OmniAccount   string `json:"omni_account"`
	WalletAddress string `json:"wallet_address"`
}

// identity is step 1: the user-facing identity, by an emailed code (read
// from stdin) or an OIDC ID token.
func (l *loginFlow) identity(stderr io.Writer) (*loginSession, error) {
	var sess loginSession
	if l.o.email == "" {
		if err := l.c.post(l.ctx, "/v1/auth/oidc/verify", map[string]string{"id_token": l.o.idToken, "nonce": l.o.nonce}, &sess); err != nil {
			return nil, err
		}
		return &sess, nil
	}
	if err := l.c.post(l.ctx, "/v1/auth/email/start", map[string]string{"email": l.o.email}, nil); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "Enter the code sent to %s: ", l.o.email)
	code, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && code == "" {
		return nil, fmt.Errorf("reading the code: %w", err)
	}
	if err := l.c.post(l.ctx, "/v1/auth/email/verify", map[string]string{"email": l.o.email, "code": strings.TrimSpace(code)}, &sess); err != nil {
		return nil, err
	}
	return &sess, nil
}

// siwe gets a SIWE challenge for addr and has the signer sign it for omni.
func (l *loginFlow) siwe(addr, omni string) (requestID, signature string, err error) {
	var ch struct {
		RequestID   string `json:"request_id"`
		SIWEMessage string `json:"siwe_message"`
	}
	if err := l.c.post(l.ctx, "/v1/auth/wallet/start", map[string]any{"address": addr, "chain_id": l.o.chainID}, &ch); err != nil {
		return "", "", err
	}
	var sig struct{ Signature string }
	if err := l.signer.post(l.ctx, "/dev/sign-message", map[string]string{"omni_account": omni, "message_hex": "0x" + hex.EncodeToString([]byte(ch.SIWEMessage))}, &sig); err != nil {
		return "", "", err
	}
	return ch.RequestID, sig.Signature, nil
}

// linkAndSignIn is steps 3–6: link the derived wallet to the account
// (already linked to this account is fine), then sign in with it.
func (l *loginFlow) linkAndSignIn(sess *loginSession, addr string) (*walletSession, error) {
	rid, sig, err := l.siwe(addr, sess.OmniAccount)
	if err != nil {
		return nil, err
	}
	link := &apiClient{base: l.c.base, http: l.c.http, bearer: sess.SessionJWT}
	if err := link.post(l.ctx, "/v1/wallet/link", map[string]string{"identity_type": "evm", "identity_value": addr, "request_id": rid, "signature": sig}, nil); err != nil {
		return nil, err
	}
	if rid, sig, err = l.siwe(addr, sess.OmniAccount); err != nil {
		return nil, err
	}
	var evm walletSession
	if err := l.c.post(l.ctx, "/v1/auth/wallet/verify", map[string]string{"request_id": rid, "signature": sig}, &evm); err != nil {
		return nil, err
	}
	return &evm, nil
}

// mintAndPrint is step 7: an OIDC JWT, printed with the session, or with
// --role-arn exchanged for AWS credentials printed in the AWS CLI's
// credential_process format.
func (l *loginFlow) mintAndPrint(evm *walletSession, stdout io.Writer) error {
	var minted struct {
		JWT        string    `json:"jwt"`
		Expiration time.Time `json:"expiration"`
	}
	if err := (&apiClient{base: l.c.base, http: l.c.http, bearer: evm.SessionJWT}).post(l.ctx, "/v1/mint-oidc-jwt", nil, &minted); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	if l.o.roleARN == "" {
		return enc.Encode(map[string]any{"omni_account": evm.OmniAccount, "wallet_address": evm.WalletAddress,
			"session_jwt": evm.SessionJWT, "oidc_jwt": minted.JWT, "expiration": minted.Expiration})
	}
	creds, err := csaws.STS{Region: l.o.region, Endpoint: l.o.stsEndpoint}.AssumeRole(l.ctx, l.o.roleARN, "countersign-"+evm.OmniAccount[:16], minted.JWT)
	if err != nil {
		return err
	}
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
