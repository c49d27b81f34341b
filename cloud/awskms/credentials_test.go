package awskms

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/cloud/awskms/kmstest"
)

// clearAWSEnv unsets every variable the SDK's default chain reads, so
// the machine's own configuration cannot leak into a test.
func clearAWSEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// Where the KMS client's credentials come from: the environment's keys,
// else the SDK's default chain (here a profile in a shared credentials
// file; on a server the instance or task role), and unsigned requests only
// for a KMS on this machine without AWS_PROFILE. On the old code anything
// but the three environment variables was ignored and the requests went
// unsigned, so an instance role could not be used.
func TestClientCredentialSources(t *testing.T) {
	ctx := context.Background()
	retrieve := func(t *testing.T, cfg Config) (id, source string, anonymous bool, err error) {
		t.Helper()
		c, _, anon, err := newClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if anon || c.Options().Credentials == nil {
			return "", "", anon, nil
		}
		creds, err := c.Options().Credentials.Retrieve(ctx)
		return creds.AccessKeyID, creds.Source, anon, err
	}
	const remote, local = "https://kms.example.test", "http://127.0.0.1:4599"
	t.Run("environment", func(t *testing.T) {
		clearAWSEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
		if id, src, anon, err := retrieve(t, Config{KeyID: "k", Region: "eu-west-1", Endpoint: remote}); err != nil || id != "AKIDENV" || src != "environment" || anon {
			t.Fatalf("%s %s %v %v", id, src, anon, err)
		}
	})
	t.Run("profile", func(t *testing.T) {
		clearAWSEnv(t)
		f := filepath.Join(t.TempDir(), "credentials")
		if err := os.WriteFile(f, []byte("[cstest]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", f)
		t.Setenv("AWS_PROFILE", "cstest")
		for _, ep := range []string{remote, local} { // AWS_PROFILE signs for a local KMS too
			if id, src, anon, err := retrieve(t, Config{KeyID: "k", Region: "eu-west-1", Endpoint: ep}); err != nil || id != "AKIDPROFILE" || !strings.Contains(src, "SharedConfigCredentials") || anon {
				t.Fatalf("%s: %s %s %v %v", ep, id, src, anon, err)
			}
		}
		// and local-kms takes the profile's signed requests end to end
		kms := kmstest.Start(t)
		cfg, err := ParseURI(kms.URI(kms.SymmetricKey(t)))
		if err != nil {
			t.Fatal(err)
		}
		k, err := New(ctx, cfg)
		if err != nil || k.anonymous {
			t.Fatalf("KEK with the profile's credentials: %v (anonymous %v)", err, k != nil && k.anonymous)
		}
	})
	t.Run("no credentials anywhere: the chain says so, nothing goes unsigned", func(t *testing.T) {
		clearAWSEnv(t)
		_, _, anon, err := retrieve(t, Config{KeyID: "k", Region: "eu-west-1", Endpoint: remote})
		if err == nil || anon {
			t.Fatalf("anonymous %v, err %v: want the default chain's error", anon, err)
		}
	})
	t.Run("local KMS without a profile", func(t *testing.T) {
		clearAWSEnv(t)
		if _, _, anon, _ := retrieve(t, Config{KeyID: "k", Region: "eu-west-1", Endpoint: local}); !anon {
			t.Fatal("a loopback KMS without AWS_PROFILE should be sent unsigned")
		}
	})
}
