package aws_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/cloud/aws"
)

const okXML = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>agent-1</SubjectFromWebIdentityToken>
    <Credentials>
      <AccessKeyId>ASIATESTKEY</AccessKeyId>
      <SecretAccessKey>test-secret</SecretAccessKey>
      <SessionToken>test-session-token</SessionToken>
      <Expiration>2030-01-02T03:04:05Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`

const noCredsXML = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>req-2</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`

const partialCredsXML = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIATESTKEY</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>req-3</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`

const errXML = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Couldn't retrieve verification key from your identity provider</Message></Error>
  <RequestId>req-4</RequestId>
</ErrorResponse>`

// stsServer answers every request with status and body and keeps the last
// request's form and headers.
type stsServer struct {
	mu     sync.Mutex
	form   url.Values
	header http.Header
	method string
	calls  int
}

func newSTS(t *testing.T, status int, body string) (*stsServer, string) {
	t.Helper()
	s := &stsServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.form, _ = url.ParseQuery(string(b))
		s.header, s.method = r.Header.Clone(), r.Method
		s.calls++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// The call reaches the configured endpoint as STS's query protocol with
// the role, session name and token, unsigned (the web identity token is
// the credential: no AWS keys are needed or sent), and the credentials
// come back whole.
func TestAssumeRoleAgainstEndpoint(t *testing.T) {
	s, endpoint := newSTS(t, 200, okXML)
	c, err := aws.STS{Region: "eu-west-1", Endpoint: endpoint}.AssumeRole(context.Background(), "arn:aws:iam::123456789012:role/agent", "agent-1", "eyJ.token.sig")
	if err != nil {
		t.Fatal(err)
	}
	want := aws.Credentials{AccessKeyID: "ASIATESTKEY", SecretAccessKey: "test-secret", SessionToken: "test-session-token",
		Expiration: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	if c.AccessKeyID != want.AccessKeyID || c.SecretAccessKey != want.SecretAccessKey || c.SessionToken != want.SessionToken || !c.Expiration.Equal(want.Expiration) {
		t.Fatalf("credentials %+v, want %+v", c, want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.method != "POST" || s.form.Get("Action") != "AssumeRoleWithWebIdentity" || s.form.Get("Version") != "2011-06-15" ||
		s.form.Get("RoleArn") != "arn:aws:iam::123456789012:role/agent" || s.form.Get("RoleSessionName") != "agent-1" || s.form.Get("WebIdentityToken") != "eyJ.token.sig" {
		t.Fatalf("request %s %v", s.method, s.form)
	}
	if a := s.header.Get("Authorization"); a != "" {
		t.Fatalf("the request is signed (%q): AssumeRoleWithWebIdentity must need no AWS credentials", a)
	}
}

func TestAssumeRoleFailures(t *testing.T) {
	tests := map[string]struct {
		status int
		body   string
		want   string
	}{
		"fail/STS error passes its code":    {400, errXML, "InvalidIdentityToken"},
		"fail/no credentials in the answer": {200, noCredsXML, "returned no credentials"},
		"fail/partial credentials":          {200, partialCredsXML, "returned no credentials"},
		"fail/not XML":                      {200, "<html>oops", "AssumeRoleWithWebIdentity"},
		"fail/access denied":                {403, strings.Replace(errXML, "InvalidIdentityToken", "AccessDenied", 1), "AccessDenied"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, endpoint := newSTS(t, tt.status, tt.body)
			c, err := aws.STS{Endpoint: endpoint}.AssumeRole(context.Background(), "arn:aws:iam::123456789012:role/agent", "s", "secret-web-identity-token")
			if err == nil || c != nil {
				t.Fatalf("credentials %+v from a failed call", c)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to name %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-web-identity-token") {
				t.Fatalf("the web identity token is in the error: %v", err)
			}
		})
	}
	t.Run("fail/endpoint unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		endpoint := srv.URL
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if c, err := (aws.STS{Endpoint: endpoint}).AssumeRole(ctx, "arn:aws:iam::123456789012:role/agent", "s", "tok"); err == nil || c != nil {
			t.Fatalf("%+v %v", c, err)
		}
	})
}
