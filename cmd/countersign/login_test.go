package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/countersign/countersign"
)

// fakeSTS answers AssumeRoleWithWebIdentity the way AWS does, after
// checking the token as AWS would: discovery, JWKS, audience.
func fakeSTS(t *testing.T, e *env, seen *map[string]any) *httptest.Server {
	ctx := gooidc.ClientContext(context.Background(), issuerClient(e))
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("Action") != "AssumeRoleWithWebIdentity" || r.Form.Get("RoleArn") == "" {
			http.Error(w, "bad action", 400)
			return
		}
		p, err := gooidc.NewProvider(ctx, testIssuer)
		if err == nil {
			var idt *gooidc.IDToken
			if idt, err = p.Verifier(&gooidc.Config{ClientID: "sts.amazonaws.com", Now: e.clock.Now}).Verify(ctx, r.Form.Get("WebIdentityToken")); err == nil {
				idt.Claims(seen)
			}
		}
		if err != nil {
			w.WriteHeader(400)
			fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>%s</Message></Error></ErrorResponse>`, err)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>
<Credentials><AccessKeyId>ASIATESTKEY</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>
<SubjectFromWebIdentityToken>%s</SubjectFromWebIdentityToken></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`, r.Form.Get("RoleSessionName"))
	}))
}

func TestLoginCLIFlow(t *testing.T) {
	sink := newSMTPSink(t)
	e := newEnv(t, withSigner, withOIDCIssuer, func(c *Config) { c.SMTPAddr = sink.ln.Addr().String() })
	var claims map[string]any
	sts := fakeSTS(t, e, &claims)
	defer sts.Close()

	// the CLI prompts for the code; the "user" types it once it arrives
	pr, pw := io.Pipe()
	stdin = pr
	defer func() { stdin = strings.NewReader("") }()
	go func() {
		for range 200 {
			sink.mu.Lock()
			n := len(sink.msgs)
			sink.mu.Unlock()
			if n > 0 {
				fmt.Fprintln(pw, sink.lastCode(t, "ops@example.com"))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var out, errb bytes.Buffer
	env := map[string]string{"COUNTERSIGN_URL": e.url, "SIGNER_TOKEN": testSignerToken, "AWS_STS_ENDPOINT": sts.URL}
	err := run(context.Background(), []string{"login", "--email", "ops@example.com", "--role-arn", "arn:aws:iam::123456789012:role/agent"},
		func(k string) string { return env[k] }, &out, &errb)
	if err != nil {
		t.Fatalf("login: %v\n%s", err, errb.String())
	}
	var creds map[string]any
	if err := json.Unmarshal(out.Bytes(), &creds); err != nil || creds["Version"] != float64(1) || creds["AccessKeyId"] != "ASIATESTKEY" || creds["Expiration"] != "2030-01-01T00:00:00Z" {
		t.Fatalf("credential_process output: %s", out.String())
	}
	omni := countersign.OmniAccount("countersign", "email", "ops@example.com")
	if claims["sub"] != omni || claims["aud"] != "sts.amazonaws.com" {
		t.Fatalf("STS saw claims %v, want sub %s", claims, omni)
	}
	// the derived wallet is linked: signing in with it gives the same account
	var addr struct{ Address string }
	json.Unmarshal([]byte(e.do("POST", "/dev/derive-address", bearer(testSignerToken), map[string]string{"omni_account": omni}).must(t, 200).raw), &addr)
	if owner, err := e.app.Store.LinkedOmni(context.Background(), "evm", strings.ToLower(addr.Address)); err != nil || owner != omni {
		t.Fatalf("derived wallet %s not linked to %s: %v", addr.Address, omni, err)
	}
	// a second run reuses the link (no conflict) and, without a role, prints the tokens
	pr2, pw2 := io.Pipe()
	stdin = pr2
	go func() {
		time.Sleep(200 * time.Millisecond)
		fmt.Fprintln(pw2, sink.lastCode(t, "ops@example.com"))
	}()
	out.Reset()
	if err := run(context.Background(), []string{"login", "--email", "ops@example.com"}, func(k string) string { return env[k] }, &out, &errb); err != nil {
		t.Fatalf("second login: %v\n%s", err, errb.String())
	}
	var tokens map[string]any
	if json.Unmarshal(out.Bytes(), &tokens); tokens["omni_account"] != omni || tokens["oidc_jwt"] == "" || tokens["wallet_address"] != addr.Address {
		t.Fatalf("tokens: %s", out.String())
	}
	// a wrong code stops the flow with the server's error
	stdin = strings.NewReader("000000\n")
	if err := run(context.Background(), []string{"login", "--email", "ops@example.com"}, func(k string) string { return env[k] }, &out, &errb); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("wrong code: %v", err)
	}
}
